"""Training on the core layers: determinism, no retracing, XOR, SELU, BatchNorm."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn


def _fit(model, data, **kw):
    kw.setdefault("progress", False)
    return jn.fit(model, data, **kw)


def test_same_seed_same_numbers_and_different_seed_differs():
    data = jn.data.two_spirals(64)
    model = jn.models.mlp((16,), 2, dropout=0.2)
    runs = [
        _fit(model, data, optimizer=optax.adam(1e-2), epochs=3, batch_size=16, seed=s)
        for s in (0, 0, 1)
    ]
    for a, b in zip(
        jax.tree.leaves(runs[0].state.params), jax.tree.leaves(runs[1].state.params), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert runs[0].history["loss"] == runs[1].history["loss"]
    assert runs[0].history["loss"] != runs[2].history["loss"]


def test_train_step_compiles_once():
    model = jn.models.mlp((8,), 3, dropout=0.1, batch_norm=True)
    opt = optax.adam(1e-3)
    ts = jn.create_train_state(model, opt, (4, 5))
    step = jn.make_train_step(model, "softmax_cross_entropy", opt)
    rng = np.random.default_rng(0)
    for _ in range(5):
        batch = (rng.normal(size=(4, 5)).astype(np.float32), rng.integers(0, 3, 4).astype(np.int32))
        ts, _ = step(ts, batch)
    assert step._cache_size() == 1
    assert int(ts.step) == 5


def test_perceptron_cannot_learn_xor_but_mlp_does():
    data = jn.data.xor(repeat=8)
    opt = optax.adam(0.05)
    linear = _fit(
        jn.models.perceptron(1),
        data,
        optimizer=opt,
        loss="sigmoid_binary_cross_entropy",
        epochs=150,
        batch_size=32,
    )
    mlp = _fit(
        jn.models.mlp((8,), 1, activation="tanh"),
        data,
        optimizer=opt,
        loss="sigmoid_binary_cross_entropy",
        epochs=150,
        batch_size=32,
    )
    x, y = jn.data.xor()
    predict = jn.make_predict
    lin_out = predict(jn.models.perceptron(1))(linear.state.params, linear.state.state, x)
    mlp_out = predict(jn.models.mlp((8,), 1, activation="tanh"))(
        mlp.state.params, mlp.state.state, x
    )
    lin_acc = float(jn.losses.accuracy(lin_out, jnp.asarray(y)))
    mlp_acc = float(jn.losses.accuracy(mlp_out, jnp.asarray(y)))
    assert lin_acc <= 0.75, "a linear model cannot separate XOR"
    assert mlp_acc == 1.0


def test_deep_selu_mlp_self_normalises_at_init():
    depth, width = 20, 256
    model = jn.models.mlp((width,) * depth, 10, activation="selu")
    _, params, state = model.init(jax.random.key(0), (1024, width))
    x = jax.random.normal(jax.random.key(1), (1024, width))

    def propagate(params, activation):
        h = x
        for i in range(depth):
            layer = jn.serial(("dense", jn.Dense(width)), activation)
            h, _ = layer.apply({"dense": params[f"hidden_{i}"]["dense"]}, {}, h, train=False)
        return h

    h = propagate(params, jn.Selu())
    mean, var = float(jnp.mean(h)), float(jnp.var(h))
    assert abs(mean) < 0.1 and abs(var - 1.0) < 0.15, (mean, var)
    relu = jn.models.mlp((width,) * depth, 10, activation="relu")
    _, rparams, _ = relu.init(jax.random.key(0), (1024, width))
    hr = propagate(rparams, jn.Relu())
    assert float(jnp.var(hr)) < 0.5 * var, "Glorot+ReLU decays; SELU keeps unit variance"


def test_deep_selu_mlp_trains_on_digits():
    train, test = jn.data.load_digits()
    model = jn.models.mlp((64,) * 20, 10, activation="selu")
    result = _fit(model, train, val_data=test, optimizer=optax.adam(3e-4), epochs=20, batch_size=32)
    assert result.history["val_accuracy"][-1] > 0.85
    assert result.history["loss"][-1] < result.history["loss"][0] / 4


def test_batchnorm_averages_converge_to_data_statistics():
    rng = np.random.default_rng(0)
    data = rng.normal(loc=[3.0, -2.0, 0.5], scale=[2.0, 0.5, 1.0], size=(4096, 3)).astype(
        np.float32
    )
    bn = jn.BatchNorm(momentum=0.9)
    _, params, state = bn.init(jax.random.key(0), (256, 3))
    apply = jax.jit(lambda s, x: bn.apply(params, s, x, train=True))
    for _epoch in range(5):
        for i in range(0, 4096, 256):
            _, state = apply(state, data[i : i + 256])
    np.testing.assert_allclose(state["mean"], data.mean(0), atol=0.05)
    np.testing.assert_allclose(state["var"], data.var(0), rtol=0.05)


def test_batchnorm_inference_uses_moving_averages_and_training_uses_batch():
    bn = jn.BatchNorm()
    _, params, _ = bn.init(jax.random.key(0), (4, 2))
    state = {"mean": jnp.array([1.0, -1.0]), "var": jnp.array([4.0, 0.25])}
    x = jnp.array([[3.0, 0.0], [5.0, 1.0], [1.0, -1.0], [3.0, 2.0]])
    y, same = bn.apply(params, state, x, train=False)
    expected = (np.asarray(x) - [1.0, -1.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    assert same is state
    y_train, new = bn.apply(params, state, x, train=True)
    xb = np.asarray(x)
    np.testing.assert_allclose(y_train, (xb - xb.mean(0)) / np.sqrt(xb.var(0) + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(
        new["mean"], 0.99 * np.array([1.0, -1.0]) + 0.01 * xb.mean(0), rtol=1e-6
    )


def test_batchnorm_running_variance_starts_at_one():
    _, _, state = jn.BatchNorm().init(jax.random.key(0), (2, 5))
    np.testing.assert_array_equal(state["var"], np.ones(5))
    np.testing.assert_array_equal(state["mean"], np.zeros(5))


def test_layernorm_matches_numpy():
    ln = jn.LayerNorm()
    _, params, _ = ln.init(jax.random.key(0), (3, 6))
    x = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
    y, _ = ln.apply(params, {}, jnp.asarray(x), train=False)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_dropout_drops_at_rate_and_keeps_expectation():
    x = jnp.ones((200, 500))
    y, _ = jn.Dropout(0.3).apply({}, {}, x, key=jax.random.key(0), train=True)
    assert abs(float(jnp.mean(y == 0)) - 0.3) < 0.01
    assert abs(float(jnp.mean(y)) - 1.0) < 0.02


def test_alpha_dropout_keeps_selu_moments():
    x = jax.random.normal(jax.random.key(0), (400, 500))
    y, _ = jn.AlphaDropout(0.1).apply({}, {}, x, key=jax.random.key(1), train=True)
    assert abs(float(jnp.mean(y))) < 0.02 and abs(float(jnp.var(y)) - 1.0) < 0.03


def test_evaluation_counts_every_example_once():
    data = jn.data.ArrayDataset(np.ones((10, 2), np.float32), np.arange(10) % 2)
    model = jn.models.perceptron(2)
    ts = jn.create_train_state(model, optax.sgd(0.1), (4, 2))
    eval_step = jn.make_eval_step(model, "softmax_cross_entropy")
    batch_sizes = (3, 4, 10, 16)
    counts = [
        float(sum(eval_step(ts, b)["count"] for b in jn.data.eval_batches(data, bs)))
        for bs in batch_sizes
    ]
    assert counts == [10.0] * 4
    results = [jn.evaluate(eval_step, ts, data, bs) for bs in batch_sizes]
    for r in results[1:]:
        np.testing.assert_allclose(r["loss"], results[0]["loss"], rtol=1e-6)


def test_non_finite_loss_stops_with_the_step():
    data = jn.data.ArrayDataset(np.ones((8, 2), np.float32), np.zeros(8, np.int32))

    def exploding(outputs, labels):
        return jnp.full(outputs.shape[:1], jnp.nan)

    with pytest.raises(FloatingPointError, match="at step 0"):
        _fit(
            jn.models.perceptron(2),
            data,
            optimizer=optax.sgd(0.1),
            loss=exploding,
            epochs=1,
            batch_size=4,
        )


def test_key_is_passed_only_to_models_that_use_randomness():
    from jaxnets.train.step import model_uses_key

    x = jnp.ones((4, 5))
    for model, expected in [
        (jn.models.mlp((8,), 3), False),
        (jn.models.mlp((8,), 3, batch_norm=True), False),
        (jn.models.mlp((8,), 3, dropout=0.2), True),
        (jn.serial(jn.Dense(3), jn.AlphaDropout(0.1)), True),
    ]:
        _, params, state = model.init(jax.random.key(0), x.shape)
        assert model_uses_key(model, params, state, x) is expected


def test_train_step_uses_fold_in_of_the_run_key_and_step():
    model = jn.serial(jn.Dense(4), jn.Dropout(0.5), jn.Dense(2))
    opt = optax.sgd(0.1)
    ts = jn.create_train_state(model, opt, (8, 3), seed=3)
    batch = (np.ones((8, 3), np.float32), np.zeros(8, np.int32))
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, donate=False)
    ts1, _ = step(ts, batch)
    ts2, _ = step(ts1, batch)
    assert int(ts2.step) == 2

    def reference(params, i):
        key = jax.random.fold_in(ts.key, i)

        def loss(p):
            out, _ = model.apply(p, {}, batch[0], key=key, train=True)
            return jn.losses.softmax_cross_entropy(out, batch[1]).mean()

        return jax.tree.map(lambda p, g: p - 0.1 * g, params, jax.grad(loss)(params))

    expected = reference(reference(ts.params, 0), 1)
    for a, b in zip(jax.tree.leaves(ts2.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_lowered_and_compiled_step_keep_the_calling_convention():
    model = jn.models.mlp((8,), 3, dropout=0.1)
    opt = optax.adam(1e-3)
    ts = jn.create_train_state(model, opt, (4, 5))
    batch = (np.ones((4, 5), np.float32), np.zeros(4, np.int32))
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, donate=False)
    lowered = step.lower(ts, batch)
    assert "dot_general" in lowered.as_text()
    compiled = lowered.compile()
    ts_aot, m_aot = compiled(ts, batch)
    ts_jit, m_jit = step(ts, batch)
    assert int(ts_aot.step) == int(ts_jit.step) == 1
    np.testing.assert_allclose(m_aot["loss"], m_jit["loss"], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(ts_aot.params), jax.tree.leaves(ts_jit.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_without_a_terminal_progress_is_one_line_per_epoch(capsys):
    data = jn.data.ArrayDataset(np.ones((8, 2), np.float32), np.zeros(8, np.int32))
    jn.fit(jn.serial(jn.Dense(2)), data, optimizer=optax.sgd(0.1), epochs=3, batch_size=4)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("2/2 steps" in line and "step/s" in line and "loss" in line for line in lines)


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_rate_and_eta_leave_out_the_first_step():
    import io

    from jaxnets.train.progress import Progress

    clock = _Clock()
    out = io.StringIO()
    bar = Progress(10, stream=out, interactive=True, clock=clock)
    bar.start_epoch(1, 2, 5)
    clock.now = 30.0  # the first step compiles: 30 s
    bar.step()
    assert bar.eta() is None  # nothing known yet: the compile time is no estimate
    for _ in range(4):
        clock.now += 0.5
        bar.step()
    assert bar.rate() == pytest.approx(2.0)
    assert bar.eta() == pytest.approx(2.5)  # 5 steps left at 2 step/s, not 30 s each
    bar.end_epoch({"loss": 1.0, "epoch_time": 32.0})
    clock.now += 5.0  # the evaluation between epochs does not count either
    bar.start_epoch(2, 2, 5)
    clock.now += 0.5
    bar.step()
    assert bar.rate() == pytest.approx(2.0)
    bar.close()
    text = out.getvalue()
    assert "\r" in text and "eta 00:03" in text and text.endswith("\n")


def test_a_mid_epoch_train_state_trains_from_the_epochs_first_batch():
    data = jn.data.ArrayDataset(np.ones((8, 2), np.float32), np.zeros(8, np.int32))
    model = jn.serial(jn.Dense(2))
    first = _fit(model, data, optimizer=optax.sgd(0.1), epochs=1, batch_size=2)
    mid = first.state._replace(step=np.int32(6))  # epoch 1, batch 2 of 4
    result = _fit(model, data, optimizer=optax.sgd(0.1), epochs=1, batch_size=2, train_state=mid)
    assert int(result.state.step) == 10  # the whole epoch 2 again: 4 steps, documented
    assert len(result.history["loss"]) == 1
