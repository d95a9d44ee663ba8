"""PyTorch weights into the zoo: torchvision's ResNet and VGG state dicts.

:func:`load_state_dict` maps torchvision's module names onto the zoo models built with
``convention="torchvision"`` (``resnet18/34/50/101/152``) and onto ``vgg11..19`` (with
``batch_norm=True`` for torchvision's ``vgg*_bn``):

- ResNet: ``conv1``/``bn1`` to ``stem/conv``/``stem/bn``; ``layer1..4.<i>`` to
  ``stage2..5/block<i+1>``, whose ``conv<k>``/``bn<k>`` go to ``main/conv<k>``/``main/bn<k>``
  and ``downsample.0``/``downsample.1`` to ``shortcut/conv``/``shortcut/bn``; ``fc`` to
  ``logits``.
- VGG: ``features.<n>`` (torch's running index over convolutions, BatchNorms, ReLUs and
  pools) to ``block<b>/conv<c>`` (and ``bn<c>``); ``classifier.0/3/6`` to ``fc1``, ``fc2``
  and ``logits``. torchvision flattens ``block5``'s map channels first, jaxnets channels
  last, so ``fc1``'s rows are reordered (and torchvision's adaptive pooling to 7x7 is an
  identity only at 224x224: use that input size with the top).

Convolution weights go from OIHW to HWIO, Linear weights are transposed, BatchNorm's
``running_mean``/``running_var`` go into ``state`` and ``num_batches_tracked`` is ignored.
A state dict comes as a dict of tensors or arrays, a ``.pth``/``.pt`` file (read with
``torch.load(..., weights_only=True)``; torch is imported only then) or a
``.safetensors`` file (safetensors' NumPy API; no torch needed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxnets.core.specs import as_spec
from jaxnets.interop._tree import TreeFiller

_BN_LEAVES = (
    ("weight", "params", "scale"),
    ("bias", "params", "bias"),
    ("running_mean", "state", "mean"),
    ("running_var", "state", "var"),
)


def _numbered(tree: Mapping, prefix: str) -> list[int]:
    return sorted(int(k[len(prefix) :]) for k in tree if k[len(prefix) :].isdigit())


def _resnet(params: Mapping) -> list[tuple[str, str, str]]:
    units = [("conv1", "conv", "stem/conv"), ("bn1", "bn", "stem/bn")]
    for s in range(2, 6):
        for b in _numbered(params[f"stage{s}"], "block"):
            torch_block = f"layer{s - 1}.{b - 1}"
            block = params[f"stage{s}"][f"block{b}"]
            for k in _numbered(block["main"], "conv"):
                units += [
                    (f"{torch_block}.conv{k}", "conv", f"stage{s}/block{b}/main/conv{k}"),
                    (f"{torch_block}.bn{k}", "bn", f"stage{s}/block{b}/main/bn{k}"),
                ]
            if "shortcut" in block:
                units += [
                    (f"{torch_block}.downsample.0", "conv", f"stage{s}/block{b}/shortcut/conv"),
                    (f"{torch_block}.downsample.1", "bn", f"stage{s}/block{b}/shortcut/bn"),
                ]
    if "logits" in params:
        units.append(("fc", "linear", "logits"))
    return units


def _vgg(params: Mapping) -> list[tuple[str, str, str]]:
    units, index = [], 0
    batch_norm = "bn1" in params["block1"]
    for b in range(1, 6):
        for c in _numbered(params[f"block{b}"], "conv"):
            units.append((f"features.{index}", "conv", f"block{b}/conv{c}"))
            if batch_norm:
                units.append((f"features.{index + 1}", "bn", f"block{b}/bn{c}"))
            index += 3 if batch_norm else 2
        index += 1  # the block's max pool
    if "fc1" in params:
        units += [
            ("classifier.0", "flat_linear", "fc1"),
            ("classifier.3", "linear", "fc2"),
            ("classifier.6", "linear", "logits"),
        ]
    return units


def torch_units(params: Mapping) -> list[tuple[str, str, str]]:
    """torchvision's module names for a zoo model's params.

    Args:
      params: the params of a torchvision-convention ResNet or of a VGG (arrays or
        ShapeDtypeStructs, e.g. from :func:`jaxnets.shape_tree`).

    Returns:
      ``(torch module, kind, jaxnets path)`` triples, kind ``"conv"``, ``"bn"``,
      ``"linear"`` or ``"flat_linear"`` (the Linear after torch's channels-first flatten).

    Raises:
      ValueError: the params are not those of a supported zoo model.

    Example:
        >>> import jaxnets as jn
        >>> _, params, _ = jn.shape_tree(jn.models.resnet18(), (1, 32, 32, 3))
        >>> torch_units(params)[2]
        ('layer1.0.conv1', 'conv', 'stage2/block1/main/conv1')
    """
    if "stem" in params and "stage2" in params:
        if "bias" in params["stem"]["conv"]:
            raise ValueError(
                "load_state_dict: this ResNet has the Keras convention; torchvision weights "
                "need convention='torchvision' (Keras weights: jaxnets.interop.keras)"
            )
        return _resnet(params)
    if all(f"block{b}" in params for b in range(1, 6)) and "conv1" in params["block1"]:
        return _vgg(params)
    raise ValueError(
        "load_state_dict: the model is not one of the zoo's torchvision-convention ResNets "
        "(resnet18..152(convention='torchvision')) or VGGs (vgg11..19, batch_norm or not)"
    )


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if hasattr(value, "float") and str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def read_state_dict(source: Any) -> dict[str, np.ndarray]:
    """A state dict as ``{name: NumPy array}``, from a mapping, ``.pth`` or ``.safetensors``.

    Args:
      source: a mapping of tensors or arrays, or the path of a ``.safetensors`` file
        (read without torch) or of a file ``torch.save`` wrote (``.pth``/``.pt``: read
        with ``weights_only=True``).

    Returns:
      The arrays, by name.

    Raises:
      FileNotFoundError: there is no such file.
      ValueError: the file cannot be read as a state dict (the message names it).
      ImportError: torch or safetensors is needed and missing.

    Example:
        >>> import numpy as np
        >>> read_state_dict({"fc.bias": np.zeros(3)})["fc.bias"].shape
        (3,)
    """
    if isinstance(source, Mapping):
        return {str(k): _as_numpy(v) for k, v in source.items()}
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "load_state_dict: state_dict_or_path must be a mapping of tensors or a file "
            f"path, got {type(source).__name__}"
        )
    where = repr(os.fspath(source))
    if not os.path.exists(source):
        raise FileNotFoundError(f"load_state_dict: no such file {where}")
    if os.fspath(source).endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError as error:
            raise ImportError(
                "reading .safetensors needs safetensors: pip install jaxnets[interop]"
            ) from error
        try:
            return dict(load_file(os.fspath(source)))
        except Exception as error:  # safetensors raises its own SafetensorError
            raise ValueError(
                f"load_state_dict: {where} is not a readable safetensors file: {error}"
            ) from error
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"reading {where} needs torch (pip install torch), or save it as .safetensors"
        ) from error
    try:
        loaded = torch.load(os.fspath(source), map_location="cpu", weights_only=True)
    except Exception as error:  # pickle and zip errors of every kind
        raise ValueError(
            f"load_state_dict: {where} is not a state dict torch.load can read: {error}"
        ) from error
    if not isinstance(loaded, Mapping):
        raise ValueError(f"load_state_dict: {where} holds a {type(loaded).__name__}, not a dict")
    return {str(k): _as_numpy(v) for k, v in loaded.items()}


def _flat_linear(weight: np.ndarray, spatial: tuple[int, int]) -> np.ndarray:
    """torch's ``(out, C*H*W)`` Linear after a channels-first flatten as jaxnets'
    ``(H*W*C, out)`` kernel after a channels-last one."""
    h, w = spatial
    out, features = weight.shape
    c = features // (h * w)
    return weight.reshape(out, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, out)


def _torch_shape(kind: str, want: tuple[int, ...]) -> tuple[int, ...]:
    """The torch shape of a jaxnets kernel of shape ``want``: OIHW or (out, in)."""
    if kind == "conv":
        return (want[3], want[2], want[0], want[1])
    return (want[1], want[0])


def _convert(kind: str, value: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """A torch weight in jaxnets' layout (``input_shape`` sizes VGG's flattened map)."""
    if kind == "conv":
        return value.transpose(2, 3, 1, 0)
    if kind == "flat_linear":
        return _flat_linear(value, (input_shape[1] // 32, input_shape[2] // 32))
    return value.T


def load_state_dict(model: Any, state_dict_or_path: Any, input_spec: Any) -> tuple[Any, Any]:
    """A torchvision state dict as a zoo model's ``(params, state)``.

    Args:
      model: ``jaxnets.models.resnet18/34/50/101/152(convention="torchvision")`` (the
        default for 18 and 34), or ``vgg11..19`` (``batch_norm=True`` for ``vgg*_bn``),
        with or without the top.
      state_dict_or_path: a mapping of tensors or arrays (``torch_model.state_dict()``), a
        ``.pth``/``.pt`` file or a ``.safetensors`` file.
      input_spec: the input shape the model is used at, channels last, e.g.
        ``(1, 224, 224, 3)`` (torch's images are ``(N, 3, 224, 224)``).

    Returns:
      ``(params, state)`` for ``model.apply``.

    Raises:
      ValueError: naming the first entry that does not fit (missing, extra, or with the
        wrong shape: both shapes, in torch's layout).

    Example:
        >>> import jaxnets as jn
        >>> model = jn.models.resnet18(include_top=False)
        >>> try:
        ...     load_state_dict(model, {}, (1, 32, 32, 3))
        ... except ValueError as error:
        ...     print(error)
        load_state_dict: the state dict lacks 'conv1.weight' (the model's params 'stem/conv/kernel')
    """
    tensors = read_state_dict(state_dict_or_path)
    filler = TreeFiller(model, input_spec, "load_state_dict")
    units = torch_units(filler.trees["params"])
    shape = tuple(as_spec(input_spec).shape)
    used = set()
    for module, kind, path in units:
        if kind == "bn":
            leaves = [(f"{module}.{t}", part, f"{path}/{leaf}") for t, part, leaf in _BN_LEAVES]
            leaves = [entry for entry in leaves if filler.has(entry[1], entry[2])]
        else:
            leaves = [(f"{module}.weight", "params", f"{path}/kernel")]
            if filler.has("params", f"{path}/bias"):
                leaves.append((f"{module}.bias", "params", f"{path}/bias"))
        for name, part, leaf in leaves:
            if name not in tensors:
                raise ValueError(
                    f"load_state_dict: the state dict lacks {name!r} (the model's {part} {leaf!r})"
                )
            value, want = tensors[name], filler.shape(part, leaf)
            weight = name.endswith(".weight") and kind != "bn"
            torch_shape = _torch_shape(kind, want) if weight else want
            if tuple(value.shape) != torch_shape:
                raise ValueError(
                    f"load_state_dict: {name!r} has shape {tuple(value.shape)}, the model's "
                    f"{part} {leaf!r} needs {torch_shape} in torch's layout"
                )
            converted = _convert(kind, value, shape) if weight else value
            filler.put(part, leaf, converted, repr(name))
            used.add(name)
    extra = [k for k in tensors if k not in used and not k.endswith("num_batches_tracked")]
    if extra:
        head = extra[0].startswith(("fc.", "classifier."))
        hint = " (a head: drop its entries to load the model without its top)" if head else ""
        raise ValueError(
            f"load_state_dict: the state dict has {extra[0]!r}, which the model lacks{hint}"
        )
    return filler.result()
