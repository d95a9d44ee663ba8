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
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import optax

from jaxnets.core import path_str
from jaxnets.core.arguments import choice, count, number

#: Leaf names that weight decay applies to by default: weights, not biases, norm scales
#: or offsets (the AdamW / BERT / ResNet recipes).
DECAYED_LEAVES = ("kernel", "embedding", "weight", "depthwise_kernel", "pointwise_kernel")

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear", "exponential", "step")


def _patterns(where: str, what: str, patterns: Any) -> list[str]:
    """Globs as a list: one string, or an iterable of strings."""
    if isinstance(patterns, str):
        return [patterns]
    if isinstance(patterns, Iterable) and not isinstance(patterns, (bytes, dict)):
        patterns = list(patterns)
        bad = [p for p in patterns if not isinstance(p, str)]
        if not bad:
            return patterns
        shown = f"{bad[0]!r} (a {type(bad[0]).__name__})"
    else:
        shown = f"{patterns!r} (a {type(patterns).__name__})"
    raise TypeError(
        f"{where}: {what} must be a glob string or a list of them (e.g. ['*/bias']), got {shown}"
    )


def _check_optimizer(where: str, optimizer: Any) -> None:
    """Raise a TypeError unless ``optimizer`` is an optax GradientTransformation."""
    if isinstance(optimizer, optax.GradientTransformation) or (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        return
    hint = (
        " (make one with make_optimizer(name, learning_rate))" if isinstance(optimizer, str) else ""
    )
    raise TypeError(
        f"{where}: optimizer must be an optax GradientTransformation such as "
        f"optax.adam(1e-3), got {optimizer!r:.60} (a {type(optimizer).__name__}){hint}"
    )


def _check_learning_rate(where: str, learning_rate: Any, *, schedules: bool = True) -> Any:
    """A positive, finite learning rate (training with a negative one goes uphill) as a
    Python float, or a schedule (a function of the step) where ``schedules``."""
    if schedules and callable(learning_rate):
        return learning_rate
    if getattr(learning_rate, "shape", None) == () and hasattr(learning_rate, "dtype"):
        learning_rate = learning_rate.item()  # a 0-d NumPy or JAX array
    if schedules and not isinstance(learning_rate, numbers.Real):
        raise TypeError(
            f"{where}: learning_rate must be a finite number > 0 or a schedule (a function of "
            f"the step), got {learning_rate!r:.60} (a {type(learning_rate).__name__})"
        )
    return number(where, "learning_rate", learning_rate, low=0.0, low_open=True)


def _wrap_options(where: str, clip_norm: Any, accumulate_steps: Any) -> None:
    if clip_norm is not None:
        number(where, "clip_norm", clip_norm, low=0.0, low_open=True)
    count(where, "accumulate_steps", accumulate_steps)


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
    patterns = _patterns("path_mask", "patterns", patterns)
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
    excluded = path_mask(params, _patterns("decay_mask", "exclude", exclude))
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

    _check_optimizer("freeze", optimizer)
    patterns = _patterns("freeze", "patterns", patterns)

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
      learning_rate: the peak (initial) learning rate, a finite number > 0.
      total_steps: the length of the run in steps, an int >= 0 (0 counts as 1).
      warmup_steps: the steps of linear warm-up from 0 (``warmup_cosine`` only), >= 0.
      decay_rate: the factor of ``exponential`` over the run, and of ``step`` per boundary,
        a finite number > 0.
      boundaries: fractions of the run, each in (0, 1), at which ``step`` multiplies by
        ``decay_rate``. Each must fall on a step of its own: two fractions that land on
        the same step (``int(b * total_steps)``) would silently count as one decay instead
        of two, so they are refused.

    Returns:
      The schedule, a function of the step count.

    Raises:
      ValueError: for an unknown ``kind``, a value out of range, or boundaries that fall
        on the same step.
      TypeError: for an argument of the wrong type.

    Example:
        >>> s = schedule("cosine", 0.1, 100)
        >>> round(float(s(0)), 6), round(float(s(50)), 6), float(s(100))
        (0.1, 0.05, 0.0)
    """
    where = "schedule"
    choice(where, "kind", kind, SCHEDULES)
    learning_rate = _check_learning_rate(where, learning_rate, schedules=False)
    total = max(1, count(where, "total_steps", total_steps, minimum=0))
    warmup_steps = count(where, "warmup_steps", warmup_steps, minimum=0)
    decay_rate = number(where, "decay_rate", decay_rate, low=0.0, low_open=True)
    marks = _step_marks(boundaries, total, decay_rate) if kind == "step" else {}
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
    return optax.piecewise_constant_schedule(learning_rate, marks)


def _step_marks(boundaries: Any, total: int, decay_rate: float) -> dict[int, float]:
    """The steps of a ``step`` schedule's boundaries; refuses two on one step."""
    where = "schedule"
    if isinstance(boundaries, (str, numbers.Number)) or not isinstance(boundaries, Iterable):
        raise TypeError(
            f"{where}: boundaries must be a tuple of fractions of the run in (0, 1), got "
            f"{boundaries!r}"
        )
    marks: dict[int, float] = {}
    fractions: dict[int, float] = {}
    for b in boundaries:
        b = number(
            where, "every entry of boundaries", b, low=0.0, high=1.0, low_open=True, high_open=True
        )
        step = int(b * total)
        if step in fractions:
            raise ValueError(
                f"{where}: boundaries {fractions[step]:g} and {b:g} both fall on step {step} "
                f"of total_steps={total}: they would merge into one decay; give each boundary "
                f"a step of its own (fewer boundaries or more steps)"
            )
        fractions[step] = b
        marks[step] = decay_rate
    return marks


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
      ValueError: for an unknown ``name``, a learning rate that is not > 0 (training with
        a negative one goes uphill) or another value out of range.
      TypeError: for an argument of the wrong type (an optimizer factory for ``name``).

    Example:
        >>> import jax.numpy as jnp
        >>> opt = make_optimizer("adamw", schedule("cosine", 1e-3, 100), weight_decay=1e-4)
        >>> state = opt.init({"kernel": jnp.ones(3)})
        >>> round(float(learning_rate(state)), 6)
        0.001
    """
    where = "make_optimizer"
    choice(where, "name", name, OPTIMIZERS)
    learning_rate = _check_learning_rate(where, learning_rate)
    weight_decay = number(where, "weight_decay", weight_decay, low=0.0)
    decay_exclude = _patterns(where, "decay_exclude", decay_exclude)
    momentum = number(where, "momentum", momentum, low=0.0, high=1.0)
    freeze_patterns = _patterns(where, "freeze_patterns", freeze_patterns)
    _wrap_options(where, clip_norm, accumulate_steps)
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
      TypeError: when ``optimizer`` is not a GradientTransformation (a name, a factory).
    """
    _check_optimizer("wrap", optimizer)
    _wrap_options("wrap", clip_norm, accumulate_steps)
    if clip_norm is not None:
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
