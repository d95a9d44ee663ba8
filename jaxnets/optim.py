"""Optimizer helpers optax lacks: masks and freezing by parameter path, named recipes,
schedules by name, and reading the current learning rate from an optimizer state.

Parameter paths are the ``/``-joined dict keys (``hidden_0/dense/kernel``); patterns
are shell-style globs matched against them (``*/bias``, ``backbone/*``).

Example:
    >>> import jax.numpy as jnp
    >>> params = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2)}}
    >>> decay_mask(params)
    {'dense': {'bias': False, 'kernel': True}}
    >>> path_mask(params, ["dense/b*"])
    {'dense': {'bias': True, 'kernel': False}}
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from jaxnets.core import path_str

#: Leaf names that weight decay applies to by default: weights, not biases, norm scales
#: or offsets (the AdamW / BERT / ResNet recipes).
DECAYED_LEAVES = ("kernel", "embedding", "weight", "depthwise_kernel", "pointwise_kernel")

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear", "exponential", "step")


def _paths(params: Any) -> Any:
    return jax.tree_util.tree_map_with_path(lambda path, _: path_str(path), params)


def path_mask(params: Any, patterns: Sequence[str]) -> Any:
    """A pytree of bools like ``params``: True where the leaf's path matches a pattern.

    Args:
      params: the parameter tree.
      patterns: shell-style globs matched case-sensitively against the leaf paths
        (a single string counts as one pattern).

    Returns:
      A tree of the structure of ``params`` with a bool per leaf.
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    return jax.tree.map(
        lambda p: any(fnmatch.fnmatchcase(p, pat) for pat in patterns), _paths(params)
    )


def decay_mask(params: Any, exclude: Sequence[str] = ()) -> Any:
    """True for weight matrices and kernels (leaf names in :data:`DECAYED_LEAVES`),
    False for biases and normalisation scales/offsets and for paths matching ``exclude``.
    Pass it as ``mask=`` to ``optax.adamw`` or ``optax.add_decayed_weights``.

    Args:
      params: the parameter tree.
      exclude: globs of paths never decayed (see :func:`path_mask`).

    Returns:
      A tree of the structure of ``params`` with a bool per leaf.
    """
    excluded = path_mask(params, exclude)
    return jax.tree.map(
        lambda p, ex: p.rsplit("/", 1)[-1] in DECAYED_LEAVES and not ex, _paths(params), excluded
    )


def freeze(
    optimizer: optax.GradientTransformation, patterns: Sequence[str]
) -> optax.GradientTransformation:
    """``optimizer`` for every parameter except those whose path matches ``patterns``,
    which get zero updates (and keep no optimizer state).

    Args:
      optimizer: the optimizer for the trained parameters.
      patterns: globs of the paths to freeze (see :func:`path_mask`).

    Returns:
      The combined transformation (``optax.multi_transform``).

    Example:
        >>> import jax.numpy as jnp, optax
        >>> params = {"body": {"kernel": jnp.ones(2)}, "head": {"kernel": jnp.ones(2)}}
        >>> opt = freeze(optax.sgd(1.0), ["body/*"])
        >>> updates, _ = opt.update(params, opt.init(params), params)
        >>> updates["body"]["kernel"].tolist(), updates["head"]["kernel"].tolist()
        ([0.0, 0.0], [-1.0, -1.0])
    """

    def labels(params):
        return jax.tree.map(lambda f: "frozen" if f else "train", path_mask(params, patterns))

    return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)


def schedule(
    kind: str,
    learning_rate: float,
    total_steps: int,
    *,
    warmup_steps: int = 0,
    decay_rate: float = 0.1,
    boundaries: Sequence[float] = (0.5, 0.75),
) -> optax.Schedule:
    """A learning-rate schedule by name (see :data:`SCHEDULES`).

    ``cosine`` decays to 0 over ``total_steps``; ``warmup_cosine`` first rises linearly
    for ``warmup_steps``; ``linear`` decays linearly to 0; ``exponential`` multiplies by
    ``decay_rate`` over the run; ``step`` multiplies by ``decay_rate`` at each fraction of
    the run in ``boundaries``.

    Args:
      kind: one of :data:`SCHEDULES`.
      learning_rate: the peak (initial) learning rate.
      total_steps: the length of the run in steps (values below 1 count as 1).
      warmup_steps: the steps of linear warm-up from 0 (``warmup_cosine`` only).
      decay_rate: the factor of ``exponential`` over the run, and of ``step`` per boundary.
      boundaries: fractions of the run at which ``step`` multiplies by ``decay_rate``.

    Returns:
      The schedule, a function of the step count.

    Raises:
      ValueError: for an unknown ``kind``.

    Example:
        >>> s = schedule("cosine", 0.1, 100)
        >>> round(float(s(0)), 6), round(float(s(50)), 6), float(s(100))
        (0.1, 0.05, 0.0)
    """
    total = max(1, int(total_steps))
    if kind == "constant":
        return optax.constant_schedule(learning_rate)
    if kind == "cosine":
        return optax.cosine_decay_schedule(learning_rate, total)
    if kind == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, learning_rate, max(1, warmup_steps), max(total, warmup_steps + 1)
        )
    if kind == "linear":
        return optax.linear_schedule(learning_rate, 0.0, total)
    if kind == "exponential":
        return optax.exponential_decay(learning_rate, total, decay_rate)
    if kind == "step":
        marks = {int(b * total): decay_rate for b in boundaries}
        return optax.piecewise_constant_schedule(learning_rate, marks)
    raise ValueError(f"unknown schedule {kind!r}; expected one of {list(SCHEDULES)}")


