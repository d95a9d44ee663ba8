"""Jit-compiled train and eval steps built from a model, a loss and an optax optimizer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.extend.core import Var

from jaxnets import cpu, distributed, losses
from jaxnets.core import Layer, check_tree_matches
from jaxnets.train.precision import Policy
from jaxnets.train.precision import policy as get_policy
from jaxnets.train.state import TrainState, stepped_state

MetricFn = Callable[[jax.Array, jax.Array], jax.Array]

_CLASSIFICATION_LOSSES = {
    losses.softmax_cross_entropy,
    losses.sigmoid_binary_cross_entropy,
    losses.hinge,
}


def default_metrics(loss_fn: Callable) -> dict[str, MetricFn]:
    """Accuracy for classification losses, nothing more otherwise."""
    return {"accuracy": losses.correct} if loss_fn in _CLASSIFICATION_LOSSES else {}


def make_train_step(
    model: Layer,
    loss: str | Callable,
    optimizer: optax.GradientTransformation,
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    donate: bool = True,
    precision: str | Policy | None = None,
    mesh: distributed.MeshLike | None = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> Callable[[TrainState, tuple], tuple[TrainState, dict]]:
    """A compiled ``step(train_state, (inputs, labels)) -> (train_state, metrics)``.

    The loss is averaged over the batch and differentiated with ``jax.grad``; the
    optimizer's update is applied; BatchNorm-like state is carried. Metrics are
    per-example functions, averaged. The input train state is donated (its buffers are
    reused), so keep only the returned one. ``precision`` (a name or a
    :class:`~jaxnets.train.precision.Policy`) casts the inputs to a compute dtype and
    scales the loss where needed; parameters stay float32. With ``mesh`` (from
    :func:`jaxnets.distributed.make_mesh`, or a :func:`~jaxnets.distributed.fully_sharded`
    plan) the batch is split over the devices and the state replicated (or sharded) on
    them; the numbers are those of one device with the whole batch. ``compiler_options``
    are XLA options for the compiled step; None lets :func:`jaxnets.cpu.compiler_options`
    choose (on the CPU: convolutions on XLA's multi-threaded implementation), ``{}`` keeps
    XLA's defaults.

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
    loss_fn = losses.get(loss)
    metric_fns = dict(default_metrics(loss_fn) if metrics is None else metrics)
    mixed = get_policy(precision)

    def train_step(params, state, opt_state, batch, base_key, step):
        """One optimisation step on the arrays that change; ``base_key`` may be None."""
        key = None if base_key is None else jax.random.fold_in(base_key, step)
        inputs, labels = batch
        inputs = mixed.cast_inputs(inputs)

        def objective(params):
            outputs, new_state = model.apply(params, state, inputs, key=key, train=True)
            value = jnp.mean(loss_fn(outputs, labels))
            return value * mixed.loss_scale, (value, outputs, new_state)

        (_, (value, outputs, new_state)), grads = jax.value_and_grad(objective, has_aux=True)(
            params
        )
        if mixed.loss_scale != 1.0:
            grads = jax.tree.map(lambda g: g / mixed.loss_scale, grads)
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if mixed.loss_scale != 1.0:  # skip an update whose scaled gradients overflowed
            finite = jnp.all(jnp.stack([jnp.isfinite(g).all() for g in jax.tree.leaves(grads)]))
            new_params, new_opt_state = jax.tree.map(
                lambda new, old: jnp.where(finite, new, old),
                (new_params, new_opt_state),
                (params, opt_state),
            )
        out = {"loss": value}
        for name, fn in metric_fns.items():
            out[name] = jnp.mean(fn(outputs, labels))
        return new_params, new_state, new_opt_state, out

    if mesh is not None:

        def step(ts: TrainState, batch):
            params, state, opt_state, out = train_step(
                ts.params, ts.state, ts.opt_state, batch, ts.key, ts.step
            )
            return TrainState(ts.step + 1, params, state, opt_state, ts.key), out

        return distributed.jit_train_step(step, mesh, donate=donate)
    return TrainStep(model, train_step, donate=donate, compiler_options=compiler_options)


class TrainStep:
    """The jitted train step without a mesh: ``step(train_state, batch)``.

    Only the arrays that change (params, state and optimizer state, as one flat list) and
    the batch cross the jit boundary; the step counter stays a host integer, and the key
    (with the step) is passed only when the model uses randomness (found once, from the
    traced graph). The returned :class:`TrainState` keeps that flat list, so the next
    step takes it as it is and nested dicts are built only when read. Each argument and
    each dict taken apart or built costs microseconds of dispatch, which a small model's
    step notices (``benchmarks/RESULTS.md``). ``lower`` and ``_cache_size`` reach the
    jitted core.
    """

    def __init__(
        self,
        model: Layer,
        update: Callable,
        *,
        donate: bool,
        compiler_options: Mapping[str, Any] | None = None,
    ):
        self._model = model
        self._update = update
        self._donate_argnums = (0,) if donate else ()
        self._options = compiler_options
        self._jitted: Any = None  # the jax.jit object, made at the first call
        self._treedef: Any = None  # of (params, state, opt_state), fixed at the first call
        self._specs: dict = {}  # their shapes and dtypes at the first call, for messages
        self._uses_key: bool | None = None  # found at the first call

    def __call__(self, ts: TrainState, batch) -> tuple[TrainState, dict]:
        # Written for a dispatch-bound step: every 0.1 us shows in a tiny model's step.
        try:
            fresh = ts._tree is None and ts._treedef is self._treedef
        except AttributeError:  # not a TrainState: _flat_arrays names it
            fresh = False
        leaves = ts._leaves if fresh else self._flat_arrays(ts, batch)
        step = _host_step(ts.step)
        if self._uses_key:
            leaves, out = self._jitted(leaves, batch, ts.key, step)
        else:
            leaves, out = self._jitted(leaves, batch)
        return stepped_state(step + 1, ts.key, self._treedef, leaves), out

    def _args(self, ts: TrainState, batch) -> tuple:
        leaves = self._flat_arrays(ts, batch)
        return (leaves, batch, ts.key, _host_step(ts.step)) if self._uses_key else (leaves, batch)

    def _flat_arrays(self, ts: TrainState, batch) -> list:
        """``(params, state, opt_state)`` of ``ts`` as the compiled step's flat list."""
        if not isinstance(ts, TrainState):
            raise TypeError(
                f"train step: expected a jaxnets TrainState (from create_train_state), "
                f"got {type(ts).__name__}"
            )
        tree = ts._arrays()
        if self._jitted is not None:
            try:
                return self._treedef.flatten_up_to(tree)
            except (ValueError, TypeError):
                raise _mismatch(self._specs, tree, _DOES_NOT_FIT) from None
        leaves, treedef = jax.tree.flatten(tree)
        self._setup(ts, batch, tree, treedef)
        return leaves

    def _setup(self, ts: TrainState, batch, tree: tuple, treedef) -> None:
        """From one trace of the model: whether it uses its key, and the XLA options (found
        from the model's own operations, so that an optimizer's ``rsqrt`` does not count
        as normalisation)."""
        jaxpr = _trace_model(self._model, ts.params, ts.state, batch[0])
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

        self._jitted = jax.jit(
            train_step,
            compiler_options=dict(options) or None,
            donate_argnums=self._donate_argnums,
        )
        self._treedef, self._specs, self._uses_key = treedef, specs, uses_key

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
        leaves, out = self._compiled(*self._step._args(ts, batch))
        return stepped_state(_host_step(ts.step) + 1, ts.key, self._step._treedef, leaves), out

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
    return _key_reaches_outputs(_trace_model(model, params, state, inputs))


def _trace_model(model: Layer, params, state, inputs):
    """The jaxpr of ``model.apply`` in training mode on abstract values; its first input is
    the key's data."""
    key_data = jax.random.key_data(jax.random.key(0))

    def run(key_data, params, state, inputs):
        key = jax.random.wrap_key_data(key_data)
        return model.apply(params, state, inputs, key=key, train=True)

    return jax.make_jaxpr(run)(key_data, *_abstract((params, state, inputs))).jaxpr


def _abstract(tree):
    """The shapes and dtypes of ``tree``'s arrays, as ``jax.ShapeDtypeStruct`` leaves."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)


def _key_reaches_outputs(jaxpr) -> bool:
    tainted = {jaxpr.invars[0]}
    for eqn in jaxpr.eqns:
        if any(isinstance(v, Var) and v in tainted for v in eqn.invars):
            tainted.update(eqn.outvars)
    return any(isinstance(v, Var) and v in tainted for v in jaxpr.outvars)


def make_eval_step(
    model: Layer,
    loss: str | Callable,
    *,
    metrics: Mapping[str, MetricFn] | None = None,
    precision: str | Policy | None = None,
    mesh: distributed.MeshLike | None = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> Callable[[TrainState, tuple], dict]:
    """A jitted ``eval_step(train_state, (inputs, labels, mask)) -> sums``.

    Returns masked sums ``{"loss": ..., <metric>: ..., "count": ...}`` in inference
    mode, so padded examples count zero times and real ones exactly once. With ``mesh``
    the batch is split over the devices (padded with mask 0 to a multiple of them).
    ``compiler_options`` as in :func:`make_train_step`.
    """
    loss_fn = losses.get(loss)
    metric_fns = dict(default_metrics(loss_fn) if metrics is None else metrics)
    mixed = get_policy(precision)

    def eval_step(ts: TrainState, batch):
        inputs, labels, mask = batch
        inputs = mixed.cast_inputs(inputs)
        outputs, _ = model.apply(ts.params, ts.state, inputs, key=None, train=False)
        sums = {"loss": jnp.sum(loss_fn(outputs, labels) * mask)}
        for name, fn in metric_fns.items():
            sums[name] = jnp.sum(fn(outputs, labels) * mask)
        sums["count"] = jnp.sum(mask)
        return sums

    if mesh is not None:
        return distributed.jit_eval_step(eval_step, mesh)
    return cpu.TunedJit(eval_step, compiler_options)


def make_predict(
    model: Layer,
    *,
    precision: str | Policy | None = None,
    compiler_options: Mapping[str, Any] | None = None,
) -> Callable:
    """A jitted ``predict(params, state, inputs) -> outputs`` in inference mode
    (``compiler_options`` as in :func:`make_train_step`)."""
    mixed = get_policy(precision)

    def predict(params, state, inputs):
        return model.apply(params, state, mixed.cast_inputs(inputs), key=None, train=False)[0]

    return cpu.TunedJit(predict, compiler_options)
