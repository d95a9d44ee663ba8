"""The training state: one pytree that a jitted step maps to the next."""

from __future__ import annotations

import numbers
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np
import optax
from jax.tree_util import GetAttrKey

from jaxnets.core import Layer, SpecLike, init_model
from jaxnets.core.arguments import received
from jaxnets.train.objective import check_optimizer

_WHERE = "create_train_state"

_FIELDS = ("step", "params", "state", "opt_state", "key")
_KEYS = tuple(GetAttrKey(name) for name in _FIELDS)


class TrainState:
    """Everything a training run carries from step to step: ``step``, ``params``,
    ``state`` (BatchNorm statistics and the like), ``opt_state`` and ``key``.

    A pytree whose five children are those fields, in that order and named like them
    (``jax.tree`` and checkpoints see ``params/...``), with a named tuple's API:
    ``_replace``, ``_asdict``, ``_fields``, unpacking and indexing. Treat it as immutable.

    ``key`` is the run's base PRNG key; step ``i`` uses ``fold_in(key, i)``, so the same
    seed gives the same numbers and a resumed run continues the same random stream.
    ``step`` counts the batches trained on; it is a host ``numpy.int32`` (a device
    scalar would cost a dispatch per step to increment), and any integer is accepted.

    A state returned by a train step keeps ``params``, ``state`` and ``opt_state`` as the
    flat list of arrays the compiled step works on, and builds their nested dicts when
    they are first read: taking dicts apart and building them again costs a small
    model's step more than its arithmetic (``benchmarks/RESULTS.md``). Once built, the
    dicts are what the next step reads, so a change made to them in place is seen.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> ts = jn.TrainState(np.int32(0), {"w": np.ones(2)}, {}, (), None)
        >>> step, params, *_ = ts
        >>> ts._replace(step=np.int32(4)).step, sorted(params), ts._fields[1]
        (np.int32(4), ['w'], 'params')
    """

    __slots__ = ("_leaves", "_tree", "_treedef", "key", "step")
    _fields = _FIELDS

    def __init__(self, step: Any, params: Any, state: Any, opt_state: Any, key: Any):
        self.step = step
        self.key = key
        self._tree: tuple[Any, Any, Any] | None = (params, state, opt_state)
        self._leaves: list[Any] | None = None
        self._treedef: Any = None

    def _arrays(self) -> tuple[Any, Any, Any]:
        """``(params, state, opt_state)``, built from the flat arrays at the first call."""
        tree = self._tree
        if tree is None:
            tree = self._tree = self._treedef.unflatten(self._leaves)
        return tree

    @property
    def params(self) -> Any:
        return self._arrays()[0]

    @property
    def state(self) -> Any:
        return self._arrays()[1]

    @property
    def opt_state(self) -> Any:
        return self._arrays()[2]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.step, *self._arrays(), self.key))

    def __len__(self) -> int:
        return len(_FIELDS)

    def __getitem__(self, index):
        return tuple(self)[index]

    def _replace(self, **changes: Any) -> TrainState:
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ValueError(f"TrainState._replace: unknown fields {sorted(unknown)}")
        return TrainState(**{**self._asdict(), **changes})

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(_FIELDS, self, strict=True))

    def __repr__(self) -> str:
        arrays = ", ".join(
            f"{name}=<{len(jax.tree.leaves(tree))} arrays>"
            for name, tree in zip(_FIELDS[1:4], self._arrays(), strict=True)
        )
        return f"TrainState(step={self.step!r}, {arrays}, key={self.key!r})"


def stepped_state(step: Any, key: Any, treedef: Any, leaves: list) -> TrainState:
    """A :class:`TrainState` that holds ``(params, state, opt_state)`` as the flat
    ``leaves`` of ``treedef`` (what a compiled train step returns).

    Args:
      step: the step counter.
      key: the run's base PRNG key.
      treedef: the tree structure of ``(params, state, opt_state)``.
      leaves: its leaves, in ``treedef``'s order; kept, not copied.

    Returns:
      The :class:`TrainState`; its dicts are built when first read.
    """
    ts = object.__new__(TrainState)
    ts.step = step
    ts.key = key
    ts._tree = None
    ts._leaves = leaves
    ts._treedef = treedef
    return ts


def _flatten(ts: TrainState) -> tuple[tuple, None]:
    return (ts.step, *ts._arrays(), ts.key), None


def _flatten_with_keys(ts: TrainState) -> tuple[tuple, None]:
    return tuple(zip(_KEYS, _flatten(ts)[0], strict=True)), None


def _unflatten(_: None, children: Any) -> TrainState:
    return TrainState(*children)


jax.tree_util.register_pytree_with_keys(
    TrainState, _flatten_with_keys, _unflatten, flatten_func=_flatten
)


def create_train_state(
    model: Layer | Mapping[str, Layer],
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
    input_spec: SpecLike | Mapping[str, SpecLike],
    *,
    seed: int = 0,
) -> TrainState:
    """Initialise the model from ``input_spec`` (shapes only) and the optimizer.

    With dicts of models, optimizers and input specs by part (a GAN's ``generator`` and
    ``discriminator``), ``params``, ``state`` and ``opt_state`` are dicts by part, each
    part initialised with its own key (``fold_in`` of the part's name), and the train
    step takes ``(part, objective)`` pairs (:func:`jaxnets.make_train_step`).

    Args:
      model: a network, or a dict of networks by part.
      optimizer: the optax optimizer (with clipping or accumulation already composed
        in, see :func:`jaxnets.optim.wrap`), or a dict of them by part.
      input_spec: the input's shape with the batch dimension, a
        ``jax.ShapeDtypeStruct``, or a dict of them by part.
      seed: the seed of the initialisation and of the run's key.

    Returns:
      A :class:`TrainState` at step 0.

    Example:
        >>> import optax, jaxnets as jn
        >>> ts = jn.create_train_state(jn.Dense(2), optax.sgd(0.1), (4, 3), seed=0)
        >>> int(ts.step), ts.params["kernel"].shape
        (0, (3, 2))
        >>> ts = jn.create_train_state({"a": jn.Dense(2), "b": jn.Dense(1)},
        ...     {"a": optax.sgd(0.1), "b": optax.adam(1e-3)}, {"a": (4, 3), "b": (4, 2)})
        >>> sorted(ts.params), ts.params["b"]["kernel"].shape
        (['a', 'b'], (2, 1))
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{_WHERE}: seed must be an int, got {received(seed)}")
    init_key, run_key = jax.random.split(jax.random.key(seed))
    if not isinstance(model, Mapping):
        _, params, state = init_model(model, init_key, input_spec)
        opt_state = check_optimizer(optimizer, _WHERE).init(params)
        return TrainState(np.int32(0), params, state, opt_state, run_key)
    parts = sorted(model)
    for what, given in (("optimizer", optimizer), ("input_spec", input_spec)):
        if not isinstance(given, Mapping) or sorted(given) != parts:
            have = sorted(given) if isinstance(given, Mapping) else type(given).__name__
            raise ValueError(
                f"create_train_state: with a dict of models, {what} should be a dict with "
                f"the same parts {parts}, got {have}"
            )
    params, state, opt_state = {}, {}, {}
    for part in parts:
        key = jax.random.fold_in(init_key, zlib.crc32(part.encode()))
        _, params[part], state[part] = init_model(model[part], key, input_spec[part])
        opt = check_optimizer(optimizer[part], _WHERE, f"optimizer[{part!r}]")
        opt_state[part] = opt.init(params[part])
    return TrainState(np.int32(0), params, state, opt_state, run_key)
