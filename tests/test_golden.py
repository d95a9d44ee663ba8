"""Golden parameter and state layouts: for each registry case, the paths, shapes and dtypes
of ``case.make().init(jax.random.key(0), spec)`` are those stored in
``tests/golden/<case id>.json``. A change of names or shapes breaks checkpoints; if it is
meant, rewrite the files::

    JAXNETS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden.py

and review the diff of tests/golden/ with the change.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path

import jax
import pytest
from layer_cases import LayerCase, all_cases
from test_layers_generic import spec_of

from jaxnets.core import path_str

CASES = all_cases()
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("JAXNETS_UPDATE_GOLDEN") == "1"
HOW = "run `JAXNETS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden.py`"


def layout(case: LayerCase) -> list[list]:
    """``[[path, shape, dtype], ...]`` sorted by path (``params/...`` and ``state/...``),
    traced abstractly (nothing is allocated)."""
    layer = case.make()
    _, params, state = jax.eval_shape(lambda k: layer.init(k, spec_of(case)), jax.random.key(0))
    leaves = jax.tree_util.tree_flatten_with_path({"params": params, "state": state})[0]
    return sorted([path_str(p), list(a.shape), str(a.dtype)] for p, a in leaves)


def dumps(entries: list[list]) -> str:
    """One entry a line (indent=1 would put every dimension on a line of its own)."""
    if not entries:
        return "[]\n"
    return "[\n" + ",\n".join(" " + json.dumps(e) for e in entries) + "\n]\n"


def golden_file(case_id: str) -> Path:
    return GOLDEN / f"{case_id}.json"


def test_case_ids_make_file_names():
    bad = [c.id for c in CASES if not re.fullmatch(r"[A-Za-z0-9_.-]+", c.id)]
    assert not bad, f"case ids that are no plain file names: {bad}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_params_and_state_match_golden(case):
    path = golden_file(case.id)
    current = dumps(layout(case))
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        if not path.exists() or path.read_text() != current:
            path.write_text(current)
        return
    assert path.exists(), (
        f"no golden file {path.relative_to(GOLDEN.parent)} for case {case.id!r}: {HOW}"
    )
    stored = path.read_text()
    if json.loads(stored) != json.loads(current):
        diff = "\n".join(
            difflib.unified_diff(
                stored.splitlines(),
                current.splitlines(),
                f"golden/{case.id}.json (stored)",
                f"{case.id} (now)",
                lineterm="",
            )
        )
        pytest.fail(
            f"{case.id}: the params/state layout changed (paths, shapes or dtypes):\n{diff}\n"
            f"If the change is meant, {HOW}",
            pytrace=False,
        )


def test_no_stale_golden_files():
    ids = {c.id for c in CASES}
    stale = sorted(p for p in GOLDEN.glob("*.json") if p.stem not in ids)
    if UPDATE:
        for p in stale:
            p.unlink()
        return
    assert not stale, (
        f"golden files without a registry case: {[p.name for p in stale]}; delete them (or {HOW})"
    )
