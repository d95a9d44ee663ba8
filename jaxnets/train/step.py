"""The jit-compiled train step: objectives, optax updates, placement on one device or a mesh."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.extend.core import Var

from jaxnets import cpu, distributed
from jaxnets.core import Layer, check_tree_matches
from jaxnets.train.objective import (
    MetricFn,
    Objective,
    Update,
    check_output,
    make_updates,
    part_key,
)
from jaxnets.train.precision import Policy
from jaxnets.train.precision import policy as get_policy
from jaxnets.train.state import TrainState, stepped_state

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
        compiler_options: XLA options; None lets :func:`jaxnets.cpu.options_for` choose
            from the objectives' own operations, ``{}`` keeps XLA's defaults. Honoured
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
    mixed = get_policy(precision)
    updates = make_updates(model, loss, optimizer, metrics=metrics, precision=mixed)
    placement = None if mesh is None else distributed.as_plan(mesh)
    return TrainStep(
        updates,
        loss_scale=mixed.loss_scale,
        donate=donate,
        compiler_options=compiler_options,
        placement=placement,
    )


def _trainable(update: Update, params: Any, where: str) -> Any:
    if update.part is None:
        return params
    if not isinstance(params, Mapping) or update.part not in params:
        have = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(
            f"{where}: the objective {update.name!r} trains part {update.part!r}, but the "
            f"train state's params have {have}; make the state with "
            f"create_train_state({{{update.part!r}: model, ...}}, ...)"
        )
    return params[update.part]


def _with_part(tree: Any, part: str | None, value: Any) -> Any:
    return value if part is None else {**tree, part: value}


def _identity(tree: Any) -> Any:
    return tree


def _apply_update(
    update: Update,
    params,
    state,
    opt_state,
    batch,
    key,
    loss_scale: float,
    gather: Callable = _identity,
    scatter: Callable = _identity,
):
    """One update: gradients of the objective with respect to its part, the optimizer's
    step on them; returns the new arrays, the loss and the objective's metrics.

    ``gather`` gives the params the objective computes with (whole on every device,
    for a fully sharded plan) and ``scatter`` puts the gradients back where the params
    live, so the optimizer works on each device's shard."""
    part = update.part
    computed = gather(params)

    def objective(trainable):
        out = update.objective(
            _with_part(computed, part, trainable), state, batch, key=key, train=True
        )
        loss, new_state, metrics = check_output(update.name, out, state)
        return loss * loss_scale, (loss, new_state, metrics)

    trainable = _trainable(update, params, "train step")
    opt_part = opt_state if part is None else opt_state[part]
    (_, (loss, new_state, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(
        _trainable(update, computed, "train step")
    )
    grads = scatter(grads)
    if loss_scale != 1.0:
        grads = jax.tree.map(lambda g: g / loss_scale, grads)
    changes, new_opt = update.optimizer.update(grads, opt_part, trainable)
    new_trainable = optax.apply_updates(trainable, changes)
    if loss_scale != 1.0:  # skip an update whose scaled gradients overflowed
        finite = jnp.all(jnp.stack([jnp.isfinite(g).all() for g in jax.tree.leaves(grads)]))
        new_trainable, new_opt = jax.tree.map(
            lambda new, old: jnp.where(finite, new, old),
            (new_trainable, new_opt),
            (trainable, opt_part),
        )
    return (
        _with_part(params, part, new_trainable),
        new_state,
        _with_part(opt_state, part, new_opt),
        loss,
        metrics,
    )


def _merge_metrics(out: dict, update: Update, loss, metrics: dict, single: bool) -> None:
    if single:
        out["loss"] = loss
        out.update((k, v) for k, v in metrics.items() if k != "loss")
        return
    for name, value in {f"{update.part}_loss": loss, **metrics}.items():
        if name in out:
            raise ValueError(
                f"train step: the objective {update.name!r} returns the metric {name!r}, "
                f"which an earlier part's objective (or the step's own 'loss') already "
                f"has; give the parts' metrics distinct names"
            )
        out[name] = value
    out["loss"] = out["loss"] + loss


def step_function(
    updates: Sequence[Update],
    loss_scale: float = 1.0,
    placement: distributed.DataParallel | None = None,
) -> Callable:
    """``train_step(params, state, opt_state, batch, base_key, step) -> (params, state,
    opt_state, metrics)``: the updates in order, un-jitted (``base_key`` may be None).

    With a fully sharded ``placement`` each update computes with whole params (one
    all-gather of each, as fully sharded data parallelism does) and reduce-scatters its
    gradients, so that the sharding of the stored params never reaches inside the model
    (where a loop would reshard a weight at every iteration)."""
    single = len(updates) == 1 and updates[0].part is None
    gather = scatter = _identity
    if placement is not None and placement.fully_sharded:
        plan = placement

        def gather(tree):
            return jax.lax.with_sharding_constraint(tree, plan.replicated())

        def scatter(tree):
            return jax.tree.map(
                lambda g: jax.lax.with_sharding_constraint(g, plan.sharding_for(g.shape)), tree
            )

    def train_step(params, state, opt_state, batch, base_key, step):
        key = None if base_key is None else jax.random.fold_in(base_key, step)
        out: dict = {} if single else {"loss": jnp.zeros((), jnp.float32)}
        for update in updates:
            params, state, opt_state, loss, metrics = _apply_update(
                update,
                params,
                state,
                opt_state,
                batch,
                part_key(key, update.part),
                loss_scale,
                gather,
                scatter,
            )
            _merge_metrics(out, update, loss, metrics, single)
        return params, state, opt_state, out

    return train_step


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
        self._jitted: Any = None  # the jax.jit object, made at the first call
        self._treedef: Any = None  # of (params, state, opt_state), fixed at the first call
        self._specs: dict = {}  # their shapes and dtypes at the first call, for messages
        self._shardings: list | None = None  # of the flat arrays, with a placement

    def __call__(self, ts: TrainState, batch) -> tuple[TrainState, dict]:
        # Written for a dispatch-bound step: every 0.1 us shows in a tiny model's step.
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
        """From one trace of the objectives (not of the optimizers, so that RMSprop's
        ``rsqrt`` does not count as normalisation): whether they use the key, and the
        XLA options."""
        jaxpr = _trace_objectives(self.updates, ts.params, ts.state, batch)
        uses_key = _key_reaches_outputs(jaxpr)
        options = self._options
        if options is None:
            options = cpu.options_for(cpu.jaxpr_primitives(jaxpr))
        update = self._update
        specs = _named(_abstract(tree))

        def train_step(leaves, batch, key=None, step=None):
            if not all(isinstance(leaf, jax.Array) for leaf in leaves):  # at trace time
                raise _mismatch(specs, treedef.unflatten(leaves), _DOES_NOT_FIT)
            *carry, out = update(*treedef.unflatten(leaves), batch, key, step)
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


def _named(tree) -> dict:
    """``(params, state, opt_state)`` as a dict, so that messages name ``params/...``."""
    return dict(zip(("params", "state", "opt_state"), tree, strict=True))


def _mismatch(specs: dict, tree, what: str) -> ValueError:
    """The error for a ``(params, state, opt_state)`` that does not have the structure of
    ``specs``: the first missing or unexpected entry, as checkpoints and ``apply`` name
    them (:func:`jaxnets.core.check_tree_matches`)."""
    try:
        check_tree_matches(specs, _named(tree), what)
    except ValueError as error:
        return error
    return ValueError(
        f"{what}: expected the structure {jax.tree.structure(specs)}, "
        f"got {jax.tree.structure(_named(tree))}"
    )


def model_uses_key(model: Layer, params, state, inputs) -> bool:
    """Whether the model's training-mode output depends on its PRNG key.

    Traces ``apply`` once on abstract values and follows the key through the graph.
    """

    def objective(params, state, batch, *, key, train):
        y, new_state = model.apply(params, state, batch, key=key, train=train)
        return jnp.zeros(()), (new_state, {"y": jnp.sum(y)})

    update = Update(objective, optax.identity())
    return _key_reaches_outputs(_trace_objectives([update], params, state, inputs))


def _trace_objectives(updates: Sequence[Update], params, state, batch):
    """The jaxpr of the objectives in training mode, run in order on abstract values
    (without derivatives); its first input is the key's data."""
    key_data = jax.random.key_data(jax.random.key(0))

    def run(key_data, params, state, batch):
        key = jax.random.wrap_key_data(key_data)
        outs = []
        for update in updates:
            _trainable(update, params, "train step")
            out = update.objective(params, state, batch, key=part_key(key, update.part), train=True)
            loss, state, metrics = check_output(update.name, out, state)
            outs.append((loss, state, metrics))
        return outs

    return jax.make_jaxpr(run)(key_data, *_abstract((params, state, batch))).jaxpr


def _abstract(tree):
    """The shapes and dtypes of ``tree``'s arrays, as ``jax.ShapeDtypeStruct`` leaves."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)


def _key_reaches_outputs(jaxpr) -> bool:
    tainted = {jaxpr.invars[0]}
    for eqn in jaxpr.eqns:
        if any(isinstance(v, Var) and v in tainted for v in eqn.invars):
            tainted.update(eqn.outvars)
    return any(isinstance(v, Var) and v in tainted for v in jaxpr.outvars)
