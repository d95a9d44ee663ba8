"""The registry of layers that the generic tests run over.

Every layer family adds its cases in a ``cases_<family>.py`` module beside this one,
as a list named ``CASES`` of :class:`LayerCase`. ``all_cases()`` gathers them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax.numpy as jnp


@dataclass(frozen=True)
class LayerCase:
    """One layer under test.

    Attributes:
      id: a readable test id.
      make: builds the Layer (called fresh in each test).
      input_shape: with the batch dimension; a tuple of shapes for multi-input layers.
      int_input_max: if set, inputs are int32 in [0, int_input_max) (token ids):
        dtype and gradient-with-respect-to-input checks are skipped.
      train: also run the checks in training mode (needs a key when random).
      grad_atol / grad_rtol: tolerances for the float64 finite-difference check.
      check_grads: False only with a reason in ``skip_grads_reason``.
      input_dtypes: dtypes the dtype-preservation test runs with.
      vmap: run the vmap check.
      reference: for a case that names an implementation (``impl=...``), the same layer
        with ``impl="reference"``: values and gradients are compared with it.
    """

    id: str
    make: Callable[[], Any]
    input_shape: Any
    int_input_max: int | None = None
    train: bool = True
    grad_atol: float = 1e-4
    grad_rtol: float = 1e-4
    check_grads: bool = True
    skip_grads_reason: str = ""
    input_dtypes: tuple = field(default_factory=lambda: (jnp.float32, jnp.bfloat16))
    vmap: bool = True
    reference: Callable[[], Any] | None = None


def all_cases() -> list[LayerCase]:
    here = Path(__file__).parent
    cases: list[LayerCase] = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if info.name.startswith("cases_"):
            module = importlib.import_module(info.name)
            cases.extend(module.CASES)
    ids = [c.id for c in cases]
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, f"duplicate layer case ids: {dupes}"
    return cases
