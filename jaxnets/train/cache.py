"""The persistent compilation cache: compiled steps reused across processes.

XLA compilation of a big model's train step takes seconds to minutes. With the cache on,
JAX stores each compiled executable on disk keyed by the computation, the JAX version
and the device, and a later process with the same step loads it instead of compiling.
The ``jaxnets`` command turns it on (``--compile-cache DIR``, default
``~/.cache/jaxnets/xla`` or ``$JAXNETS_COMPILE_CACHE``); call
:func:`enable_compilation_cache` early in a script to do the same.

Example:
    >>> import jax, tempfile
    >>> before = jax.config.jax_compilation_cache_dir
    >>> path = enable_compilation_cache(tempfile.mkdtemp())
    >>> jax.config.jax_compilation_cache_dir == path
    True
    >>> jax.config.update("jax_compilation_cache_dir", before)  # undo, for the test run
    >>> jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
"""

from __future__ import annotations

import os

import jax

ENV = "JAXNETS_COMPILE_CACHE"


def default_cache_dir() -> str:
    """``$JAXNETS_COMPILE_CACHE`` or ``~/.cache/jaxnets/xla``.

    Returns:
      The folder: the environment variable when it is set and not empty, else the default.
    """
    return os.environ.get(ENV) or os.path.join(os.path.expanduser("~"), ".cache", "jaxnets", "xla")


def enable_compilation_cache(path: str | None = None, *, min_compile_time_s: float = 0.5) -> str:
    """Store compiled executables under ``path`` (created if missing) and reuse them.

    Set it before the first compilation of the process.

    Args:
      path: the cache folder (None: :func:`default_cache_dir`).
      min_compile_time_s: store only compilations that took at least this many seconds
        (JAX's default is 1 s).

    Returns:
      The absolute path of the folder.
    """
    path = os.path.abspath(path or default_cache_dir())
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_s)
    return path
