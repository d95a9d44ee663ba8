"""Image augmentation on the device: random shifts, flips, brightness and contrast.

Every function takes a PRNG ``key`` and a batch of images ``(N, H, W, C)`` and draws
independent random parameters for each example (the key is split over the batch and the
per-example transform is ``jax.vmap``-ed), so it runs inside ``jax.jit`` on the device.
The same key always gives the same result. Use the functions in a data pipeline, compose
them with :func:`augmentation`, or put the :func:`Augment` layer first in a model so that
the train step augments each batch (it is the identity when ``train=False``).

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> augment = jn.data.augmentation(crop_padding=1, brightness=0.1)
    >>> images = jnp.ones((4, 8, 8, 1))
    >>> jax.jit(augment)(jax.random.key(0), images).shape
    (4, 8, 8, 1)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxnets.core import Layer, as_spec, check_floating, layer_error
from jaxnets.core.arguments import choice, flag, number, received

Array = jax.Array
AugmentFn = Callable[[Array, Array], Array]

PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pair(value: int | tuple[int, int], what: str) -> tuple[int, int]:
    """``value`` as ``(h, w)``: an int >= 0 or a pair of them; ``what`` is "<where>: <name>"."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, tuple | list) and len(value) == 2:
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
            raise TypeError(f"{what} must be an int >= 0 or a pair of them, got {value!r}")
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{what} must be an int >= 0 or a pair of them, got {received(value)}")
    if min(pair) < 0:
        raise ValueError(f"{what} must be an int >= 0 or a pair of them, got {value!r}")
    return pair


def _check_images(kind: str, images: Array) -> None:
    if images.ndim != 4:
        raise layer_error(
            kind, f"expected images of shape (N, H, W, C), got shape {tuple(images.shape)}"
        )


def _per_example(
    fn: Callable[[Array, Array], Array], key: Array, images: Array, where: str = "augmentation"
) -> Array:
    """Apply ``fn(key, image)`` to each image with its own key from ``split(key, N)``."""
    if key is None:
        raise ValueError(f"{where}: needs a PRNG key: pass jax.random.key(seed)")
    return jax.vmap(fn)(jax.random.split(key, images.shape[0]), images)


# --------------------------------------------------------------------------- one image


def _shift_one(key, image, padding, mode, fill):
    """Pad ``image`` (H, W, C) by ``padding`` and crop H x W at a uniform random offset."""
    ph, pw = padding
    if ph == pw == 0:
        return image
    widths = ((ph, ph), (pw, pw), (0, 0))
    if mode == "constant":
        padded = jnp.pad(image, widths, mode="constant", constant_values=fill)
    else:
        padded = jnp.pad(image, widths, mode=mode)
    ky, kx = jax.random.split(key)
    oy = jax.random.randint(ky, (), 0, 2 * ph + 1)
    ox = jax.random.randint(kx, (), 0, 2 * pw + 1)
    return jax.lax.dynamic_slice(padded, (oy, ox, jnp.zeros((), oy.dtype)), image.shape)


def _flip_one(key, image):
    return jnp.where(jax.random.bernoulli(key), image[:, ::-1], image)


def _brightness_one(key, image, max_delta):
    delta = jax.random.uniform(key, (), jnp.float32, -max_delta, max_delta)
    return image + delta.astype(image.dtype)


def _contrast_one(key, image, strength):
    factor = jax.random.uniform(key, (), jnp.float32, 1.0 - strength, 1.0 + strength)
    x = image.astype(jnp.promote_types(image.dtype, jnp.float32))
    mean = jnp.mean(x, axis=(0, 1), keepdims=True)
    return ((x - mean) * factor + mean).astype(image.dtype)


# --------------------------------------------------------------------------- batch functions


def random_crop(
    key: Array, images: Array, padding: int | tuple[int, int] = 1, *, pad_mode: str = "constant"
) -> Array:
    """Pad each image by ``padding`` pixels on every side, then crop back to its size at a
    uniform random offset: a random shift of up to ``padding`` pixels in each direction.

    Output pixel ``(i, j)`` of an example is padded pixel ``(i + oy, j + ox)`` with ``oy``
    drawn uniformly from ``0..2 * pad_h`` (and ``ox`` likewise), so the content moves by
    ``pad_h - oy`` rows. CIFAR's standard augmentation is ``padding=4`` with a flip.

    Args:
      key: the PRNG key, split over the examples.
      images: the batch, ``(N, H, W, C)``.
      padding: the pixels added on each side, an int or ``(pad_h, pad_w)``, each >= 0.
      pad_mode: a ``jnp.pad`` mode from ``PAD_MODES``; ``"constant"`` pads zeros, while
        ``"reflect"`` and ``"edge"`` avoid black borders.

    Returns:
      The shifted images, of the input's shape and dtype.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> jn.data.random_crop(jax.random.key(0), jnp.ones((2, 32, 32, 3)), 4).shape
        (2, 32, 32, 3)
    """
    pad = _pair(padding, "random_crop: padding")
    choice("random_crop", "pad_mode", pad_mode, PAD_MODES)
    _check_images("random_crop", images)
    return _per_example(
        lambda k, im: _shift_one(k, im, pad, pad_mode, 0), key, images, "random_crop"
    )


