"""The mathematics of one train step: each update's gradients and optimizer step, in order.

:func:`step_function` is the un-jitted step that :class:`jaxnets.train.step.TrainStep`
compiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxnets import distributed
from jaxnets.train.objective import Update, check_output, part_key


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
    (where a loop would reshard a weight at every iteration).

    Args:
      updates: the updates (objective, part, optimizer), applied in this order.
      loss_scale: the factor each loss is multiplied by before differentiation.
      placement: the mesh plan of the step, or None for one device.

    Returns:
      The un-jitted step function.
    """
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
