"""The building blocks of the GAN models in :mod:`jaxnets.models.gan`: argument checks,
the layer that checks a model's input, label conditioning, DCGAN's BatchNorm and
LeakyReLU."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.activations import Activation
from jaxnets.core import Layer, LayerTypeError, is_concrete, layer_error, stateless
from jaxnets.core.arguments import count
from jaxnets.layers import BatchNorm

#: BatchNorm's running averages in the DCGAN models: PyTorch's default momentum 0.1
#: (0.9 in the Keras/flax convention of :func:`jaxnets.BatchNorm`).
BN_MOMENTUM = 0.9


# --------------------------------------------------------------------------- checks


def _check_positive(where: str, what: str, value: int) -> None:
    count(where, what, value)


def _check_image_shape(where: str, image_shape: Sequence[int], multiple: int = 1) -> tuple:
    expected = "(height, width, channels) of positive ints"
    if not isinstance(image_shape, (tuple, list)) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in image_shape
    ):
        raise TypeError(f"{where}: image_shape must be {expected}, got {image_shape!r}")
    shape = tuple(int(d) for d in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{where}: image_shape must be {expected}, got {image_shape!r}")
    if shape[0] % multiple or shape[1] % multiple:
        raise ValueError(
            f"{where}: the height and width of image_shape must be multiples of {multiple} "
            f"(two stride-2 stages), got {shape}"
        )
    return shape


def _check_num_classes(where: str, num_classes: int | None) -> None:
    if num_classes is not None:
        _check_positive(where, "num_classes", num_classes)


def _check_hidden(where: str, hidden: Sequence[int]) -> tuple[int, ...]:
    if isinstance(hidden, (numbers.Number, str)):
        raise TypeError(
            f"{where}: hidden must be a tuple of positive ints (one width per layer), got "
            f"{hidden!r}; for one layer write ({hidden!r},)"
        )
    return tuple(count(where, f"hidden[{i}]", w) for i, w in enumerate(tuple(hidden)))


def _input_check(model: str, example: tuple[int, ...], num_classes: int | None) -> Layer:
    """An identity layer whose init checks the input form: an array ``(N, *example)``, or
    with ``num_classes`` the pair ``(array, labels)`` with integer labels ``(N,)``."""
    what = "z" if len(example) == 1 else "images"
    form = f"({what}, labels)" if num_classes is not None else what

    def check(spec):
        if num_classes is not None:
            if not isinstance(spec, tuple) or len(spec) != 2:
                raise layer_error(
                    "InputCheck",
                    f"{model} is conditional (num_classes={num_classes}): expected the pair "
                    f"{form}, got {_describe(spec)}",
                )
            x, labels = spec
        else:
            if not isinstance(spec, jax.ShapeDtypeStruct):
                raise layer_error(
                    "InputCheck", f"{model} expects {form} alone, got {_describe(spec)}"
                )
            x, labels = spec, None
        if not isinstance(x, jax.ShapeDtypeStruct) or tuple(x.shape[1:]) != example:
            raise layer_error(
                "InputCheck",
                f"{model} expects {what} of shape (batch, {', '.join(map(str, example))}), "
                f"got {_describe(x)}",
            )
        if labels is not None:
            if not isinstance(labels, jax.ShapeDtypeStruct) or tuple(labels.shape) != (x.shape[0],):
                raise layer_error(
                    "InputCheck",
                    f"{model} expects labels of shape ({x.shape[0]},), one per example, got "
                    f"{_describe(labels)}",
                )
            _check_integer("InputCheck", labels.dtype)

    return stateless("InputCheck", lambda x: x, name="input", check=check)


def _describe(spec) -> str:
    if hasattr(spec, "shape") and hasattr(spec, "dtype"):
        return f"shape {tuple(spec.shape)} ({spec.dtype})"
    if isinstance(spec, tuple):
        return f"a tuple of {len(spec)}: ({', '.join(_describe(s) for s in spec)})"
    return type(spec).__name__


def _check_integer(kind: str, dtype) -> None:
    if not jnp.issubdtype(dtype, jnp.integer):
        raise LayerTypeError(
            f"{kind}: expected integer class labels, got dtype {dtype} (pass an int32 "
            f"array, or an integer jax.ShapeDtypeStruct at init: a bare shape means float32)"
        )


# --------------------------------------------------------------------------- conditioning


def _one_hot(labels, num_classes: int, dtype):
    """One-hot codes of ``labels``; concrete labels outside ``[0, num_classes)`` raise."""
    _check_integer("LabelConcat", labels.dtype)
    if is_concrete(labels):
        values = np.asarray(labels)
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise layer_error(
                "LabelConcat",
                f"labels must lie in [0, {num_classes}), got {bad.size} outside (for example "
                f"{sorted(set(bad.tolist()))[:5]})",
            )
    return jax.nn.one_hot(labels, num_classes, dtype=dtype)


def _append_label(num_classes: int, *, flatten: bool = False) -> Layer:
    """``(x, labels) -> x`` with the labels' one-hot code appended on the last axis:
    broadcast over the spatial axes of images (label planes), after flattening ``x`` to
    ``(N, features)`` first when ``flatten``."""

    def fn(pair):
        x, labels = pair
        if flatten:
            x = x.reshape(x.shape[0], -1)
        code = _one_hot(labels, num_classes, x.dtype)
        code = code.reshape((x.shape[0],) + (1,) * (x.ndim - 2) + (num_classes,))
        planes = jnp.broadcast_to(code, x.shape[:-1] + (num_classes,))
        return jnp.concatenate([x, planes], axis=-1)

    return stateless("LabelConcat", fn, name="condition")


# --------------------------------------------------------------------------- layers


def _dcgan_batch_norm() -> Layer:
    """BatchNorm with the DCGAN initialisation of the scale, N(1, 0.02)."""
    bn = BatchNorm(BN_MOMENTUM, 1e-5)

    def init(key, input_spec):
        spec, params, state = bn.init(key, input_spec)
        scale = params["scale"]
        noise = jax.random.normal(key, scale.shape, scale.dtype)
        return spec, {**params, "scale": scale + 0.02 * noise}, state

    return Layer(init, bn.apply, bn.kind)


def _leaky_relu() -> Layer:
    return Activation("leaky_relu", negative_slope=0.2)