def random_translate(
    key: Array, images: Array, max_shift: int | tuple[int, int] = 1, *, fill: float = 0.0
) -> Array:
    """Shift each image by a uniform random whole number of pixels in
    ``-max_shift..max_shift`` along height and width, filling the uncovered border with
    ``fill``.

    Args:
      key: the PRNG key, split over the examples.
      images: the batch, ``(N, H, W, C)``.
      max_shift: the largest shift, an int or ``(shift_h, shift_w)``, each >= 0.
      fill: the value of the uncovered pixels.

    Returns:
      The shifted images, of the input's shape and dtype.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> y = jn.data.random_translate(jax.random.key(0), jnp.ones((8, 4, 4, 1)), 1)
        >>> bool((y == 0).any()), y.shape
        (True, (8, 4, 4, 1))
    """
    shift = _pair(max_shift, "random_translate: max_shift")
    number("random_translate", "fill", fill)
    _check_images("random_translate", images)
    return _per_example(
        lambda k, im: _shift_one(k, im, shift, "constant", fill), key, images, "random_translate"
    )


def random_flip(key: Array, images: Array) -> Array:
    """Mirror each image left-right with probability 1/2.

    Do not use it for digits or text, whose mirror images are other symbols.

    Args:
      key: the PRNG key, split over the examples.
      images: the batch, ``(N, H, W, C)``.

    Returns:
      The images, each flipped along the width axis or left as it was.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> jn.data.random_flip(jax.random.key(0), jnp.ones((2, 4, 4, 3))).shape
        (2, 4, 4, 3)
    """
    _check_images("random_flip", images)
    return _per_example(_flip_one, key, images, "random_flip")


def random_brightness(key: Array, images: Array, max_delta: float) -> Array:
    """Add one uniform random offset in ``[-max_delta, max_delta]`` to each image.

    Args:
      key: the PRNG key, split over the examples.
      images: the batch, ``(N, H, W, C)``, floating point.
      max_delta: the largest offset, >= 0.

    Returns:
      The images, of the input's shape and dtype (not clipped).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> y = jn.data.random_brightness(jax.random.key(0), jnp.zeros((2, 3, 3, 1)), 0.1)
        >>> bool((abs(y) <= 0.1).all())
        True
    """
    number("random_brightness", "max_delta", max_delta, low=0)
    _check_images("random_brightness", images)
    check_floating("random_brightness", images)
    return _per_example(
        lambda k, im: _brightness_one(k, im, max_delta), key, images, "random_brightness"
    )


def random_contrast(key: Array, images: Array, strength: float) -> Array:
    """Scale each image's deviation from its per-channel mean by a uniform random factor
    in ``[1 - strength, 1 + strength]``.

    Args:
      key: the PRNG key, split over the examples.
      images: the batch, ``(N, H, W, C)``, floating point.
      strength: how far the factor may stray from 1, in [0, 1).

    Returns:
      The images, of the input's shape and dtype (not clipped).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> y = jn.data.random_contrast(jax.random.key(0), jnp.ones((2, 3, 3, 1)), 0.5)
        >>> bool((y == 1).all())
        True
    """
    number("random_contrast", "strength", strength, low=0, high=1, high_open=True)
    _check_images("random_contrast", images)
    check_floating("random_contrast", images)
    return _per_example(
        lambda k, im: _contrast_one(k, im, strength), key, images, "random_contrast"
    )


# --------------------------------------------------------------------------- composition


