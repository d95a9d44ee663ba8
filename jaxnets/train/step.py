"""The jit-compiled train step: objectives, optax updates, placement on one device or a mesh."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import optax

from jaxnets import _impl, distributed
from jaxnets._impl import xla_options
from jaxnets.core import Layer
from jaxnets.core.arguments import flag
from jaxnets.train.objective import MetricFn, Objective, Update, make_updates
from jaxnets.train.precision import Policy
from jaxnets.train.precision import policy as get_policy
from jaxnets.train.state import TrainState, stepped_state
from jaxnets.train.tracing import (
    _abstract,
    _key_reaches_outputs,
    _mismatch,
    _named,
    _trace_objectives,
    model_uses_key,
)
from jaxnets.train.update import step_function

__all__ = [
    "CompiledTrainStep",
    "LossLike",
    "LoweredTrainStep",
    "TrainStep",
    "make_train_step",
    "model_uses_key",
    "step_function",
]

LossLike = str | Callable | Objective | Sequence[tuple[str, Objective]]


def make_train_step(
    model: Layer | Mapping[str, Layer] | None,
    loss: LossLike,
    optimizer: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    donate: bool = True,
    precision: str | Policy | None = None,
    mesh: distributed.MeshLike | None = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> TrainStep:
    """A compiled ``step(train_state, batch) -> (train_state, metrics)``.

    What the step minimises is given by ``loss``, in one of three forms:

    - a loss name or per-example ``loss(outputs, labels)`` with ``model`` a Layer: the
      batch is ``(inputs, labels)`` and the objective is :func:`jaxnets.train.supervised`;
    - an objective ``objective(params, state, batch, *, key, train) -> (loss, (new_state,
      metrics))`` over the whole batch, which may be any pytree (``model`` may be None);
    - a sequence of ``(part, objective)`` pairs for a train state of named parts (see
      :func:`~jaxnets.create_train_state` with dicts): each objective is differentiated
      with respect to ``params[part]`` only and updated with ``optimizer[part]``, in
      order, inside one compiled function, so a later part sees the earlier parts'
      updated params and state (a GAN's discriminator, then its generator).

    Each update's key is ``fold_in(fold_in(train_state.key, step), crc32(part))``. The
    metrics are ``loss`` (the sum of the parts' losses, each also as ``<part>_loss``) and
    those the objectives return. The input train state is donated (its buffers are
    reused): keep only the returned one.

    Args:
      model: the network, a dict of networks by part, or None with an objective.
      loss: as above.
      optimizer: an optax optimizer, or a dict of them by part. Compose clipping and
        accumulation into it (:func:`jaxnets.optim.wrap`) before the train state is
        made, so the state and the step agree.
      metrics: per-example ``metric(outputs, labels)`` functions (per-example losses
        only; default: accuracy for classification losses).
      donate: reuse the input state's buffers.
      precision: a name or :class:`~jaxnets.train.precision.Policy`: the supervised
        objective casts its inputs to the compute dtype; every objective's loss is
        scaled where the policy says, and an update whose scaled gradients overflow
        is skipped. Parameters stay float32.
      mesh: where the step runs: None (one device), a mesh from
        :func:`jaxnets.distributed.make_mesh` (data parallel: the batch split over
        the devices, the state replicated) or a
        :func:`~jaxnets.distributed.fully_sharded` plan. The numbers are those of one
        device with the whole batch.
      compiler_options: XLA options; None chooses them from what the model's layer
        implementations declare (``docs/implementations.md``), ``{}`` keeps XLA's
        defaults. Honoured
        with and without a mesh; ``step.compiler_options`` shows what was used.

    Returns:
      A :class:`TrainStep`.

    Example:
        >>> import optax, numpy as np, jaxnets as jn
        >>> model = jn.serial(jn.Dense(8), jn.Relu(), jn.Dense(2))
        >>> opt = optax.adam(1e-2)
        >>> ts = jn.create_train_state(model, opt, (4, 3))
        >>> step = jn.make_train_step(model, "softmax_cross_entropy", opt)
        >>> ts, m = step(ts, (np.ones((4, 3), np.float32), np.zeros(4, np.int32)))
        >>> sorted(m), int(ts.step)
        (['accuracy', 'loss'], 1)
    """
    mixed = get_policy(precision, where="make_train_step")
    flag("make_train_step", "donate", donate)
    updates = make_updates(model, loss, optimizer, metrics=metrics, precision=mixed)
    placement = None if mesh is None else distributed.as_plan(mesh)
    return TrainStep(
        updates,
        loss_scale=mixed.loss_scale,
        donate=donate,
        compiler_options=compiler_options,
        placement=placement,
    )


class TrainStep:
    """The jitted train step, ``step(train_state, batch) -> (train_state, metrics)``, on
    one device or a mesh (``placement``).

    Only the arrays that change (params, state and optimizer state, as one flat list) and
    the batch cross the jit boundary; the step counter stays a host integer, and the key
    (with the step) is passed only when an objective uses randomness (found once, from
    the traced objectives). The returned :class:`TrainState` keeps that flat list, so the
    next step takes it as it is and nested dicts are built only when read: each argument
    and each dict taken apart or built costs a small model's step microseconds of
    dispatch. With a placement the state's arrays keep the plan's shardings from step to
    step and each batch is split along the data axis.

    Attributes:
        compiler_options: the XLA options the step compiled with (None before the first
            call).
        uses_key: whether the objectives use the key (None before the first call).
        implementations: the layers' implementations in the objectives, as
            ``jaxnets._impl.Choice`` records (op, implementation, declarations), from the
            trace of the compiled step, derivatives included (None before the first call).
    """

    def __init__(
        self,
        updates: Sequence[Update],
        *,
        loss_scale: float = 1.0,
        donate: bool = True,
        compiler_options: Mapping[str, Any] | None = None,
        placement: distributed.DataParallel | None = None,
    ):
        self.updates = tuple(updates)
        self._update = step_function(self.updates, loss_scale, placement)
        self._donate_argnums = (0,) if donate else ()
        self._options = compiler_options
        self._placement = placement
        self.compiler_options: dict[str, Any] | None = None
        self.uses_key: bool | None = None
        self.implementations: list[_impl.Choice] | None = None
        self._jitted: Any = None  # the jax.jit object, made at the first call
        self._treedef: Any = None  # of (params, state, opt_state), fixed at the first call
        self._specs: dict = {}  # their shapes and dtypes at the first call, for messages
        self._shardings: list | None = None  # of the flat arrays, with a placement

    def __call__(self, ts: TrainState, batch) -> tuple[TrainState, dict]:
        # Written for a dispatch-bound step: every host-side operation shows in a tiny model's step.
        try:
            fresh = ts._tree is None and ts._treedef is self._treedef
        except AttributeError:  # not a TrainState: _flat_arrays names it
            fresh = False
        leaves = ts._leaves if fresh else self._flat_arrays(ts, batch)
        key, step = ts.key, _host_step(ts.step)
        if self._placement is not None:
            batch = distributed.shard_batch(batch, self._placement)
            if not fresh:
                key = distributed.place_state(key, self._placement)
        if self.uses_key:
            leaves, out = self._jitted(leaves, batch, key, step)
        else:
            leaves, out = self._jitted(leaves, batch)
        return stepped_state(step + 1, key, self._treedef, leaves), out

    def _args(self, ts: TrainState, batch) -> tuple:
        leaves = self._flat_arrays(ts, batch)
        key = ts.key
        if self._placement is not None:
            batch = distributed.shard_batch(batch, self._placement)
            key = distributed.place_state(key, self._placement)
        return (leaves, batch, key, _host_step(ts.step)) if self.uses_key else (leaves, batch)

    def _flat_arrays(self, ts: TrainState, batch) -> list:
        """``(params, state, opt_state)`` of ``ts`` as the compiled step's flat list (placed
        on the mesh, with a placement)."""
        if not isinstance(ts, TrainState):
            raise TypeError(
                f"train step: expected a jaxnets TrainState (from create_train_state), "
                f"got {type(ts).__name__}"
            )
        tree = ts._arrays()
        if self._jitted is None:
            leaves, treedef = jax.tree.flatten(tree)
            self._setup(ts, batch, tree, treedef)
        else:
            try:
                leaves = self._treedef.flatten_up_to(tree)
            except (ValueError, TypeError):
                raise _mismatch(self._specs, tree, _DOES_NOT_FIT) from None
        if self._shardings is not None:
            leaves = [
                distributed.place_array(x, s) for x, s in zip(leaves, self._shardings, strict=True)
            ]
        return leaves

    def _setup(self, ts: TrainState, batch, tree: tuple, treedef) -> None:
        """From one trace of the objectives (not of the optimizers: only what the layers'
        implementations declare counts): whether they use the key, and the XLA options."""
        platform = xla_options.platform_for(tree)
        with _impl.on_platform(platform), _impl.record_choices() as choices:
            jaxpr = _trace_objectives(self.updates, ts.params, ts.state, batch)
        uses_key = _key_reaches_outputs(jaxpr)
        options = self._options
        if options is None:
            options = xla_options.options_for(_impl.declared(choices), platform)
        update = xla_options.on_platform_of(self._update, tree)
        specs = _named(_abstract(tree))

        def train_step(leaves, batch, key=None, step=None):
            if not all(isinstance(leaf, jax.Array) for leaf in leaves):  # at trace time
                raise _mismatch(specs, treedef.unflatten(leaves), _DOES_NOT_FIT)
            with _impl.record_choices() as traced:
                *carry, out = update(*treedef.unflatten(leaves), batch, key, step)
            self.implementations = list(traced)  # those of the program compiled
            new_leaves, new_treedef = jax.tree.flatten(tuple(carry))
            if new_treedef != treedef:
                raise _mismatch(specs, carry, "train step: one step changed the state's structure")
            return new_leaves, out

        placement: dict[str, Any] = {}
        if self._placement is not None:
            plan = self._placement
            self._shardings = [plan.sharding_for(np.shape(x)) for x in treedef.flatten_up_to(tree)]
            repl = plan.replicated()
            ins = [self._shardings, plan.batch_sharding()]
            placement = {
                "in_shardings": tuple(ins + [repl, repl] if uses_key else ins),
                "out_shardings": (self._shardings, repl),
            }
        self._jitted = jax.jit(
            train_step,
            compiler_options=dict(options) or None,
            donate_argnums=self._donate_argnums,
            **placement,
        )
        self._treedef, self._specs = treedef, specs
        self.uses_key, self.compiler_options = uses_key, dict(options)

    def lower(self, ts: TrainState, batch) -> LoweredTrainStep:
        """Lower for these arguments; ``.compile()`` gives a step with the same calling
        convention, ``(train_state, batch) -> (train_state, metrics)`` (ahead-of-time
        compilation, ``cost_analysis()``, ``as_text()``)."""
        args = self._args(ts, batch)
        return LoweredTrainStep(self, self._jitted.lower(*args))

    def _cache_size(self) -> int:
        return 0 if self._jitted is None else self._jitted._cache_size()


class LoweredTrainStep:
    """A lowered :class:`TrainStep`; attribute access reaches ``jax.stages.Lowered``."""

    def __init__(self, step: TrainStep, lowered: jax.stages.Lowered):
        self._step = step
        self._lowered = lowered

    def compile(self) -> CompiledTrainStep:
        return CompiledTrainStep(self._step, self._lowered.compile())

    def __getattr__(self, name: str):
        return getattr(self._lowered, name)


class CompiledTrainStep:
    """A compiled :class:`TrainStep`, called as ``step(train_state, batch)``."""

    def __init__(self, step: TrainStep, compiled: jax.stages.Compiled):
        self._step = step
        self._compiled = compiled

    def __call__(self, ts: TrainState, batch) -> tuple[TrainState, dict]:
        args = self._step._args(ts, batch)
        leaves, out = self._compiled(*args)
        key = args[2] if len(args) == 4 else ts.key
        return stepped_state(_host_step(ts.step) + 1, key, self._step._treedef, leaves), out

    def __getattr__(self, name: str):
        return getattr(self._compiled, name)


def _host_step(step) -> np.int32:
    """The step counter as a host integer (a device scalar is fetched once)."""
    return step if type(step) is np.int32 else np.int32(step)


_DOES_NOT_FIT = "train step: the train state does not fit the one this step was compiled for"
