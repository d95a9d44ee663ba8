"""Where an op runs and which transformations apply to it, read from its arguments.

Under ``jax.grad``, ``jax.jvp`` or ``jax.vmap`` a function's arguments are tracers of those
transformations; under ``jax.jit`` (or inside a loop or ``jax.checkpoint``) they are
staging tracers, and a transformation applied later to the staged program cannot be seen.
Concrete arrays carry their devices; staged ones do not, so their platform is the one a
jaxnets step set with :func:`on_platform`, else that of JAX's default device (where
``jax.jit`` runs uncommitted inputs).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
from jax.interpreters import partial_eval as pe

from jaxnets._impl.registry import TRANSFORMS

_PLATFORM: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "jaxnets_platform", default=None
)


class Transforms(NamedTuple):
    """The transformations seen on an op's arguments.

    Attributes:
      needs: what an implementation must support here (every transformation when
        ``known`` is False: something may still be applied to the staged program).
      known: whether the arguments show what applies (eager values, or derivative
        tracers).
    """

    needs: frozenset[str]
    known: bool


def _levels(x: Any) -> tuple[list[str], Any]:
    """The transformations wrapping ``x`` (outermost first) and the value beneath them."""
    kinds: list[str] = []
    while isinstance(x, jax.core.Tracer):
        name = type(x).__name__
        if name == "LinearizeTracer":
            # jax.vjp and jax.grad linearise to transpose; jax.linearize hands the user a
            # forward-mode function (under which a custom_vjp cannot run)
            kinds.append("reverse" if getattr(x._trace, "is_vjp", True) else "forward")
            x = x.primal
        elif name == "JVPTracer":
            # linearize without direct linearisation: a JVP whose tangent is unknown
            kinds.append("reverse" if isinstance(x.tangent, pe.JaxprTracer) else "forward")
            x = x.primal
        elif name == "BatchTracer":
            kinds.append("vmap")
            x = x.val
        else:  # a staging tracer (jit, scan, checkpoint, eval_shape) or an unknown one
            kinds.append("staged")
            break
    return kinds, x


def transforms_of(*args: Any) -> Transforms:
    """The transformations applied to the arrays in ``args`` (pytrees; other leaves are
    ignored).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> seen = []
        >>> def f(x):
        ...     seen.append(transforms_of(x))
        ...     return jnp.sum(x)
        >>> _ = jax.grad(f)(jnp.ones(2)); _ = jax.jvp(f, (jnp.ones(2),), (jnp.ones(2),))
        >>> [sorted(t.needs) for t in seen]
        [['reverse'], ['forward']]
    """
    needs: set[str] = set()
    staged = False
    for leaf in jax.tree.leaves(args):
        kinds, _ = _levels(leaf)
        derivatives = [k for k in kinds if k in ("reverse", "forward")]
        needs.update(k for k in kinds if k != "staged")
        if len(derivatives) > 1:
            needs.add("higher")
        staged = staged or "staged" in kinds
    known = bool(needs & {"reverse", "forward"}) or not staged
    return Transforms(frozenset(needs) if known else TRANSFORMS, known)


def _platform_of_device(device: Any) -> str:
    return device if isinstance(device, str) else device.platform


def default_platform() -> str:
    """The platform a staged op runs on: the one set by :func:`on_platform`, else that of
    JAX's default device (``jax.default_device`` honoured)."""
    platform = _PLATFORM.get()
    if platform is not None:
        return platform
    # jax's Config defines its options as dynamic attributes, unknown to type checkers
    device = jax.config.jax_default_device  # type: ignore[attr-defined]
    return _platform_of_device(device) if device is not None else jax.devices()[0].platform


def platforms_of(*args: Any) -> frozenset[str]:
    """The platforms of the devices the arrays in ``args`` live on; a staged or
    host-side value counts as :func:`default_platform`.

    Example:
        >>> import jax.numpy as jnp
        >>> platforms_of(jnp.ones(2)) == {jnp.ones(2).devices().pop().platform}
        True
    """
    found: set[str] = set()
    for leaf in jax.tree.leaves(args):
        _, value = _levels(leaf)
        if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer):
            try:
                found.update(d.platform for d in value.devices())
                continue
            except (AttributeError, RuntimeError):  # a deleted or odd array
                pass
        if hasattr(value, "shape"):
            found.add(default_platform())
    return frozenset(found or {default_platform()})


@contextlib.contextmanager
def on_platform(platform: str | None) -> Iterator[None]:
    """Within the block, staged ops count as running on ``platform`` (None: unchanged).
    jaxnets' steps wrap their traced functions in it with the devices of their inputs."""
    if platform is None:
        yield
        return
    token = _PLATFORM.set(platform)
    try:
        yield
    finally:
        _PLATFORM.reset(token)


def single_platform(*args: Any) -> str | None:
    """The one platform of the concrete arrays in ``args``, or None (none or several)."""
    found = platforms_of(*args)
    return next(iter(found)) if len(found) == 1 else None
