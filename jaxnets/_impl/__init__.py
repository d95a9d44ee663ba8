"""The implementation seam: each layer computes its op with the reference math in its own
file, and faster formulations registered here beside it, each with the platforms it
serves and the transformations it supports (``docs/implementations.md``).

A layer asks :func:`choose` for the implementation of its op on its arguments; the choice
is recorded for ``jn.summary`` and for the rule that picks XLA options
(:mod:`jaxnets._impl.xla_options`).
"""

from jaxnets._impl import batch_norm, lstm, max_pool, repeat_loop  # noqa: F401  (register)
from jaxnets._impl.choose import Choice, choose, declared, record_choices
from jaxnets._impl.context import (
    Transforms,
    default_platform,
    on_platform,
    platforms_of,
    single_platform,
    transforms_of,
)
from jaxnets._impl.registry import (
    AUTO,
    REFERENCE,
    TRANSFORMS,
    Implementation,
    Op,
    check_impl,
    define_op,
    get_op,
    implementations,
    ops,
    register,
)

__all__ = [
    "AUTO",
    "REFERENCE",
    "TRANSFORMS",
    "Choice",
    "Implementation",
    "Op",
    "Transforms",
    "check_impl",
    "choose",
    "declared",
    "default_platform",
    "define_op",
    "get_op",
    "implementations",
    "on_platform",
    "ops",
    "platforms_of",
    "record_choices",
    "register",
    "single_platform",
    "transforms_of",
]
