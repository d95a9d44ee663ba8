"""Runs the bad-input corpus (``tests/bad_inputs_*.py``): every case must be refused with
the expected type and a message naming the argument, the expected and the received value."""

from __future__ import annotations

import importlib
import pathlib
import warnings
from collections import Counter

import pytest
from bad_input import Bad

_MODULES = sorted(p.stem for p in pathlib.Path(__file__).parent.glob("bad_inputs_*.py"))
CASES: list[Bad] = [c for m in _MODULES for c in importlib.import_module(m).CASES]


def test_case_names_are_unique():
    counts = Counter(c.id for c in CASES)
    assert [name for name, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_clearly(case: Bad):
    if case.warns:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            case.call()
        matching = [w for w in caught if issubclass(w.category, case.raises)]
        assert matching, f"no {case.raises} warning; got {[str(w.message) for w in caught]}"
        message = str(matching[0].message)
    else:
        with pytest.raises(case.raises) as info:
            case.call()
        message = str(info.value)
    missing = [m for m in case.mentions if m not in message]
    assert not missing, f"the message {message!r} does not mention {missing}"