def augmentation(
    *,
    crop_padding: int | tuple[int, int] = 0,
    pad_mode: str = "constant",
    flip: bool = False,
    brightness: float = 0.0,
    contrast: float = 0.0,
) -> AugmentFn:
    """One function ``augment(key, images) -> images`` that applies, per example and in
    this order: a random shift by padding and cropping (:func:`random_crop`, if
    ``crop_padding > 0``), a left-right flip with probability 1/2 (if ``flip``; off by
    default because mirrored digits are not digits), brightness (:func:`random_brightness`)
    and contrast (:func:`random_contrast`) jitter. The output has the input's shape and
    dtype. Values are not clipped.

    Each example's key is split once into one key per transform, so enabling a transform
    does not change the random draws of the others.

    Args:
      crop_padding: the padding of the random shift, an int or a pair (0: no shift).
      pad_mode: the ``jnp.pad`` mode of that padding (see :func:`random_crop`).
      flip: whether to flip left-right at random.
      brightness: the ``max_delta`` of :func:`random_brightness` (0: off).
      contrast: the ``strength`` of :func:`random_contrast` (0: off).

    Returns:
      The function ``augment(key, images)``, which can be jitted.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> augment = jn.data.augmentation(crop_padding=4, flip=True)
        >>> augment(jax.random.key(1), jnp.zeros((2, 32, 32, 3))).dtype
        dtype('float32')
    """
    return _augmentation("augmentation", crop_padding, pad_mode, flip, brightness, contrast)


def _augmentation(
    where: str,
    crop_padding: int | tuple[int, int],
    pad_mode: str,
    flip: bool,
    brightness: float,
    contrast: float,
) -> AugmentFn:
    """:func:`augmentation`, its arguments checked in the name of ``where``."""
    pad = _pair(crop_padding, f"{where}: crop_padding")
    choice(where, "pad_mode", pad_mode, PAD_MODES)
    flip = flag(where, "flip", flip)
    brightness = number(where, "brightness", brightness, low=0)
    contrast = number(where, "contrast", contrast, low=0, high=1, high_open=True)

    def one(key, image):
        k_shift, k_flip, k_bright, k_contrast = jax.random.split(key, 4)
        image = _shift_one(k_shift, image, pad, pad_mode, 0)
        if flip:
            image = _flip_one(k_flip, image)
        if brightness:
            image = _brightness_one(k_bright, image, brightness)
        if contrast:
            image = _contrast_one(k_contrast, image, contrast)
        return image

    def augment(key: Array, images: Array) -> Array:
        _check_images(where, images)
        if brightness or contrast:
            check_floating(where, images)
        return _per_example(one, key, images, where)

    return augment


def Augment(
    crop_padding: int | tuple[int, int] = 0,
    *,
    pad_mode: str = "constant",
    flip: bool = False,
    brightness: float = 0.0,
    contrast: float = 0.0,
    name: str | None = None,
) -> Layer:
    """A layer that augments its input images in training and is the identity in inference.

    Put it first in a model so the train step augments every batch on the device, with the
    step's key: ``serial(Augment(crop_padding=1), Conv(32, 3), ...)``. Like Dropout,
    training needs ``key=`` and inference (``train=False``) leaves the input untouched.

    Args:
      crop_padding: the padding of the random shift, an int or a pair (0: no shift).
      pad_mode: the ``jnp.pad`` mode of that padding (see :func:`random_crop`).
      flip: whether to flip left-right at random.
      brightness: the ``max_delta`` of :func:`random_brightness` (0: off).
      contrast: the ``strength`` of :func:`random_contrast` (0: off).
      name: the key of the layer in its parent.

    Returns:
      The layer (no params, no state); it takes images ``(N, H, W, C)`` and at least one
      transform must be enabled.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> aug = jn.data.Augment(crop_padding=1)
        >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> bool((aug.apply({}, {}, x, train=False)[0] == x).all())
        True
        >>> aug.apply({}, {}, x, key=jax.random.key(0), train=True)[0].shape
        (1, 4, 4, 1)
    """
    kind = "Augment"
    augment = _augmentation(kind, crop_padding, pad_mode, flip, brightness, contrast)
    if _pair(crop_padding, "Augment: crop_padding") == (0, 0) and not (
        flip or brightness or contrast
    ):
        raise ValueError(
            "Augment: no transform is enabled; pass crop_padding, flip, brightness or contrast"
        )

    def apply(params, state, x, *, key=None, train):
        if not train:
            return x, state
        if key is None:
            raise layer_error(
                kind,
                "needs a PRNG key in training: call apply(..., key=jax.random.key(seed), "
                "train=True), or train=False for inference",
            )
        _check_images(kind, x)
        return augment(key, x), state

    def init(key, input_spec):
        spec = as_spec(input_spec)
        if not isinstance(spec, jax.ShapeDtypeStruct) or len(spec.shape) != 4:
            got = spec.shape if isinstance(spec, jax.ShapeDtypeStruct) else spec
            raise layer_error(kind, f"expected images of shape (N, H, W, C), got {got}")
        if (brightness or contrast) and not jnp.issubdtype(spec.dtype, jnp.floating):
            raise layer_error(
                kind, f"brightness and contrast need floating-point images, got {spec.dtype}"
            )
        return spec, {}, {}

    return Layer(init, apply, kind, name)
