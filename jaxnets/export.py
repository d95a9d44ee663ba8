"""Export a trained model for inference: ``jax.export`` with a symbolic batch, in one file.

:func:`export` stages ``model.apply(params, state, x, train=False)`` as a
:class:`jax.export.Exported` whose batch size is a symbol (or a fixed number), with the
parameters and state baked in; :func:`save` writes it with a small header and :func:`load`
reads it back as a callable :class:`ExportedModel`. Loading needs only NumPy and JAX: this
module imports nothing of jaxnets at import time, so a server that never builds the model
(or has no jaxnets installed, given this one file) can run the export.

A file is a fixed header, a JSON header and jax.export's own serialisation::

    magic    b"JAXNETS-EXPORT\\n"  (15 bytes)
    version  uint32, little endian
    lengths  uint64 JSON header bytes, uint64 payload bytes
    sha256   32 bytes: digest of the JSON header and the payload
    header   JSON: input and output shapes and dtypes (null for the symbolic batch), the
             platforms, the jaxnets and jax versions, class names and metadata
    payload  Exported.serialize()

Example:
    >>> import os, tempfile, jax, numpy as np, jaxnets as jn
    >>> from jaxnets.export import export, save, load
    >>> model = jn.Dense(2)
    >>> _, params, state = model.init(jax.random.key(0), (1, 3))
    >>> path = save(export(model, params, state, (1, 3)), os.path.join(tempfile.mkdtemp(), "m"))
    >>> loaded = load(path)
    >>> loaded.input_shape, loaded(np.ones((5, 3), np.float32)).shape
    ((None, 3), (5, 2))
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from jaxnets.core import Layer

MAGIC = b"JAXNETS-EXPORT\n"
VERSION = 1
_FIXED = struct.Struct("<IQQ32s")  # version, header bytes, payload bytes, sha256
PREFIX_SIZE = len(MAGIC) + _FIXED.size
PRECISIONS = ("float32", "bfloat16")
#: jax.export's platform names, and the platform jaxnets' implementations are chosen for.
PLATFORMS = {"cpu": "cpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}


def _input_spec(input_spec: Any) -> jax.ShapeDtypeStruct:
    """One ShapeDtypeStruct with a batch axis, from a shape, a ShapeDtypeStruct or an array."""
    from jaxnets.core import as_spec
    from jaxnets.core.arguments import received

    try:
        spec = as_spec(input_spec)
    except (TypeError, ValueError) as e:
        raise type(e)(f"export: input_spec: {e}") from None
    if not isinstance(spec, jax.ShapeDtypeStruct):
        raise TypeError(
            f"export: input_spec must be one shape with the batch first, such as (1, 28, 28, "
            f"1), a jax.ShapeDtypeStruct or an array; got {received(input_spec)}"
        )
    if len(spec.shape) < 1:
        raise ValueError(
            f"export: input_spec must have a batch axis first, got the scalar shape {spec.shape}"
        )
    return spec


def _batch_dim(batch: Any) -> Any:
    """The batch dimension: a symbol for ``"dynamic"``, else the given positive int."""
    from jaxnets.core.arguments import received

    if batch == "dynamic":
        (dim,) = jax.export.symbolic_shape("batch")
        return dim
    if isinstance(batch, (int, np.integer)) and not isinstance(batch, bool) and batch >= 1:
        return int(batch)
    raise ValueError(f"export: batch must be 'dynamic' or an int >= 1, got {received(batch)}")


def export(
    model: Layer,
    params: Any,
    state: Any,
    input_spec: Any,
    *,
    batch: str | int = "dynamic",
    precision: str = "float32",
    platform: str | None = None,
) -> jax.export.Exported:
    """``model``'s inference, ``x -> model.apply(params, state, x, train=False)``, exported.

    The parameters and state are baked into the export as constants: what an inference
    user wants is one artefact that maps inputs to outputs, with nothing to keep in step
    beside it (passing them as arguments would make every caller load, structure and
    place the weights the file should already hold). Changing the weights means exporting
    again. The outputs are float32 (floating outputs cast), whatever ``precision``, so
    the code that serves an export does not change with it.

    ``jax.export`` needs a ``jax.jit`` function, which :func:`jaxnets.make_predict` is
    not (it chooses XLA:CPU options at its first call, flags that do not belong in a
    portable artefact), so this stages the same computation in a plain ``jax.jit``.

    Args:
      model: the network.
      params: its trained parameters (checked against ``model.init`` on ``input_spec``).
      state: its state (BatchNorm statistics; ``{}`` for none).
      input_spec: a shape with the batch first, a ``jax.ShapeDtypeStruct`` or an array
        (dtype float32 unless given); its batch size only matters with ``batch="dynamic"``
        as an example size to check the model with.
      batch: ``"dynamic"`` (a symbolic batch size: one export for every batch size) or an
        int, the one batch size the export takes.
      precision: ``"float32"`` or ``"bfloat16"`` (floating inputs and parameters cast to
        bfloat16; the state, BatchNorm statistics, stays float32).
      platform: ``"cpu"``, ``"cuda"``, ``"rocm"`` or ``"tpu"`` (None: JAX's default
        backend's); the export runs only there.

    Returns:
      The :class:`jax.export.Exported`; ``exported.call(x)`` runs it.

    Example:
        >>> import jax, numpy as np, jaxnets as jn
        >>> model = jn.serial(jn.Dense(4), jn.Relu(), jn.Dense(2))
        >>> _, params, state = model.init(jax.random.key(0), (1, 3))
        >>> exported = export(model, params, state, (1, 3))
        >>> [exported.call(np.ones((n, 3), np.float32)).shape for n in (1, 7)]
        [(1, 2), (7, 2)]
    """
    from jaxnets._impl.context import on_platform
    from jaxnets.core import Layer, check_tree_matches, shape_tree
    from jaxnets.core.arguments import received
    from jaxnets.train.precision import policy

    if not isinstance(model, Layer):
        raise TypeError(f"export: model must be a jaxnets Layer, got {received(model)}")
    spec = _input_spec(input_spec)
    dim = _batch_dim(batch)
    if precision not in PRECISIONS:
        raise ValueError(
            f"export: precision must be 'float32' or 'bfloat16', got {received(precision)}"
        )
    if platform is not None and platform not in PLATFORMS:
        raise ValueError(
            f"export: platform must be one of {', '.join(map(repr, PLATFORMS))} or None, got "
            f"{received(platform)}"
        )
    target = platform or jax.export.default_export_platform()
    example = jax.ShapeDtypeStruct(
        (dim if isinstance(dim, int) else spec.shape[0], *spec.shape[1:]), spec.dtype
    )
    try:
        _, expected_params, expected_state = shape_tree(model, example)
    except (TypeError, ValueError) as e:  # LayerError and LayerTypeError among them
        raise ValueError(
            f"export: the model does not take input_spec {tuple(example.shape)} "
            f"{example.dtype}: {e}"
        ) from None
    check_tree_matches(expected_params, params, "export: params")
    check_tree_matches(expected_state, state, "export: state")
    mixed = policy(precision, where="export")
    if mixed.active:
        params = mixed.cast_inputs(params)

    def infer(x):
        with on_platform(PLATFORMS[target]):
            y, _ = model.apply(params, state, mixed.cast_inputs(x), key=None, train=False)
        return jax.tree.map(
            lambda a: a.astype(jnp.float32) if jnp.issubdtype(a.dtype, jnp.floating) else a, y
        )

    arg = jax.ShapeDtypeStruct((dim, *spec.shape[1:]), spec.dtype)
    try:
        return jax.export.export(jax.jit(infer), platforms=[target])(arg)
    except Exception as e:  # jax's shape-polymorphism errors have no common class
        if isinstance(dim, int):
            raise
        raise ValueError(
            f"export: the model cannot be exported with a symbolic batch size ({e}); give "
            f"batch=N for one fixed batch size"
        ) from e


def _aval(aval: Any) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else None for d in aval.shape]
    return {"shape": shape, "dtype": str(aval.dtype)}


def save(
    exported: jax.export.Exported,
    path: str,
    *,
    class_names: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Write ``exported`` to ``path`` with its header, atomically (a reader, or a failed
    save, leaves the old file or the new one, never a part).

    Args:
      exported: from :func:`export` (one input).
      path: the file to write (``.jaxexport`` by convention).
      class_names: the name of each class, one per output of the last axis.
      metadata: JSON values kept in the header (what a reader needs to prepare inputs,
        such as ``{"image_range": [0, 1]}``).

    Returns:
      ``path``.

    Example:
        >>> import os, tempfile, jax, jaxnets as jn
        >>> model = jn.Dense(2)
        >>> _, params, state = model.init(jax.random.key(0), (1, 3))
        >>> path = os.path.join(tempfile.mkdtemp(), "m.jaxexport")
        >>> exported = export(model, params, state, (1, 3))
        >>> load(save(exported, path, class_names=["a", "b"])).class_names
        ['a', 'b']
    """
    import jaxnets
    from jaxnets.core.arguments import received

    if not isinstance(exported, jax.export.Exported):
        raise TypeError(f"save: exported must be a jax.export.Exported, got {received(exported)}")
    if len(exported.in_avals) != 1:
        raise ValueError(f"save: expected an export of one input, got {len(exported.in_avals)}")
    outputs = [_aval(a) for a in exported.out_avals]
    if class_names is not None:
        names = list(class_names) if not isinstance(class_names, str) else None
        if names is None or not all(isinstance(n, str) for n in names):
            raise TypeError(
                f"save: class_names must be a list of strings, got {received(class_names)}"
            )
        classes = outputs[0]["shape"][-1] if len(outputs) == 1 and outputs[0]["shape"] else None
        if classes != len(names):
            raise ValueError(
                f"save: {len(names)} class_names for an output of shape "
                f"{tuple(outputs[0]['shape']) if len(outputs) == 1 else 'several'}; give one "
                f"name per output of the last axis"
            )
    try:
        extra = json.loads(json.dumps(dict(metadata or {}), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(f"save: metadata must be a mapping of JSON values: {e}") from None
    header = {
        "format": "jaxnets-export",
        "input": _aval(exported.in_avals[0]),
        "outputs": outputs,
        "platforms": list(exported.platforms),
        "jaxnets": jaxnets.__version__,
        "jax": jax.__version__,
        "class_names": None if class_names is None else list(class_names),
        "metadata": extra,
    }
    head = json.dumps(header, sort_keys=True).encode()
    payload = bytes(exported.serialize())
    digest = hashlib.sha256(head + payload).digest()
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + _FIXED.pack(VERSION, len(head), len(payload), digest))
            f.write(head)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


class ExportedModel:
    """A loaded export: ``model(x)`` runs it on a batch (NumPy or JAX arrays).

    Attributes:
      exported: the :class:`jax.export.Exported`.
      header: the file's JSON header.
      input_shape: the input shape, None for the symbolic batch.
      input_dtype: the input dtype (inputs of the same kind are cast to it).
      class_names: the class names, or None.
      metadata: what the exporter kept beside the model.
    """

    def __init__(self, exported: jax.export.Exported, header: Mapping[str, Any]):
        self.exported = exported
        self.header = dict(header)
        self.input_shape: tuple[int | None, ...] = tuple(header["input"]["shape"])
        self.input_dtype = np.dtype(header["input"]["dtype"])
        self.class_names: list[str] | None = header.get("class_names")
        self.metadata: dict[str, Any] = dict(header.get("metadata") or {})

    def __call__(self, inputs: Any) -> Any:
        """The outputs for ``inputs``, a batch of the export's input shape.

        Args:
          inputs: an array of shape ``input_shape`` (any batch size where it is None).

        Returns:
          The outputs (JAX arrays).
        """
        x = inputs if isinstance(inputs, jax.Array) else np.asarray(inputs)
        want = self.input_shape
        shown = "(" + ", ".join("batch" if d is None else str(d) for d in want) + ")"
        if len(x.shape) != len(want) or any(
            d is not None and d != s for d, s in zip(want, x.shape, strict=True)
        ):
            raise ValueError(
                f"exported model: inputs must have shape {shown}, got {tuple(x.shape)}"
            )
        floating = np.issubdtype(self.input_dtype, np.floating)
        if np.issubdtype(x.dtype, np.floating) != floating:
            hint = " (scale images to the range the model was trained on)" if floating else ""
            raise ValueError(
                f"exported model: inputs must be {self.input_dtype}, got {x.dtype}{hint}"
            )
        return self.exported.call(x.astype(self.input_dtype))


def load(path: str) -> ExportedModel:
    """Read an export written by :func:`save`, checked (format, length, checksum).

    Args:
      path: the file.

    Returns:
      An :class:`ExportedModel`.

    Raises:
      ValueError: the file is not a jaxnets export, is truncated or damaged, or was
        written by a newer format.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
        >>> with open(path, "w") as f:
        ...     _ = f.write("hello")
        >>> try:
        ...     load(path)
        ... except ValueError as e:
        ...     print(str(e).replace(path, "notes.txt"))
        load: notes.txt is not a jaxnets export (it does not start with b'JAXNETS-EXPORT\\n')
    """
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        raise ValueError(f"load: {path} is not a jaxnets export (it does not start with {MAGIC!r})")
    if len(data) < PREFIX_SIZE:
        raise ValueError(f"load: {path} is truncated: {len(data)} bytes, shorter than the header")
    version, head_size, payload_size, digest = _FIXED.unpack_from(data, len(MAGIC))
    if version > VERSION:
        raise ValueError(
            f"load: {path} has format version {version}, newer than this reader's {VERSION}; "
            f"load it with a newer jaxnets"
        )
    body = data[PREFIX_SIZE:]
    if len(body) != head_size + payload_size:
        raise ValueError(
            f"load: {path} is truncated or has extra bytes: the header announces "
            f"{PREFIX_SIZE + head_size + payload_size} bytes, the file has {len(data)}"
        )
    if hashlib.sha256(body).digest() != digest:
        raise ValueError(f"load: {path} is damaged (its checksum does not match its contents)")
    header = json.loads(body[:head_size])
    exported = jax.export.deserialize(bytearray(body[head_size:]))
    return ExportedModel(exported, header)
