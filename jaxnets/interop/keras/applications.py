"""keras.applications' weight files into the zoo: ResNet, VGG, Inception v3 and Xception.

Each zoo model is matched to Keras's layers by a name map, built here from the model's
own parameter tree: which architecture it is, its depth, whether it has its top. Keras
names most layers (``conv2_block1_1_conv``, ``block1_conv1``, ``predictions``); the layers
it leaves unnamed (all of Inception v3's ``conv2d_bn`` units, Xception's four shortcut
projections) get automatic names ``conv2d``, ``conv2d_1``... whose numbers follow the
order Keras created them in, so they are matched in that order (whatever number the
first one has).

Weight layouts: convolution and Dense kernels are HWIO / (in, out) in both libraries;
a separable convolution's depthwise kernel ``(h, w, channels, 1)`` becomes jaxnets'
``(h, w, 1, channels)``; BatchNorm's gamma, beta, moving mean and variance become
``params`` ``scale``/``bias`` and ``state`` ``mean``/``var``. The zoo models already use
Keras's BatchNorm epsilons (1.001e-5 for ResNet, 1e-3 for Inception v3 and Xception), so
the converted model computes what Keras computes, except that the top outputs logits
where Keras applies a softmax.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np

from jaxnets.interop._tree import TreeFiller
from jaxnets.interop.keras.h5 import Source, describe, import_h5py, read_layer_weights

_RESNET_BLOCKS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}
_VGG_CONVS = {(2, 2, 3, 3, 3): 16, (2, 2, 4, 4, 4): 19}
_AUTO_CLASS = {"conv": "conv2d", "bn": "batch_normalization"}
_SUPPORTED = (
    "the zoo's resnet50/101/152 (convention='keras'), vgg16, vgg19, inception_v3 and xception"
)


class Unit(NamedTuple):
    """One Keras layer with weights and where it goes in the jaxnets model.

    ``keras`` is the Keras layer name, or None for a layer Keras names automatically;
    ``kind`` is ``"conv"``, ``"dense"``, ``"sepconv"`` or ``"bn"``; ``path`` the jaxnets
    sub-tree (``"stage2/block1/main/conv1"``)."""

    keras: str | None
    kind: str
    path: str


def _numbered(tree: dict, prefix: str) -> list[int]:
    """The numbers n of the keys ``prefix<n>`` in ``tree``, sorted."""
    return sorted(int(k[len(prefix) :]) for k in tree if re.fullmatch(rf"{prefix}\d+", k))


def _resnet(params: dict) -> list[Unit]:
    if "bias" not in params["stem"]["conv"]:
        raise ValueError(
            "load_weights: this ResNet has the torchvision convention (no convolution "
            "biases); Keras weights need convention='keras', PyTorch weights "
            "jaxnets.interop.torch.load_state_dict"
        )
    layout = tuple(len(_numbered(params[f"stage{s}"], "block")) for s in range(2, 6))
    if layout not in _RESNET_BLOCKS:
        raise ValueError(
            f"load_weights: a ResNet with {layout} blocks per stage is not in "
            f"keras.applications ({_SUPPORTED})"
        )
    units = [Unit("conv1_conv", "conv", "stem/conv"), Unit("conv1_bn", "bn", "stem/bn")]
    for s, count in zip(range(2, 6), layout, strict=True):
        for b in range(1, count + 1):
            base = f"stage{s}/block{b}"
            keras = f"conv{s}_block{b}"
            if "shortcut" in params[f"stage{s}"][f"block{b}"]:
                units += [
                    Unit(f"{keras}_0_conv", "conv", f"{base}/shortcut/conv"),
                    Unit(f"{keras}_0_bn", "bn", f"{base}/shortcut/bn"),
                ]
            for i in (1, 2, 3):
                units += [
                    Unit(f"{keras}_{i}_conv", "conv", f"{base}/main/conv{i}"),
                    Unit(f"{keras}_{i}_bn", "bn", f"{base}/main/bn{i}"),
                ]
    return units


def _vgg(params: dict) -> list[Unit]:
    if "bn1" in params["block1"]:
        raise ValueError(
            "load_weights: keras.applications has no VGG with BatchNorm (batch_norm=True)"
        )
    convs = tuple(len(_numbered(params[f"block{b}"], "conv")) for b in range(1, 6))
    if convs not in _VGG_CONVS:
        raise ValueError(
            f"load_weights: a VGG with {convs} convolutions per block is not in "
            f"keras.applications ({_SUPPORTED})"
        )
    units = [
        Unit(f"block{b}_conv{c}", "conv", f"block{b}/conv{c}")
        for b, count in enumerate(convs, start=1)
        for c in range(1, count + 1)
    ]
    if "fc1" in params:
        units += [Unit("fc1", "dense", "fc1"), Unit("fc2", "dense", "fc2")]
    return units


def _auto(path: str, count: int | None = None, suffix: str = "") -> list[Unit]:
    """Automatically named conv-BN units ``path/conv{k}``, ``path/bn{k}`` (k = 1..count,
    or the one unit ``conv{suffix}``/``bn{suffix}`` without a count)."""
    ks = [str(k) for k in range(1, count + 1)] if count else [suffix]
    return [
        unit
        for k in ks
        for unit in (Unit(None, "conv", f"{path}/conv{k}"), Unit(None, "bn", f"{path}/bn{k}"))
    ]


def _inception() -> list[Unit]:
    units = _auto("stem", 5)
    branches = {
        "35": (("branch1x1", 1), ("branch5x5", 2), ("branch3x3dbl", 3), ("branch_pool", 0)),
        "r17": (("branch3x3", 1), ("branch3x3dbl", 3)),
        "17": (("branch1x1", 1), ("branch7x7", 3), ("branch7x7dbl", 5), ("branch_pool", 0)),
        "r8": (("branch3x3", 2), ("branch7x7x3", 4)),
    }
    kinds = ["35"] * 3 + ["r17"] + ["17"] * 4 + ["r8"]
    for i, kind in enumerate(kinds):
        for branch, count in branches[kind]:
            units += _auto(f"mixed{i}/{branch}", count)
    for i in (9, 10):
        m = f"mixed{i}"
        units += _auto(f"{m}/branch1x1", 1)
        units += _auto(f"{m}/branch3x3", 1)
        units += _auto(f"{m}/branch3x3/split/1x3") + _auto(f"{m}/branch3x3/split/3x1")
        units += _auto(f"{m}/branch3x3dbl", 2)
        units += _auto(f"{m}/branch3x3dbl/split/1x3") + _auto(f"{m}/branch3x3dbl/split/3x1")
        units += _auto(f"{m}/branch_pool")
    return units


def _xception() -> list[Unit]:
    units = []
    for c in (1, 2):
        units += [
            Unit(f"block1_conv{c}", "conv", f"block1/conv{c}"),
            Unit(f"block1_conv{c}_bn", "bn", f"block1/bn{c}"),
        ]
    for b in range(2, 15):
        main = f"block{b}" if b == 14 else f"block{b}/main"
        for k in (1, 2) if b in (2, 3, 4, 13, 14) else (1, 2, 3):
            units += [
                Unit(f"block{b}_sepconv{k}", "sepconv", f"{main}/sepconv{k}"),
                Unit(f"block{b}_sepconv{k}_bn", "bn", f"{main}/bn{k}"),
            ]
        if b in (2, 3, 4, 13):
            units += _auto(f"block{b}/shortcut")
    return units


def keras_units(params: dict) -> tuple[str, list[Unit]]:
    """Which keras.applications model a zoo model's params are, and its name map.

    Args:
      params: the model's params (arrays or ShapeDtypeStructs), e.g. from
        :func:`jaxnets.shape_tree`.

    Returns:
      ``(architecture, units)``: e.g. ``"resnet50"`` and the :class:`Unit` list, the top
      (``predictions``) included when the model has ``logits``.

    Raises:
      ValueError: the params are not those of a supported zoo model.

    Example:
        >>> import jaxnets as jn
        >>> _, params, _ = jn.shape_tree(jn.models.vgg16(include_top=False), (1, 32, 32, 3))
        >>> arch, units = keras_units(params)
        >>> arch, len(units), units[0]
        ('vgg', 13, Unit(keras='block1_conv1', kind='conv', path='block1/conv1'))
    """
    if "stem" in params and "stage2" in params:
        arch, units = "resnet", _resnet(params)
    elif "mixed0" in params:
        arch, units = "inception_v3", _inception()
    elif "block14" in params:
        arch, units = "xception", _xception()
    elif all(f"block{b}" in params for b in range(1, 6)) and "conv1" in params["block1"]:
        arch, units = "vgg", _vgg(params)
    else:
        raise ValueError(f"load_weights: the model is not one of {_SUPPORTED}")
    if "logits" in params:
        units.append(Unit("predictions", "dense", "logits"))
    return arch, units


def _match(units: list[Unit], layers: dict[str, list[np.ndarray]], where: str) -> list[str]:
    """The file's layer name for each unit: named units by name, automatic ones in order."""
    auto: dict[str, list[str]] = {}
    for kind, cls in _AUTO_CLASS.items():
        pattern = re.compile(rf"{cls}(?:_(\d+))?")
        found = [(int(m.group(1) or 0), n) for n in layers if (m := pattern.fullmatch(n))]
        auto[kind] = [n for _, n in sorted(found)]
    needed = {kind: sum(u.keras is None and u.kind == kind for u in units) for kind in auto}
    for kind, count in needed.items():
        if count and len(auto[kind]) != count:
            raise ValueError(
                f"load_weights: the model needs {count} automatically named "
                f"{_AUTO_CLASS[kind]} layers, {where} has {len(auto[kind])}"
            )
    names, taken = [], {kind: 0 for kind in auto}
    for unit in units:
        if unit.keras is None:
            names.append(auto[unit.kind][taken[unit.kind]])
            taken[unit.kind] += 1
        elif unit.keras in layers:
            names.append(unit.keras)
        else:
            raise ValueError(
                f"load_weights: {where} has no layer {unit.keras!r} (for the model's "
                f"{unit.path!r}){_hint(unit, layers)}"
            )
    return names


