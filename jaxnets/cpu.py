"""CPU-specific choices: which formulation a layer uses, and allocator settings for scripts.

Layers with a faster but equivalent CPU formulation ask :func:`on_cpu` (the default
backend, read when the layer is traced) and keep the plain formulation elsewhere; the
measurements are in ``benchmarks/RESULTS_CPU.md``.

Huge pages. XLA:CPU allocates each step's large temporary buffers with ``malloc``; with
transparent huge pages in ``madvise`` mode (the common Linux default) glibc backs them with
2 MiB pages only when asked, through the tunable ``glibc.malloc.hugetlb=1``. glibc reads
tunables once, at process start, so scripts set it in the environment of the process that
imports JAX::

    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python train.py

or re-execute themselves first thing with :func:`reexec_with_hugepages`.

Convolutions. XLA:CPU hands convolutions to YNNPACK, which runs each one on a single
thread, while XLA's own (Eigen) convolution uses every core of its thread pool. Where the
process may use more than one core, jaxnets' jitted steps (:func:`jaxnets.make_train_step`,
``make_eval_step``, ``make_predict``) of a network with convolutions are compiled with
:data:`CONVOLUTIONS_ON_EIGEN` (:func:`compiler_options` decides, from the traced program;
with normalisation layers also elementwise fusions in YNNPACK); matrix products stay on
YNNPACK. Pass ``compiler_options={}`` to those functions to keep
XLA's defaults, or your own dictionary of XLA options.

Example:
    >>> from jaxnets import cpu
    >>> cpu.with_hugepages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"]
    'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
from jax.extend import core as jax_core

HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
_THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def on_cpu() -> bool:
    """Whether JAX's default backend is the CPU (decides a layer's formulation)."""
    return jax.default_backend() == "cpu"


_YNN_FUSION_TYPE = "xla_cpu_experimental_ynn_fusion_type"

#: XLA options for networks with convolutions: matrix products and reductions stay in
#: YNNPACK, convolutions go to XLA's own multi-threaded (Eigen) implementation. On 2
#: cores: LeNet-style train step 0.65x (with or without the reductions), CIFAR ResNet-20
#: 0.91x; the LSTM (no convolutions) would be 1.08x, so it is not used there.
CONVOLUTIONS_ON_EIGEN = {
    _YNN_FUSION_TYPE: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
}

#: :data:`CONVOLUTIONS_ON_EIGEN` plus elementwise fusions in YNNPACK, for networks with
#: convolutions and normalisation (found by ``rsqrt`` in the program): the activations
#: that XLA transposes for the filter gradients are then materialised once instead of
#: recomputing the normalisation chain inside every transpose. ResNet-20 with the
#: CPU BatchNorm form: 0.70x of :data:`CONVOLUTIONS_ON_EIGEN`; LeNet (no normalisation):
#: 1.12x, because YNNPACK then also takes a convolution whose only consumer is
#: elementwise and runs it on one thread.
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


def primitives(fn: Callable, *args: Any) -> set[str]:
    """The names of the primitives in ``fn``'s traced program for ``args`` (shapes and
    dtypes only), including those inside loops, conditionals and custom derivatives."""
    abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype) if hasattr(a, "shape") else a, args
    )
    return jaxpr_primitives(jax.make_jaxpr(fn)(*abstract).jaxpr)


def jaxpr_primitives(jaxpr: jax_core.Jaxpr) -> set[str]:
    """The names of the primitives in ``jaxpr`` and in the jaxprs its equations carry."""
    names: set[str] = set()
    _collect(jaxpr, names)
    return names


def _collect(jaxpr, names: set[str]) -> None:
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                if isinstance(sub, jax_core.ClosedJaxpr):
                    _collect(sub.jaxpr, names)
                elif isinstance(sub, jax_core.Jaxpr):
                    _collect(sub, names)


def options_for(found: set[str]) -> dict[str, Any]:
    """The rule of :func:`compiler_options`, given the primitive names of a program."""
    if not on_cpu() or usable_cores() < 2 or "conv_general_dilated" not in found:
        return {}
    return dict(CONVOLUTIONS_ON_EIGEN_NORMALISED if "rsqrt" in found else CONVOLUTIONS_ON_EIGEN)


def compiler_options(fn: Callable, *args: Any) -> dict[str, Any]:
    """The XLA options jaxnets compiles ``fn(*args)`` with. On the CPU backend with more
    than one usable core, a program with a convolution gets :data:`CONVOLUTIONS_ON_EIGEN`,
    or :data:`CONVOLUTIONS_ON_EIGEN_NORMALISED` when it also normalises (``rsqrt``);
    anything else gets none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> conv = lambda x, w: jax.lax.conv(x, w, (1, 1), "SAME")
        >>> opts = compiler_options(conv, jnp.ones((1, 1, 4, 4)), jnp.ones((1, 1, 3, 3)))
        >>> opts == (CONVOLUTIONS_ON_EIGEN if on_cpu() and usable_cores() > 1 else {})
        True
        >>> compiler_options(jnp.tanh, jnp.ones(3))
        {}
    """
    if not on_cpu() or usable_cores() < 2:
        return {}  # without tracing
    return options_for(primitives(fn, *args))


class TunedJit:
    """``jax.jit(fn, **kwargs)`` compiled with :func:`compiler_options` (or the given
    ``options``), decided at the first call from the traced program.

    Example:
        >>> import jax.numpy as jnp
        >>> f = TunedJit(lambda x: x * 2)
        >>> f(jnp.ones(2)).tolist(), f._cache_size()
        ([2.0, 2.0], 1)
    """

    def __init__(self, fn: Callable, options: Mapping[str, Any] | None = None, **kwargs):
        self._fn = fn
        self._options = options
        self._kwargs = kwargs
        self._jitted: Any = None

    def jitted(self, *args: Any) -> Any:
        """The ``jax.jit`` object, created for these example arguments at the first call."""
        if self._jitted is None:
            options = self._options
            if options is None:
                options = compiler_options(self._fn, *args)
            self._jitted = jax.jit(self._fn, compiler_options=dict(options) or None, **self._kwargs)
        return self._jitted

    def __call__(self, *args: Any) -> Any:
        return (self._jitted or self.jitted(*args))(*args)

    def lower(self, *args: Any) -> jax.stages.Lowered:
        return self.jitted(*args).lower(*args)

    def _cache_size(self) -> int:
        return 0 if self._jitted is None else self._jitted._cache_size()


def transparent_hugepage_mode(path: str = _THP_MODE) -> str | None:
    """The kernel's transparent-huge-page mode (``always``, ``madvise``, ``never``), or None
    where it cannot be read (not Linux)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


