"""Whole Keras models into jaxnets: :func:`load_model` reads a ``.keras`` archive.

A ``.keras`` file is a zip with ``config.json`` (the architecture) and
``model.weights.h5`` (the weights, read by :mod:`jaxnets.interop.keras.h5`). Keras itself
is not needed. A Sequential model becomes a :func:`jaxnets.serial` of the converted
layers, each under its Keras name; a Functional model (or one that carries a mask) becomes
a graph layer whose children are the Keras layers, run in the config's order. Masks (from
``Embedding(mask_zero=True)`` or ``Masking``) travel as Keras's do: beside the tensor,
through layers that keep the time axis, into the recurrent layers, which take them as
``(x, mask)``; a layer without mask support drops the mask, as Keras does (with a
warning). ``docs/interop.md`` lists the layers and options.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxnets as jn
from jaxnets.core import Layer
from jaxnets.core.children import apply_child, init_child
from jaxnets.interop.keras.h5 import read_layer_weights
from jaxnets.interop.keras.layer_map import CONVERTERS, Converted, KerasConversionError, unsupported

__all__ = ["KerasConversionError", "load_model"]


class _Node(NamedTuple):
    name: str
    layer: Layer
    inputs: tuple[str, ...]
    multi: bool  # the layer takes a list of tensors (Add, Concatenate)
    mask: str  # as Converted.mask
    keeps: bool


def _read_archive(path) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """The config and the weights (by object path) of a ``.keras`` archive."""
    where = repr(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file {where}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"load_model: {where} is not a .keras archive (a zip file)")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        for needed in ("config.json", "model.weights.h5"):
            if needed not in names:
                raise ValueError(f"load_model: {where} has no {needed} (not a Keras 3 .keras file)")
        config = json.loads(archive.read("config.json"))
        weights = read_layer_weights(io.BytesIO(archive.read("model.weights.h5")))
    return config, weights


def _ref(tensor: Any, owner: str) -> str:
    """The producing layer's name of a ``__keras_tensor__`` reference."""
    if not (isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__"):
        raise KerasConversionError(f"load_model: layer {owner!r} takes a non-tensor {tensor!r}")
    name, node_index, tensor_index = tensor["config"]["keras_history"]
    if node_index or tensor_index:
        raise KerasConversionError(
            f"load_model: layer {owner!r} reads output {tensor_index} of call {node_index} of "
            f"{name!r}; shared layers and layers with several outputs are not supported"
        )
    return name


def _io_names(value) -> list[str]:
    """``input_layers`` / ``output_layers``: one ``[name, 0, 0]`` or a list of them."""
    if value and isinstance(value[0], str):
        return [value[0]]
    return [v[0] for v in value]


def _weight_paths(container: list[dict]) -> dict[str, str]:
    """Each layer's path in ``model.weights.h5``: Keras names the layers of a model's list
    by their class in snake case, numbered in order ("dense", "dense_1"), not by name."""
    used: dict[str, int] = {}
    paths = {}
    for layer in container:
        snake = re.sub(r"\W+", "", layer["class_name"])
        snake = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", snake)
        snake = re.sub("([a-z])([A-Z])", r"\1_\2", snake).lower()
        used[snake] = used.get(snake, -1) + 1
        paths[layer["config"]["name"]] = f"{snake}_{used[snake]}" if used[snake] else snake
    return paths


def _spec(layer_cfg: dict) -> jax.ShapeDtypeStruct:
    """An InputLayer's spec: unknown sizes (the batch, a free length) become 1."""
    shape = layer_cfg.get("batch_shape") or [None, *layer_cfg["shape"]]
    dims = tuple(1 if d is None else int(d) for d in shape)
    return jax.ShapeDtypeStruct(dims, jnp.dtype(layer_cfg.get("dtype") or "float32"))


def _sequential(config: dict) -> tuple[list[dict], list[dict], list[tuple[str, ...]], dict]:
    layers = config["layers"]
    inputs = [layer for layer in layers if layer["class_name"] == "InputLayer"]
    rest = [layer for layer in layers if layer["class_name"] != "InputLayer"]
    if inputs:
        spec_cfg = inputs[0]["config"]
    elif config.get("build_input_shape"):
        spec_cfg = {"batch_shape": config["build_input_shape"], "dtype": "float32"}
    else:
        raise KerasConversionError(
            "load_model: the Sequential model was never built (no input shape)"
        )
    names = [layer["config"]["name"] for layer in rest]
    sources: list[tuple[str, ...]] = [("input",), *((n,) for n in names[:-1])]
    outputs: dict[str, Any] = {
        "inputs": ["input"],
        "outputs": [names[-1]],
        "specs": {"input": _spec(spec_cfg)},
        "paths": _weight_paths(rest),
    }
    return rest, [layer["config"] for layer in rest], sources, outputs


def _functional(config: dict) -> tuple[list[dict], list[dict], list[tuple[str, ...]], dict]:
    layers = {layer["name"]: layer for layer in config["layers"]}
    input_names = _io_names(config["input_layers"])
    output_names = _io_names(config["output_layers"])
    sources: dict[str, tuple[str, ...]] = {}
    for name, layer in layers.items():
        if layer["class_name"] == "InputLayer":
            continue
        nodes = layer.get("inbound_nodes", [])
        if len(nodes) != 1:
            raise KerasConversionError(
                f"load_model: layer {name!r} ({layer['class_name']}) is called {len(nodes)} "
                f"times; shared layers are not supported"
            )
        first = nodes[0]["args"][0]
        tensors = first if isinstance(first, list) else [first]
        sources[name] = tuple(_ref(t, name) for t in tensors)
    needed: set[str] = set()
    todo = list(output_names)
    while todo:  # only what the outputs read (not the ops that compute Keras's masks)
        name = todo.pop()
        if name not in needed and name not in input_names:
            needed.add(name)
            todo.extend(sources.get(name, ()))
    order = [layers[n] for n in layers if n in needed]
    specs = {n: _spec(layers[n]["config"]) for n in input_names}
    io_ = {
        "inputs": input_names,
        "outputs": output_names,
        "specs": specs,
        "paths": _weight_paths(config["layers"]),
    }
    return order, [layer["config"] for layer in order], [sources[lay["name"]] for lay in order], io_


def _check_fit(name: str, kind: str, got: dict, expected: Any, what: str) -> None:
    got_shapes = jax.tree.map(lambda a: tuple(a.shape), got)
    want = jax.tree.map(lambda a: tuple(a.shape), expected)
    if got_shapes != want:
        raise KerasConversionError(
            f"load_model: Keras layer {name!r} ({kind}): its {what} {got_shapes} do not fit "
            f"the jaxnets layer, which expects {want}"
        )


def _convert(layer: dict, cfg: dict, weights: dict, spec, prefix: str) -> Converted:
    kind = layer["class_name"]
    if kind not in CONVERTERS:
        raise unsupported(cfg, kind, "this layer")

    def getter(sub: str) -> list[np.ndarray]:
        return weights.get(f"{prefix}/{sub}" if sub else prefix, [])

    shape = tuple(spec[0].shape if isinstance(spec, tuple) else spec.shape)
    return CONVERTERS[kind](cfg, getter, shape)


def _node_input(node: _Node, env: dict, masks: dict):
    if node.multi:
        return [env[i] for i in node.inputs]
    x, mask = env[node.inputs[0]], masks[node.inputs[0]]
    return (x, mask) if mask is not None and node.mask == "take" else x


def _node_output(node: _Node, y, masks: dict, mask_in):
    if node.mask == "make":
        y, mask = y
    elif node.mask == "pass" or (node.mask == "take" and node.keeps):
        mask = mask_in
    else:
        mask = None
    masks[node.name] = mask
    return y


def _graph(nodes: list[_Node], inputs: list[str], outputs: list[str]) -> Layer:
    """A layer that runs ``nodes`` in order, each a child under its Keras name."""

    def run(x, step):
        xs = x if len(inputs) > 1 else (x,)
        env = dict(zip(inputs, xs, strict=True))
        masks: dict[str, Any] = dict.fromkeys(inputs)
        for node in nodes:
            mask_in = None if node.multi else masks[node.inputs[0]]
            y = step(node, _node_input(node, env, masks))
            env[node.name] = _node_output(node, y, masks, mask_in)
        out = [env[n] for n in outputs]
        return out[0] if len(out) == 1 else tuple(out)

    def init(key, input_spec):
        params: dict = {}
        state: dict = {}

        def step(node, x):
            spec, p, s = init_child(node.name, node.layer, key, x)
            for tree, value in ((params, p), (state, s)):
                if value:
                    tree[node.name] = value
            return spec

        return run(input_spec, step), params, state

    def apply(params, state, x, *, key=None, train):
        new_state = dict(state)

        def step(node, value):
            y, s = apply_child(node.name, node.layer, params, state, value, key, train)
            if s:
                new_state[node.name] = s
            return y

        return run(x, step), new_state

    return Layer(init, apply, "keras_graph")


def load_model(path: str | os.PathLike) -> tuple[Layer, dict, dict]:
    """Build a jaxnets network from a Keras 3 ``.keras`` archive, with its weights.

    Sequential and Functional models of the layers listed in ``docs/interop.md`` are
    built so that ``layer.apply(params, state, x, train=False)`` equals Keras's
    ``model(x)``; Keras's defaults (epsilons, GRU's reset-after form, masked steps holding
    the previous output) are set explicitly. Keras is not imported.

    Args:
      path: the ``.keras`` file.

    Returns:
      ``(layer, params, state)``: the network and its params and state (BatchNorm's moving
      statistics), keyed by the Keras layers' names.

    Raises:
      FileNotFoundError: there is no such file.
      ValueError: the file is not a ``.keras`` archive.
      KerasConversionError: a layer or an option has no jaxnets counterpart (the message
        names the layer and shows its config), or weights that do not fit.

    Example:
        >>> import jaxnets as jn
        >>> from jaxnets.interop.keras.model import load_model
        >>> load_model("missing.keras")
        Traceback (most recent call last):
        ...
        FileNotFoundError: load_model: no such file 'missing.keras'
    """
    config, weights = _read_archive(path)
    kind = config.get("class_name")
    if kind == "Sequential":
        layers, cfgs, sources, io_ = _sequential(config["config"])
    elif kind in ("Functional", "Model"):
        layers, cfgs, sources, io_ = _functional(config["config"])
    else:
        raise KerasConversionError(
            f"load_model: a {kind!r} model is not supported (Sequential or Functional)"
        )
    specs: dict[str, Any] = dict(io_["specs"])
    mask_of: dict[str, Any] = dict.fromkeys(specs)
    nodes: list[_Node] = []
    params: dict = {}
    state: dict = {}
    key = jax.random.key(0)
    for layer, cfg, src in zip(layers, cfgs, sources, strict=True):
        name, lkind = cfg["name"], layer["class_name"]
        multi = lkind in ("Add", "Concatenate")
        in_spec = [specs[s] for s in src] if multi else specs[src[0]]
        conv = _convert(layer, cfg, weights, in_spec[0] if multi else in_spec, io_["paths"][name])
        node = _Node(name, conv.layer, src, multi, conv.mask, conv.keeps)
        masked = [s for s in src if mask_of[s] is not None]
        if masked and multi:  # Keras would merge the masks
            raise unsupported(cfg, lkind, f"the mask made by {mask_of[masked[0]]!r} reaching it")
        box: dict[str, Any] = {}

        def shapes(k, node=node, x=in_spec, box=box):
            if node.mask == "take" and not node.multi and mask_of[node.inputs[0]] is not None:
                x = (x, jax.ShapeDtypeStruct(x.shape[:2], jnp.bool_))
            out, p, s = node.layer.init(k, x)
            box["out"] = out
            return p, s

        p_shapes, s_shapes = jax.eval_shape(shapes, key)
        _check_fit(name, lkind, conv.params, p_shapes, "weights")
        _check_fit(name, lkind, conv.state, s_shapes, "moving statistics")
        out = box["out"]
        if conv.mask == "make":
            out = out[0]
            mask_of[name] = name
        elif conv.mask == "pass" or (conv.mask == "take" and conv.keeps):
            mask_of[name] = mask_of[src[0]]
        else:
            mask_of[name] = None
        specs[name] = out
        nodes.append(node)
        if conv.params:
            params[name] = jax.tree.map(jnp.asarray, conv.params)
        if conv.state:
            state[name] = jax.tree.map(jnp.asarray, conv.state)
    chain = all(
        len(n.inputs) == 1 and (i == 0 or n.inputs[0] == nodes[i - 1].name)
        for i, n in enumerate(nodes)
    )
    if kind == "Sequential" and chain and all(m is None for m in mask_of.values()):
        net = jn.serial(*((n.name, n.layer) for n in nodes))
    else:
        net = _graph(nodes, io_["inputs"], io_["outputs"])
    return net, params, state