def _hint(unit: Unit, layers: dict) -> str:
    """Why a layer may be missing: a file without the top, or Keras 1's layer names."""
    if unit.path in ("logits", "fc1", "fc2"):
        return "; a '_notop' file fits only include_top=False"
    if "res2a_branch2a" in layers:
        return (
            "; this is the 2016 ResNet-50 file with Keras 1 layer names ('res2a_branch2a'), "
            "which jaxnets does not read: use the file keras.applications uses today"
        )
    return ""


def _targets(unit: Unit, filler: TreeFiller) -> list[tuple[str, str, str]]:
    """``(part, path, label)`` of each Keras weight of ``unit``, in Keras's order."""
    p = unit.path
    if unit.kind == "bn":
        return [
            *[
                ("params", f"{p}/{leaf}", label)
                for leaf, label in (("scale", "gamma"), ("bias", "beta"))
                if filler.has("params", f"{p}/{leaf}")
            ],
            ("state", f"{p}/mean", "moving_mean"),
            ("state", f"{p}/var", "moving_variance"),
        ]
    kernels = ["depthwise_kernel", "pointwise_kernel"] if unit.kind == "sepconv" else ["kernel"]
    if filler.has("params", f"{p}/bias"):
        kernels.append("bias")
    return [("params", f"{p}/{k}", k) for k in kernels]


