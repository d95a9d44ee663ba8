"""One converter per Keras layer class: its config and weights into a jaxnets layer.

Each converter takes the layer's ``config`` (from a ``.keras`` archive's ``config.json``),
its weights (``weights(sub)`` gives the arrays under the layer's path, ``sub`` "" or a
nested part such as ``"cell"``) and the input's shape, and returns a :class:`Converted`.
Options jaxnets does not have raise a :class:`KerasConversionError` naming the layer,
the option and the config. :mod:`jaxnets.interop.keras.model` assembles the network.

Example:
    >>> from jaxnets.interop.keras.layer_map import CONVERTERS
    >>> "LSTM" in CONVERTERS and "Conv2DTranspose" in CONVERTERS
    True
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

import jaxnets as jn
from jaxnets.interop.keras.converted import (
    Converted,
    KerasConversionError,
    Weights,
    activation,
    arrays,
    reject,
    unsupported,
)
from jaxnets.interop.keras.recurrent_map import bidirectional, recurrent

__all__ = ["CONVERTERS", "Converted", "KerasConversionError", "unsupported"]


def _dense(cfg, weights, shape):
    reject(cfg, "Dense", lora_rank=None)
    use_bias = cfg.get("use_bias", True)
    w = arrays(weights, "", 2 if use_bias else 1, cfg, "Dense")
    act = activation(cfg, "Dense")
    layer = jn.Dense(cfg["units"], use_bias=use_bias, activation=act)
    return Converted(layer, dict(zip(("kernel", "bias"), w, strict=False)), {}, "pass")


def _conv_options(cfg, kind):
    reject(cfg, kind, data_format="channels_last", lora_rank=None)
    padding = cfg.get("padding", "valid").upper()
    return padding, tuple(cfg["strides"]), tuple(cfg.get("dilation_rate", 1))


def _conv(cfg, weights, shape, rank):
    kind = f"Conv{rank}D"
    padding, strides, dilation = _conv_options(cfg, kind)
    use_bias = cfg.get("use_bias", True)
    w = arrays(weights, "", 2 if use_bias else 1, cfg, kind)
    layer = jn.Conv(
        cfg["filters"], tuple(cfg["kernel_size"]), strides, padding, dilation,
        cfg.get("groups", 1), use_bias=use_bias, activation=activation(cfg, kind),
    )  # fmt: skip
    return Converted(layer, dict(zip(("kernel", "bias"), w, strict=False)), {})


def _depthwise(cfg, weights, shape):
    kind = "DepthwiseConv2D"
    padding, strides, dilation = _conv_options(cfg, kind)
    use_bias = cfg.get("use_bias", True)
    w = arrays(weights, "", 2 if use_bias else 1, cfg, kind)
    kh, kw, channels, dm = w[0].shape
    params = {"kernel": w[0].reshape(kh, kw, 1, channels * dm)}
    if use_bias:
        params["bias"] = w[1]
    layer = jn.DepthwiseConv(
        tuple(cfg["kernel_size"]), strides, padding, dm, dilation, use_bias=use_bias,
        activation=activation(cfg, kind),
    )  # fmt: skip
    return Converted(layer, params, {})


def _separable(cfg, weights, shape):
    kind = "SeparableConv2D"
    padding, strides, dilation = _conv_options(cfg, kind)
    use_bias = cfg.get("use_bias", True)
    w = arrays(weights, "", 3 if use_bias else 2, cfg, kind)
    kh, kw, channels, dm = w[0].shape
    params = {"depthwise_kernel": w[0].reshape(kh, kw, 1, channels * dm), "pointwise_kernel": w[1]}
    if use_bias:
        params["bias"] = w[2]
    layer = jn.SeparableConv(
        cfg["filters"], tuple(cfg["kernel_size"]), strides, padding, dm, dilation,
        use_bias=use_bias, activation=activation(cfg, kind),
    )  # fmt: skip
    return Converted(layer, params, {})


def _conv_transpose(cfg, weights, shape):
    kind = "Conv2DTranspose"
    padding, strides, dilation = _conv_options(cfg, kind)
    use_bias = cfg.get("use_bias", True)
    w = arrays(weights, "", 2 if use_bias else 1, cfg, kind)
    params = {"kernel": jnp.swapaxes(w[0][::-1, ::-1], -1, -2)}
    if use_bias:
        params["bias"] = w[1]
    extra = cfg.get("output_padding")
    layer = jn.ConvTranspose(
        cfg["filters"], tuple(cfg["kernel_size"]), strides, padding, dilation,
        use_bias=use_bias, activation=activation(cfg, kind),
        output_padding=None if extra is None else tuple(extra),
    )  # fmt: skip
    return Converted(layer, params, {})


def _pool(cfg, weights, shape, maximum):
    kind = "MaxPooling" if maximum else "AveragePooling"
    reject(cfg, kind, data_format="channels_last")
    size = tuple(cfg["pool_size"])
    strides = size if cfg.get("strides") is None else tuple(cfg["strides"])
    padding = cfg.get("padding", "valid").upper()
    make = jn.MaxPool if maximum else jn.AvgPool
    return Converted(make(size, strides, padding), {}, {})


def _global_pool(cfg, weights, shape, maximum):
    kind = "GlobalMaxPooling" if maximum else "GlobalAveragePooling"
    reject(cfg, kind, data_format="channels_last")
    make = jn.GlobalMaxPool if maximum else jn.GlobalAvgPool
    return Converted(make(bool(cfg.get("keepdims", False))), {}, {})


def _zero_padding(cfg, weights, shape):
    reject(cfg, "ZeroPadding", data_format="channels_last")
    rank = len(shape) - 2
    p = cfg["padding"]
    if isinstance(p, int):
        pairs = ((p, p),) * rank
    elif rank == 1 and len(p) == 2 and all(isinstance(v, int) for v in p):
        pairs = ((p[0], p[1]),)
    else:
        pairs = tuple((v, v) if isinstance(v, int) else (v[0], v[1]) for v in p)
    return Converted(jn.ZeroPadding(pairs), {}, {})


def _last_axis(cfg, kind, shape, key="axis"):
    axis = cfg.get(key, -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if not isinstance(axis, int) or axis % len(shape) != len(shape) - 1:
        raise unsupported(cfg, kind, f"{key}={cfg.get(key)!r} (only the last axis)")


def _affine(cfg, weights, kind, extra: int):
    names = [
        n
        for n, used in (("scale", cfg.get("scale", True)), ("bias", cfg.get("center", True)))
        if used
    ]
    w = arrays(weights, "", len(names) + extra, cfg, kind)
    return dict(zip(names, w[: len(names)], strict=True)), w[len(names) :]


def _batch_norm(cfg, weights, shape):
    kind = "BatchNormalization"
    _last_axis(cfg, kind, shape)
    reject(cfg, kind, renorm=False, synchronized=False)
    params, (mean, var) = _affine(cfg, weights, kind, 2)
    layer = jn.BatchNorm(
        cfg.get("momentum", 0.99), cfg.get("epsilon", 1e-3), use_scale=cfg.get("scale", True),
        use_bias=cfg.get("center", True),
    )  # fmt: skip
    return Converted(layer, params, {"mean": mean, "var": var}, "pass")


def _layer_norm(cfg, weights, shape):
    kind = "LayerNormalization"
    reject(cfg, kind, rms_scaling=False)
    axis = cfg.get("axis", -1)
    axis = tuple(axis) if isinstance(axis, list) else axis
    params, _ = _affine(cfg, weights, kind, 0)
    layer = jn.LayerNorm(
        cfg.get("epsilon", 1e-3), axis=axis, use_scale=cfg.get("scale", True),
        use_bias=cfg.get("center", True),
    )  # fmt: skip
    return Converted(layer, params, {}, "pass")


def _group_norm(cfg, weights, shape):
    kind = "GroupNormalization"
    _last_axis(cfg, kind, shape)
    params, _ = _affine(cfg, weights, kind, 0)
    layer = jn.GroupNorm(
        cfg.get("groups", 32), cfg.get("epsilon", 1e-3), use_scale=cfg.get("scale", True),
        use_bias=cfg.get("center", True),
    )  # fmt: skip
    return Converted(layer, params, {})


def _dropout(cfg, weights, shape):
    reject(cfg, "Dropout", noise_shape=None)
    return Converted(jn.Dropout(cfg["rate"]), {}, {}, "pass")


def _activation_layer(cfg, weights, shape):
    return Converted(jn.Lambda(activation(cfg, "Activation")), {}, {}, "pass")


def _flatten(cfg, weights, shape):
    reject(cfg, "Flatten", data_format="channels_last")
    return Converted(jn.Flatten(), {}, {})


def _reshape(cfg, weights, shape):
    return Converted(jn.Reshape(tuple(cfg["target_shape"])), {}, {})


def _embedding(cfg, weights, shape):
    (table,) = arrays(weights, "", 1, cfg, "Embedding")
    layer = jn.Embedding(cfg["input_dim"], cfg["output_dim"], mask_zero=cfg.get("mask_zero", False))
    return Converted(layer, {"embedding": table}, {}, "make" if cfg.get("mask_zero") else "none")


def _masking(cfg, weights, shape):
    return Converted(jn.Masking(cfg.get("mask_value", 0.0)), {}, {}, "make")


def _rescaling(cfg, weights, shape):
    scale = jnp.asarray(cfg.get("scale", 1.0), jnp.float32)
    offset = jnp.asarray(cfg.get("offset", 0.0), jnp.float32)

    def rescale(x):
        with jax.numpy_rank_promotion("allow"):
            return x * scale.astype(x.dtype) + offset.astype(x.dtype)

    return Converted(jn.Lambda(rescale), {}, {}, "pass")


def _add(cfg, weights, shape):
    return Converted(jn.fan_in_sum(), {}, {})


def _concatenate(cfg, weights, shape):
    return Converted(jn.fan_in_concat(cfg.get("axis", -1)), {}, {})


def _ranked(fn, **fixed):
    return lambda cfg, weights, shape: fn(cfg, weights, shape, **fixed)


CONVERTERS: dict[str, Callable[[dict, Weights, tuple], Converted]] = {
    "Dense": _dense,
    "Conv1D": _ranked(_conv, rank=1),
    "Conv2D": _ranked(_conv, rank=2),
    "Conv3D": _ranked(_conv, rank=3),
    "DepthwiseConv2D": _depthwise,
    "SeparableConv2D": _separable,
    "Conv2DTranspose": _conv_transpose,
    **{f"MaxPooling{d}D": _ranked(_pool, maximum=True) for d in (1, 2, 3)},
    **{f"AveragePooling{d}D": _ranked(_pool, maximum=False) for d in (1, 2, 3)},
    **{f"GlobalMaxPooling{d}D": _ranked(_global_pool, maximum=True) for d in (1, 2, 3)},
    **{f"GlobalAveragePooling{d}D": _ranked(_global_pool, maximum=False) for d in (1, 2, 3)},
    **{f"ZeroPadding{d}D": _zero_padding for d in (1, 2, 3)},
    "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _group_norm,
    "Dropout": _dropout,
    "Activation": _activation_layer,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Embedding": _embedding,
    "Masking": _masking,
    "Rescaling": _rescaling,
    "Add": _add,
    "Concatenate": _concatenate,
    "SimpleRNN": _ranked(recurrent, kind="SimpleRNN"),
    "LSTM": _ranked(recurrent, kind="LSTM"),
    "GRU": _ranked(recurrent, kind="GRU"),
    "Bidirectional": bidirectional,
}