def with_hugepages(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) whose ``GLIBC_TUNABLES`` asks glibc's
    malloc for transparent huge pages, keeping any other tunables already set."""
    env = dict(os.environ if env is None else env)
    tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    tunables = [t for t in tunables if not t.startswith("glibc.malloc.hugetlb=")]
    env["GLIBC_TUNABLES"] = ":".join([*tunables, HUGEPAGE_TUNABLE])
    return env


def hugepages_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (default ``os.environ``) already carries the huge-page tunable."""
    env = os.environ if env is None else env
    return HUGEPAGE_TUNABLE in env.get("GLIBC_TUNABLES", "").split(":")


def reexec_with_hugepages(args: Sequence[str] | None = None) -> None:
    """Replace this process by the same command with the huge-page tunable set, when it is
    missing and the kernel gives huge pages on request (mode ``madvise``; in ``always``
    every large allocation gets them already). Returns only when nothing needs doing.

    ``args`` are the interpreter's arguments (default ``sys.orig_argv[1:]``, so
    ``python -m jaxnets ...`` restarts as itself). Call it first thing in ``main``: the
    process starts again from the beginning. ``JAXNETS_NO_HUGEPAGES=1`` turns it off.
    """
    if os.environ.get("JAXNETS_NO_HUGEPAGES") or hugepages_enabled():
        return
    if not sys.platform.startswith("linux") or transparent_hugepage_mode() != "madvise":
        return
    args = list(sys.orig_argv[1:] if args is None else args)
    os.execve(sys.executable, [sys.executable, *args], with_hugepages())