def _convert(label: str, value: np.ndarray) -> np.ndarray:
    """A Keras array in jaxnets' layout (only the depthwise kernel differs)."""
    if label == "depthwise_kernel" and value.ndim == 4 and value.shape[3] == 1:
        return value.reshape(*value.shape[:2], 1, value.shape[2])
    return value


def _keras_shape(label: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The Keras shape of a jaxnets leaf of ``shape``."""
    if label == "depthwise_kernel":
        return (*shape[:2], shape[3], 1)
    return shape


def load_weights(model: Any, path: Source, input_spec: Any) -> tuple[Any, Any]:
    """A keras.applications weight file as the zoo model's ``(params, state)``.

    Reads Keras 2 ``.h5`` files (as keras.applications distributes them, with or without
    the top, e.g. ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``) and Keras 3
    ``.weights.h5`` files (which must carry the layer names, as Keras 3 writes them).
    Nothing is downloaded. The model's top must match the file's: ``include_top=True``
    with ``num_classes`` equal to the file's classes for a full file, ``include_top=False``
    for a ``_notop`` one. The top's output is logits (apply a softmax for Keras's
    probabilities).

    Args:
      model: ``jaxnets.models.resnet50/101/152()`` (Keras convention), ``vgg16()``,
        ``vgg19()``, ``inception_v3()`` or ``xception()``, with or without the top.
      path: the weight file, or an open binary file.
      input_spec: the input shape the model is used at, e.g. ``(1, 224, 224, 3)``.

    Returns:
      ``(params, state)`` for ``model.apply``.

    Raises:
      ValueError: naming the first layer or weight that does not fit (a missing or extra
        layer, a wrong count, both shapes when they differ), or the file when it is not
        an HDF5 weight file or is truncated.

    Example:
        >>> import jax, jaxnets as jn
        >>> from jaxnets.interop.keras import load_weights
        >>> model = jn.models.vgg16(include_top=False)
        >>> load_weights(model, "no_such.h5", (1, 32, 32, 3))
        Traceback (most recent call last):
        FileNotFoundError: read_layer_weights: no such file 'no_such.h5'
    """
    import_h5py()
    where = describe(path)
    layers = read_layer_weights(path, keys="name")
    filler = TreeFiller(model, input_spec, "load_weights")
    _, units = keras_units(filler.trees["params"])
    names = _match(units, layers, where)
    for unit, name in zip(units, names, strict=True):
        targets = _targets(unit, filler)
        arrays = layers[name]
        if len(arrays) != len(targets):
            labels = ", ".join(label for _, _, label in targets)
            raise ValueError(
                f"load_weights: layer {name!r} in {where} holds {len(arrays)} weights, the "
                f"model's {unit.path!r} needs {len(targets)} ({labels})"
            )
        for i, ((part, leaf, label), value) in enumerate(zip(targets, arrays, strict=True)):
            source = f"layer {name!r} weight {i} ({label}) in {where}"
            want = filler.shape(part, leaf)
            converted = _convert(label, value)
            if converted.shape != want:
                raise ValueError(
                    f"load_weights: {source} has shape {value.shape}, the model's {part} "
                    f"{leaf!r} needs {_keras_shape(label, want)}"
                )
            filler.put(part, leaf, converted, source)
    used = set(names)
    extra = [n for n, arrays in layers.items() if arrays and n not in used]
    if extra:
        hint = " (the top: the file fits include_top=True)" if extra[0] == "predictions" else ""
        raise ValueError(
            f"load_weights: {where} has weights for layer {extra[0]!r}, which the model lacks{hint}"
        )
    return filler.result()
