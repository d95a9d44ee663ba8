"""Read the weights in a Keras HDF5 file as ``{layer key: [arrays in Keras's order]}``.

Two layouts exist, and :func:`read_layer_weights` reads both:

- **Keras 2** (``model.save_weights("x.h5")``, the files keras.applications distributes
  such as ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``, and the
  ``model_weights`` group of a whole-model ``model.save("x.h5")``): the group holds an
  attribute ``layer_names`` (possibly split into ``layer_names0``, ``layer_names1``...
  when long) and one group per layer whose attribute ``weight_names`` lists its datasets
  in order. The keys are the layer names (``"conv1_conv"``); a nested model is one key
  whose list holds all its weights.
- **Keras 3** (``model.save_weights("x.weights.h5")`` and the ``model.weights.h5`` inside a
  ``.keras`` archive): the object tree ``layers/<path>/vars/<i>``, where ``<path>`` is the
  layer's class name in snake case, numbered by position among the layers of that class
  (``conv2d``, ``conv2d_1``...), and a nested layer's path continues with its own
  attribute names (``sequential/layers/dense``, ``bidirectional/forward_layer/cell``). The
  keys are those paths, joined with ``/``, without the leading ``layers/`` and the trailing
  ``/vars``; the arrays are ``vars/0``, ``vars/1``... in that order. With
  ``keys="name"`` the keys are the layers' own names instead, which Keras 3 stores on
  each ``vars`` group (attribute ``name``).

Layers without weights may be present, with an empty list. Sharded Keras 3 weights
(``max_shard_size``: several files and a JSON index) are not read. h5py is needed
(``pip install jaxnets[interop]``); it is imported only when a file is read.

Example:
    >>> import os, tempfile, h5py, numpy as np
    >>> from jaxnets.interop.keras.h5 import read_layer_weights
    >>> path = os.path.join(tempfile.mkdtemp(), "w.weights.h5")
    >>> with h5py.File(path, "w") as f:
    ...     f["layers/dense/vars/0"] = np.ones((3, 2), np.float32)
    ...     f["layers/dense/vars/1"] = np.zeros(2, np.float32)
    ...     f["layers/dense/vars"].attrs["name"] = "logits"
    >>> [w.shape for w in read_layer_weights(path)["dense"]]
    [(3, 2), (2,)]
    >>> list(read_layer_weights(path, keys="name"))
    ['logits']
"""

from __future__ import annotations

import os
from typing import IO, Any

import numpy as np

from jaxnets.core.arguments import choice

Source = str | os.PathLike | IO[bytes]


def import_h5py() -> Any:
    """The h5py module, or an ImportError that says how to install it.

    Returns:
      The imported module.

    Example:
        >>> import_h5py().__name__
        'h5py'
    """
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            "reading Keras weight files needs h5py: pip install jaxnets[interop]"
        ) from error
    return h5py


def describe(source: Source) -> str:
    """How a file is named in messages: its path, or the file object's ``name``.

    Args:
      source: a path or an open binary file.

    Returns:
      The text, e.g. ``"'resnet50.h5'"``.

    Example:
        >>> describe("w.h5")
        "'w.h5'"
    """
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return repr(getattr(source, "name", f"<{type(source).__name__}>"))


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _list_attribute(group: Any, name: str) -> list[str] | None:
    """An attribute holding a list of names, joined from its chunks; None when absent."""
    if name in group.attrs:
        return [_text(v) for v in np.atleast_1d(group.attrs[name])]
    if f"{name}0" not in group.attrs:
        return None
    values: list[str] = []
    chunk = 0
    while f"{name}{chunk}" in group.attrs:
        values += [_text(v) for v in np.atleast_1d(group.attrs[f"{name}{chunk}"])]
        chunk += 1
    return values


def _keras2(group: Any, layer_names: list[str], where: str) -> dict[str, list[np.ndarray]]:
    layers = {}
    for layer in layer_names:
        if layer not in group:
            raise ValueError(f"{where}: layer_names lists {layer!r} but the file has no such group")
        weight_names = _list_attribute(group[layer], "weight_names") or []
        missing = [w for w in weight_names if w not in group[layer]]
        if missing:
            raise ValueError(f"{where}: layer {layer!r} lists weight {missing[0]!r} but lacks it")
        layers[layer] = [np.asarray(group[layer][w]) for w in weight_names]
    return layers


def _keras3(root: Any, keys: str, where: str) -> dict[str, list[np.ndarray]]:
    layers: dict[str, list[np.ndarray]] = {}

    def visit(path: str, group: Any) -> None:
        for child in group:
            sub = group[child]
            if not hasattr(sub, "keys"):
                continue
            if child == "vars":
                key = path
                if keys == "name":
                    if "name" not in sub.attrs:
                        raise ValueError(
                            f"{where}: the vars of {path!r} carry no layer name (an older "
                            "Keras 3 wrote it): re-save it with a recent Keras 3, or read it "
                            "with keys='path'"
                        )
                    key = _text(sub.attrs["name"])
                indices = sorted(sub, key=int)
                layers[key] = [np.asarray(sub[i]) for i in indices]
            else:
                visit(f"{path}/{child}" if path else child, sub)

    visit("", root["layers"])
    return layers


def read_layer_weights(source: Source, *, keys: str = "path") -> dict[str, list[np.ndarray]]:
    """Every layer's weights in a Keras ``.h5`` or ``.weights.h5`` file, as NumPy arrays.

    Args:
      source: the file's path, or an open binary file (e.g. a ``model.weights.h5`` read
        out of a ``.keras`` zip archive into ``io.BytesIO``).
      keys: for Keras 3 files, ``"path"`` (the object-tree path, e.g. ``"conv2d_1"`` or
        ``"sequential/layers/dense"``, see the module docstring) or ``"name"`` (each
        layer's own name, e.g. ``"conv1_conv"``). Keras 2 files are always keyed by name.

    Returns:
      ``{key: [arrays]}`` in the file's order: Keras 2's ``layer_names`` order (the
      model's layers), Keras 3's object tree as stored; each list in Keras's weight order
      (e.g. kernel, bias; BatchNorm's gamma, beta, moving mean, moving variance, without
      gamma or beta where the layer has none).

    Raises:
      FileNotFoundError: there is no such file.
      ValueError: the file is not HDF5, is truncated or damaged, or holds no Keras
        weights; the message names the file.
    """
    choice("read_layer_weights", "keys", keys, ("path", "name"))
    h5py = import_h5py()
    where = describe(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise FileNotFoundError(f"read_layer_weights: no such file {where}")
    if isinstance(source, (str, os.PathLike)) and not h5py.is_hdf5(source):
        raise ValueError(f"read_layer_weights: {where} is not an HDF5 file (Keras .h5 weights)")
    try:
        with h5py.File(source, "r") as f:
            group = f.get("model_weights", f)
            layer_names = _list_attribute(group, "layer_names")
            if layer_names is not None:
                return _keras2(group, layer_names, where)
            if "layers" in f and hasattr(f["layers"], "keys"):
                return _keras3(f, keys, where)
            raise ValueError(
                f"read_layer_weights: {where} is an HDF5 file but holds no Keras weights "
                "(neither a 'layer_names' attribute nor a 'layers' group)"
            )
    except OSError as error:
        raise ValueError(
            f"read_layer_weights: {where} is truncated or damaged, or not an HDF5 file: {error}"
        ) from error
