"""The XLA options jaxnets compiles a step with, from what its implementations declared.

On XLA:CPU, convolutions go to YNNPACK, which runs each on one thread, while XLA's own
(Eigen) convolution uses every core of its pool. So where the process may use more than
one core, a program whose layers declared a convolution is compiled with
:data:`CONVOLUTIONS_ON_EIGEN`, and one that also declared normalisation with
:data:`CONVOLUTIONS_ON_EIGEN_NORMALISED`; anything else keeps XLA's defaults. The
measurements behind the rule are in ``benchmarks/RESULTS_CPU.md``.

These options are experimental flags of XLA:CPU: a jaxlib that predates one (or has
dropped it) refuses to compile any program passed it. So they are passed only to a jaxlib
that compiles a one-operation program with them (:func:`understood`), checked once per
process; elsewhere XLA's defaults are kept.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np

from jaxnets._impl.choose import declared, record_choices
from jaxnets._impl.context import default_platform, on_platform, single_platform

_YNN_FUSION_TYPE = "xla_cpu_experimental_ynn_fusion_type"

# Bound at import: the probe below is no compilation of the caller's, and a test that
# watches ``jax.jit`` sees only those.
_jit = jax.jit

#: Matrix products and reductions stay in YNNPACK; convolutions go to XLA's own
#: multi-threaded (Eigen) implementation.
CONVOLUTIONS_ON_EIGEN = {
    _YNN_FUSION_TYPE: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
}

#: :data:`CONVOLUTIONS_ON_EIGEN` plus elementwise fusions in YNNPACK: the activations that
#: XLA transposes for the filter gradients are then materialised once instead of
#: recomputing the normalisation chain inside every transpose.
CONVOLUTIONS_ON_EIGEN_NORMALISED = {
    _YNN_FUSION_TYPE: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE,"
    "LIBRARY_FUSION_TYPE_ELTWISE"
}


def usable_cores() -> int:
    """How many CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def understood(options: Mapping[str, Any]) -> bool:
    """Whether the installed XLA:CPU compiles a program with ``options``.

    Compiles ``x + 1`` once (on the CPU device) for each set of options asked about in
    the process; an option this jaxlib does not know, or a value it cannot parse, makes
    that compilation fail.

    Args:
      options: XLA option names and values, as for ``jax.jit(compiler_options=...)``.

    Returns:
      True when the compilation succeeds.

    Example:
        >>> understood({"xla_cpu_enable_fast_math": False})
        True
        >>> understood({"xla_cpu_no_such_option": True})
        False
    """
    return _compiles_with(tuple(sorted((str(k), v) for k, v in options.items())))


@functools.cache
def _compiles_with(items: tuple[tuple[str, Any], ...]) -> bool:
    try:
        x = jax.device_put(np.float32(0), jax.devices("cpu")[0])
        _jit(lambda a: a + 1).lower(x).compile(compiler_options=dict(items))
    except Exception:  # the error's class differs between jaxlib versions
        return False
    return True


def options_for(declarations: Iterable[str], platform: str) -> dict[str, Any]:
    """The options for a program on ``platform`` whose implementations declared
    ``declarations`` (none where the installed jaxlib does not understand them).

    Example:
        >>> options_for({"convolution"}, "gpu")
        {}
        >>> options_for({"normalisation"}, "cpu")
        {}
    """
    found = set(declarations)
    if platform != "cpu" or usable_cores() < 2 or "convolution" not in found:
        return {}
    chosen = CONVOLUTIONS_ON_EIGEN_NORMALISED if "normalisation" in found else CONVOLUTIONS_ON_EIGEN
    return dict(chosen) if understood(chosen) else {}


def compiler_options(fn: Callable, *args: Any) -> dict[str, Any]:
    """The options for ``fn(*args)``, from one trace on shapes and dtypes (on the platform
    of the arrays in ``args``)."""
    platform = platform_for(*args)
    if platform != "cpu" or usable_cores() < 2:
        return {}  # without tracing
    abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype) if hasattr(a, "shape") else a, args
    )
    with on_platform(platform), record_choices() as choices:
        jax.make_jaxpr(fn)(*abstract)
    return options_for(declared(choices), platform)


def platform_for(*args: Any) -> str:
    """The one platform a program on ``args`` is traced for: that of their devices when
    they share one, else :func:`jaxnets._impl.context.default_platform`."""
    return single_platform(*args) or default_platform()


def on_platform_of(fn: Callable, *args: Any) -> Callable:
    """``fn`` traced as running on :func:`platform_for` ``args`` (see
    :func:`jaxnets._impl.context.on_platform`)."""
    platform = platform_for(*args)

    def traced(*a: Any, **kw: Any) -> Any:
        with on_platform(platform):
            return fn(*a, **kw)

    return traced


class TunedJit:
    """``jax.jit(fn, **kwargs)`` compiled with :func:`compiler_options` (or the given
    ``options``), decided at the first call from the traced program and the devices of
    its arguments.

    Example:
        >>> import jax.numpy as jnp
        >>> f = TunedJit(lambda x: x * 2)
        >>> f(jnp.ones(2)).tolist(), f._cache_size()
        ([2.0, 2.0], 1)
    """

    def __init__(self, fn: Callable, options: Mapping[str, Any] | None = None, **kwargs: Any):
        self._fn = fn
        self._options = options
        self._kwargs = kwargs
        self._jitted: Any = None
        self.compiler_options: dict[str, Any] | None = None

    def jitted(self, *args: Any) -> Any:
        """The ``jax.jit`` object, created for these example arguments at the first call."""
        if self._jitted is None:
            options = self._options
            if options is None:
                options = compiler_options(self._fn, *args)
            self.compiler_options = dict(options)
            fn = on_platform_of(self._fn, *args)
            self._jitted = jax.jit(fn, compiler_options=dict(options) or None, **self._kwargs)
        return self._jitted

    def __call__(self, *args: Any) -> Any:
        return (self._jitted or self.jitted(*args))(*args)

    def lower(self, *args: Any) -> jax.stages.Lowered:
        """Lower for these arguments (``jax.jit``'s ``lower``)."""
        return self.jitted(*args).lower(*args)

    def _cache_size(self) -> int:
        return 0 if self._jitted is None else self._jitted._cache_size()
