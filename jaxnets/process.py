"""Process setup for scripts: glibc's transparent huge pages for XLA:CPU's buffers.

XLA:CPU allocates each step's large temporary buffers with ``malloc``; with transparent
huge pages in ``madvise`` mode (the common Linux default) glibc backs them with 2 MiB
pages only when asked, through the tunable ``glibc.malloc.hugetlb=1``, which glibc reads
once at process start. So a script sets it in the environment of the process that imports
JAX (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python train.py``), or re-executes itself
first thing with :func:`reexec_with_hugepages`.

Example:
    >>> from jaxnets import process
    >>> process.with_hugepages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"]
    'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

HUGEPAGE_TUNABLE = "glibc.malloc.hugetlb=1"
_THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def transparent_hugepage_mode(path: str = _THP_MODE) -> str | None:
    """The kernel's transparent-huge-page mode (``always``, ``madvise``, ``never``).

    Args:
      path: the sysfs file listing the modes, the current one in brackets.

    Returns:
      The bracketed mode, or None where the file cannot be read (not Linux) or has none.
    """
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
    """A copy of ``env`` whose ``GLIBC_TUNABLES`` asks glibc's malloc for transparent huge
    pages, keeping any other tunables already set.

    Args:
      env: the environment (default ``os.environ``); it is not modified.

    Returns:
      A new dict whose ``GLIBC_TUNABLES`` ends with :data:`HUGEPAGE_TUNABLE`.
    """
    env = dict(os.environ if env is None else env)
    tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    tunables = [t for t in tunables if not t.startswith("glibc.malloc.hugetlb=")]
    env["GLIBC_TUNABLES"] = ":".join([*tunables, HUGEPAGE_TUNABLE])
    return env


def hugepages_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` already carries the huge-page tunable.

    Args:
      env: the environment (default ``os.environ``).

    Returns:
      True when ``GLIBC_TUNABLES`` contains :data:`HUGEPAGE_TUNABLE`.
    """
    env = os.environ if env is None else env
    return HUGEPAGE_TUNABLE in env.get("GLIBC_TUNABLES", "").split(":")


def reexec_with_hugepages(args: Sequence[str] | None = None) -> None:
    """Replace this process by the same command with the huge-page tunable set, when it is
    missing and the kernel gives huge pages on request (mode ``madvise``; in ``always``
    every large allocation gets them already). Call it first thing in ``main``: the
    process starts again from the beginning. ``JAXNETS_NO_HUGEPAGES=1`` turns it off.

    Args:
      args: the interpreter's arguments (default ``sys.orig_argv[1:]``, so
        ``python -m jaxnets ...`` restarts as itself).

    Returns:
      None, and only when nothing needs doing; otherwise it never returns (``os.execve``).
    """
    if os.environ.get("JAXNETS_NO_HUGEPAGES") or hugepages_enabled():
        return
    if not sys.platform.startswith("linux") or transparent_hugepage_mode() != "madvise":
        return
    args = list(sys.orig_argv[1:] if args is None else args)
    os.execve(sys.executable, [sys.executable, *args], with_hugepages())
