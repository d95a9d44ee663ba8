"""The demo path, run for one epoch: output line, curves PNG, both model variants."""

from __future__ import annotations

import re

import jax

import jaxnets as jn
from jaxnets.demo import digits_cnn, run_demo


def test_demo_prints_accuracy_last_and_saves_curves(tmp_path, capsys):
    accuracy = run_demo(epochs=1, out_dir=str(tmp_path), progress=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"test_accuracy=[01]\.\d{4}", lines[-1])
    assert float(lines[-1].split("=")[1]) == round(accuracy, 4)
    assert 0.0 <= accuracy <= 1.0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_model_augments_only_when_asked():
    with_shift = digits_cnn()
    without = digits_cnn(augment=False)
    _, params, _ = jn.shape_tree(with_shift, (4, 8, 8, 1))
    _, params_plain, _ = jn.shape_tree(without, (4, 8, 8, 1))
    assert jn.count_params(params) == jn.count_params(params_plain)
    x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))
    _, p, s = with_shift.init(jax.random.key(1), x.shape)
    first = with_shift.apply(p, s, x, key=jax.random.key(2), train=True)[0]
    second = with_shift.apply(p, s, x, key=jax.random.key(3), train=True)[0]
    assert not jax.numpy.allclose(first, second)  # shifts (and dropout) differ per key
    inference = [with_shift.apply(p, s, x, train=False)[0] for _ in range(2)]
    assert jax.numpy.array_equal(*inference)