def make_optimizer(
    name: str,
    learning_rate: float | optax.Schedule,
    *,
    weight_decay: float = 0.0,
    decay_exclude: Sequence[str] = (),
    momentum: float = 0.9,
    freeze_patterns: Sequence[str] = (),
    clip_norm: float | None = None,
    accumulate_steps: int = 1,
) -> optax.GradientTransformation:
    """A named optimizer (see :data:`OPTIMIZERS`) with its learning rate injected into
    its state (so :func:`learning_rate` can read it), decoupled weight decay masked by
    :func:`decay_mask`, then optional freezing, clipping and accumulation
    (:func:`wrap`).

    ``sgd``/``momentum``/``nesterov``/``adam``/``rmsprop`` add ``weight_decay * w`` to
    the gradient (L2); ``adamw`` decays decoupled from the adaptive scaling.

    Args:
      name: one of :data:`OPTIMIZERS`.
      learning_rate: a constant or a schedule (e.g. from :func:`schedule`).
      weight_decay: the decay coefficient (0: none).
      decay_exclude: globs of paths never decayed (see :func:`decay_mask`).
      momentum: the momentum of ``momentum`` and ``nesterov`` (ignored by the others).
      freeze_patterns: globs of paths that get no updates (see :func:`freeze`).
      clip_norm: the global gradient norm to clip to (None: no clipping).
      accumulate_steps: micro-batches averaged per update (1: none).

    Returns:
      The optimizer.

    Raises:
      ValueError: for an unknown ``name`` or bad ``clip_norm``/``accumulate_steps``.

    Example:
        >>> import jax.numpy as jnp
        >>> opt = make_optimizer("adamw", schedule("cosine", 1e-3, 100), weight_decay=1e-4)
        >>> state = opt.init({"kernel": jnp.ones(3)})
        >>> round(float(learning_rate(state)), 6)
        0.001
    """
    mask = (lambda p: decay_mask(p, decay_exclude)) if weight_decay else None
    if name == "adamw":
        base = optax.inject_hyperparams(optax.adamw, static_args=("mask",))(
            learning_rate=learning_rate, weight_decay=weight_decay, mask=mask
        )
    else:
        factories: dict[str, Callable[..., optax.GradientTransformation]] = {
            "sgd": optax.sgd,
            "momentum": lambda learning_rate: optax.sgd(learning_rate, momentum=momentum),
            "nesterov": lambda learning_rate: optax.sgd(
                learning_rate, momentum=momentum, nesterov=True
            ),
            "adam": optax.adam,
            "rmsprop": optax.rmsprop,
        }
        if name not in factories:
            raise ValueError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")
        base = optax.inject_hyperparams(factories[name])(learning_rate=learning_rate)
        if weight_decay:
            base = optax.chain(optax.add_decayed_weights(weight_decay, mask), base)
    if freeze_patterns:
        base = freeze(base, freeze_patterns)
    return wrap(base, clip_norm=clip_norm, accumulate_steps=accumulate_steps)


def wrap(
    optimizer: optax.GradientTransformation,
    *,
    clip_norm: float | None = None,
    accumulate_steps: int = 1,
) -> optax.GradientTransformation:
    """Clip gradients to global norm ``clip_norm`` (``optax.clip_by_global_norm``) and
    accumulate ``accumulate_steps`` micro-batches per update (``optax.MultiSteps``, which
    averages them: the update equals one on a batch ``accumulate_steps`` times larger).

    Args:
      optimizer: the optimizer to wrap.
      clip_norm: the global norm to clip gradients to, > 0 (None: no clipping).
      accumulate_steps: micro-batches per update, >= 1 (1: no accumulation).

    Returns:
      ``optimizer`` itself when neither applies, else the wrapped transformation.

    Raises:
      ValueError: when ``clip_norm <= 0`` or ``accumulate_steps < 1``.
    """
    if accumulate_steps < 1:
        raise ValueError(f"accumulate_steps must be >= 1, got {accumulate_steps}")
    if clip_norm is not None:
        if clip_norm <= 0:
            raise ValueError(f"clip_norm must be > 0, got {clip_norm}")
        optimizer = optax.chain(optax.clip_by_global_norm(clip_norm), optimizer)
    if accumulate_steps > 1:
        optimizer = optax.MultiSteps(optimizer, every_k_schedule=accumulate_steps)
        optimizer = optimizer.gradient_transformation()
    return optimizer


def _find_hyperparams(tree: Any) -> dict | None:
    if hasattr(tree, "hyperparams") and isinstance(tree.hyperparams, dict):
        return tree.hyperparams
    children = tree.values() if isinstance(tree, dict) else tree
    if isinstance(children, (tuple, list)) or isinstance(tree, dict):
        for child in children:
            found = _find_hyperparams(child)
            if found is not None:
                return found
    return None


def learning_rate(opt_state: Any) -> jax.Array | None:
    """The current learning rate stored in an optimizer state by
    ``optax.inject_hyperparams`` (searched through chains, masks and MultiSteps).

    Args:
      opt_state: the optimizer state.

    Returns:
      The learning rate (a scalar array) of the first injected hyperparameters found, or
      None when the optimizer does not record one.
    """
    hyperparams = _find_hyperparams(opt_state)
    if hyperparams is None or "learning_rate" not in hyperparams:
        return None
    return hyperparams["learning_rate"]
