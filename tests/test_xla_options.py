"""The XLA:CPU options are passed only to a jaxlib that understands them."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets._impl import xla_options


def _cnn():
    return jn.serial(jn.Conv(4, (3, 3)), jn.Relu(), jn.Flatten(), jn.Dense(3))


def _batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 6, 2)).astype(np.float32)
    return x, rng.integers(0, 3, 4).astype(np.int32)


def test_unknown_options_and_values_are_not_understood():
    assert xla_options.understood({"xla_cpu_enable_fast_math": False})
    assert xla_options.understood({})
    assert not xla_options.understood({"xla_cpu_jaxnets_no_such_option": True})
    assert not xla_options.understood(
        {xla_options._YNN_FUSION_TYPE: "LIBRARY_FUSION_TYPE_NO_SUCH_TYPE"}
    )


def test_the_probe_runs_once_per_set_of_options(monkeypatch):
    calls = []
    real = xla_options._jit

    def counting(fn):
        calls.append(fn)
        return real(fn)

    monkeypatch.setattr(xla_options, "_jit", counting)
    xla_options._compiles_with.cache_clear()
    options = {"xla_cpu_enable_fast_math": False}
    assert xla_options.understood(options) and xla_options.understood(dict(options))
    assert len(calls) == 1
    xla_options._compiles_with.cache_clear()


def test_options_for_keeps_xla_defaults_where_the_option_is_not_understood(monkeypatch):
    monkeypatch.setattr(xla_options, "usable_cores", lambda: 2)
    monkeypatch.setattr(xla_options, "understood", lambda options: False)
    assert xla_options.options_for({"convolution"}, "cpu") == {}
    assert xla_options.options_for({"convolution", "normalisation"}, "cpu") == {}
    monkeypatch.setattr(xla_options, "understood", lambda options: True)
    assert xla_options.options_for({"convolution"}, "cpu") == xla_options.CONVOLUTIONS_ON_EIGEN
    assert xla_options.options_for({"convolution", "normalisation"}, "cpu") == (
        xla_options.CONVOLUTIONS_ON_EIGEN_NORMALISED
    )


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU options")
def test_a_cnn_trains_with_the_options_this_jaxlib_understands(monkeypatch):
    monkeypatch.setattr(xla_options, "usable_cores", lambda: 2)
    model, opt = _cnn(), optax.sgd(0.1)
    x, y = _batch()
    step = jn.make_train_step(model, "softmax_cross_entropy", opt)
    ts, metrics = step(jn.create_train_state(model, opt, x.shape), (x, y))
    assert np.isfinite(float(metrics["loss"]))
    known = xla_options.understood(xla_options.CONVOLUTIONS_ON_EIGEN)
    assert step.compiler_options == (xla_options.CONVOLUTIONS_ON_EIGEN if known else {})
    predict = jn.make_predict(model)
    assert predict(ts.params, ts.state, x).shape == (4, 3)
    assert predict.compiler_options == step.compiler_options
