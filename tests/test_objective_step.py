"""The open train step: objectives over whole batches, named parts, one step type.

Each step is compared bitwise (CPU) with a hand-written ``jax.jit(jax.grad)`` step of the
same math: a classifier, a model with an auxiliary loss, and one GAN step (the
discriminator's update, then the generator's against the updated discriminator).
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets._impl import xla_options

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 6)).astype(np.float32)
Y = RNG.integers(0, 3, 16).astype(np.int32)


def _equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _classifier():
    return jn.serial(jn.Dense(16), jn.BatchNorm(), jn.Relu(), jn.Dropout(0.2), jn.Dense(3))


def _ce(logits, labels):
    return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _reference(objective_of_params, opt):
    """A hand-written step: ``objective_of_params(params, state, key) -> (loss, state)``."""

    @jax.jit
    def step(params, state, opt_state, key, i):
        k = jax.random.fold_in(key, i)
        grads, new_state = jax.grad(lambda p: objective_of_params(p, state, k), has_aux=True)(
            params
        )
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_state, opt_state

    return step


def test_classifier_objective_equals_hand_written_step():
    model, opt = _classifier(), optax.adam(1e-2)

    def objective(params, state, batch, *, key, train):
        logits, new_state = model.apply(params, state, batch["x"], key=key, train=train)
        loss = _ce(logits, batch["y"])
        return loss, (new_state, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])})

    ts = jn.create_train_state(model, opt, X.shape, seed=1)
    step = jn.make_train_step(model, objective, opt)
    ref = _reference(
        lambda p, s, k: (lambda out: (_ce(out[0], Y), out[1]))(
            model.apply(p, s, X, key=k, train=True)
        ),
        opt,
    )
    params, state, opt_state = ts.params, ts.state, ts.opt_state
    key = ts.key
    for i in range(3):
        params, state, opt_state = ref(params, state, opt_state, key, np.int32(i))
        ts, metrics = step(ts, {"x": X, "y": Y})
    _equal(ts.params, params)
    _equal(ts.state, state)
    _equal(ts.opt_state, opt_state)
    assert sorted(metrics) == ["accuracy", "loss"] and step.uses_key


def test_supervised_loss_is_the_same_objective():
    """The named-loss path and a hand-written objective of the same math agree bitwise."""
    model, opt = _classifier(), optax.sgd(0.1, momentum=0.9)
    named = jn.make_train_step(model, "softmax_cross_entropy", opt)
    custom = jn.make_train_step(None, jn.train.supervised(model, "softmax_cross_entropy"), opt)
    a, b = (jn.create_train_state(model, opt, X.shape) for _ in range(2))
    for _ in range(3):
        a, ma = named(a, (X, Y))
        b, mb = custom(b, (X, Y))
    _equal(a.params, b.params)
    _equal(ma, mb)


def test_auxiliary_loss_objective_equals_hand_written_step():
    trunk = jn.serial(jn.Dense(8), jn.Tanh())
    head = jn.Dense(3)
    model = jn.serial(("trunk", trunk), ("head", head))
    opt = optax.adam(1e-2)

    def losses(params, state, x, y):
        h, _ = trunk.apply(params["trunk"], state, x, key=None, train=True)
        logits, _ = head.apply(params["head"], state, h, key=None, train=True)
        aux = 0.1 * jnp.mean(h**2)  # an activity penalty on the trunk's features
        return _ce(logits, y) + aux, aux

    def objective(params, state, batch, *, key, train):
        x, y = batch
        loss, aux = losses(params, state, x, y)
        return loss, (state, {"aux": aux})

    ts = jn.create_train_state(model, opt, X.shape)
    step = jn.make_train_step(model, objective, opt)
    ref = _reference(lambda p, s, k: (losses(p, s, X, Y)[0], s), opt)
    params, state, opt_state = ts.params, ts.state, ts.opt_state
    for i in range(3):
        params, state, opt_state = ref(params, state, opt_state, ts.key, np.int32(i))
        ts, metrics = step(ts, (X, Y))
    _equal(ts.params, params)
    assert sorted(metrics) == ["aux", "loss"] and not step.uses_key
    np.testing.assert_allclose(metrics["aux"], losses(ts.params, {}, X, Y)[1], rtol=0.5)


# --------------------------------------------------------------------------- GAN


LATENT = 4
IMAGES = RNG.uniform(-1, 1, size=(8, 6)).astype(np.float32)


def _gan():
    g = jn.serial(jn.Dense(8), jn.BatchNorm(), jn.Relu(), jn.Dense(6), jn.Tanh())
    d = jn.serial(jn.Dense(8), jn.BatchNorm(), jn.Activation("leaky_relu"), jn.Dense(1))
    return g, d


def _bce(logits, target):
    return optax.losses.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)).mean()


def _gan_objectives(g, d):
    def d_loss(pd, params, state, real, key):
        z = jax.random.normal(key, (real.shape[0], LATENT))
        fake, g_state = g.apply(params["g"], state["g"], z, key=None, train=True)
        real_logits, d_state = d.apply(pd, state["d"], real, key=None, train=True)
        fake_logits, d_state = d.apply(pd, d_state, jax.lax.stop_gradient(fake), train=True)
        loss = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
        return loss, {"g": g_state, "d": d_state}

    def g_loss(pg, params, state, n, key):
        z = jax.random.normal(key, (n, LATENT))
        fake, g_state = g.apply(pg, state["g"], z, key=None, train=True)
        logits, d_state = d.apply(params["d"], state["d"], fake, key=None, train=True)
        return _bce(logits, 1.0), {"g": g_state, "d": d_state}

    def discriminator(params, state, batch, *, key, train):
        loss, new_state = d_loss(params["d"], params, state, batch, key)
        return loss, (new_state, {})

    def generator(params, state, batch, *, key, train):
        loss, new_state = g_loss(params["g"], params, state, batch.shape[0], key)
        return loss, (new_state, {"g_mean": jnp.mean(new_state["g"]["batchnorm_0"]["mean"])})

    return d_loss, g_loss, discriminator, generator


def test_gan_step_equals_hand_written_sequence():
    g, d = _gan()
    opt_d, opt_g = optax.adam(2e-4, b1=0.5), optax.adam(1e-3, b1=0.5)
    models = {"g": g, "d": d}
    optimizers = {"g": opt_g, "d": opt_d}
    ts = jn.create_train_state(models, optimizers, {"g": (8, LATENT), "d": IMAGES.shape}, seed=3)
    d_loss, g_loss, discriminator, generator = _gan_objectives(g, d)
    step = jn.make_train_step(models, [("d", discriminator), ("g", generator)], optimizers)

    def part(key, name):
        return jax.random.fold_in(key, zlib.crc32(name.encode()))

    @jax.jit
    def reference(params, state, opt_state, key, i):
        k = jax.random.fold_in(key, i)
        grads, state = jax.grad(d_loss, has_aux=True)(
            params["d"], params, state, IMAGES, part(k, "d")
        )
        updates, od = opt_d.update(grads, opt_state["d"], params["d"])
        params = {**params, "d": optax.apply_updates(params["d"], updates)}
        grads, state = jax.grad(g_loss, has_aux=True)(params["g"], params, state, 8, part(k, "g"))
        updates, og = opt_g.update(grads, opt_state["g"], params["g"])
        params = {**params, "g": optax.apply_updates(params["g"], updates)}
        return params, state, {"d": od, "g": og}

    params, state, opt_state = ts.params, ts.state, ts.opt_state
    for i in range(3):
        params, state, opt_state = reference(params, state, opt_state, ts.key, np.int32(i))
        ts, metrics = step(ts, IMAGES)
    _equal(ts.params, params)
    _equal(ts.state, state)
    _equal(ts.opt_state, opt_state)
    assert sorted(metrics) == ["d_loss", "g_loss", "g_mean", "loss"]
    np.testing.assert_allclose(metrics["loss"], metrics["d_loss"] + metrics["g_loss"], rtol=1e-6)


def test_parts_train_through_fit_with_a_callback():
    g, d = _gan()
    opt = optax.adam(1e-3)
    models, optimizers = {"g": g, "d": d}, {"g": opt, "d": opt}
    ts = jn.create_train_state(models, optimizers, {"g": (8, LATENT), "d": (8, 6)})
    *_, discriminator, generator = _gan_objectives(g, d)

    def on_images(params, state, batch, *, key, train):  # the fit batch is (images, labels)
        return discriminator(params, state, batch[0], key=key, train=train)

    def g_on_images(params, state, batch, *, key, train):
        return generator(params, state, batch[0], key=key, train=train)

    data = jn.data.ArrayDataset(np.tile(IMAGES, (4, 1)), np.zeros(32, np.int32))
    result = jn.fit(
        models,
        data,
        optimizer=optimizers,
        loss=[("d", on_images), ("g", g_on_images)],
        train_state=ts,
        epochs=2,
        batch_size=8,
        progress=False,
    )
    assert int(result.state.step) == 8
    assert {"loss", "d_loss", "g_loss"} <= set(result.history)
    with pytest.raises(ValueError, match="train_state="):
        jn.fit(models, data, optimizer=optimizers, loss=[("d", on_images)], progress=False)


def test_part_errors_are_clear():
    g, d = _gan()
    opt = optax.adam(1e-3)
    *_, discriminator, _ = _gan_objectives(g, d)
    with pytest.raises(TypeError, match="dict of optax optimizers"):
        jn.make_train_step({"d": d}, [("d", discriminator)], opt)
    with pytest.raises(ValueError, match="part 'x' has no optimizer"):
        jn.make_train_step(None, [("x", discriminator)], {"d": opt})
    with pytest.raises(TypeError, match=r"\(part name, objective\) pair"):
        jn.make_train_step(None, [discriminator], {"d": opt})
    with pytest.raises(TypeError, match="optax GradientTransformation"):
        jn.make_train_step(None, [("d", discriminator)], {"d": "adam"})
    with pytest.raises(ValueError, match="same parts"):
        jn.create_train_state({"g": g, "d": d}, {"g": opt}, {"g": (2, 4), "d": (2, 6)})
    single = jn.create_train_state(d, opt, (8, 6))
    step = jn.make_train_step(None, [("d", discriminator)], {"d": opt})
    with pytest.raises(ValueError, match="trains part 'd'"):
        step(single, IMAGES)


# --------------------------------------------------------------------------- errors


def _bad(out_fn, name="my_objective"):
    def objective(params, state, batch, *, key, train):
        return out_fn(params, state)

    objective.__name__ = name
    return objective


@pytest.mark.parametrize(
    ("out_fn", "error", "match"),
    [
        (
            lambda p, s: (jnp.ones(3), (s, {})),
            TypeError,
            r"objective 'my_objective': the loss should be a floating-point scalar, got an "
            r"array of shape \(3,\)",
        ),
        (
            lambda p, s: (jnp.ones((), jnp.int32), (s, {})),
            TypeError,
            "floating-point scalar, got an array of shape \\(\\) and dtype int32",
        ),
        (
            lambda p, s: (jnp.ones(()), ({"extra": jnp.ones(2)}, {})),
            ValueError,
            "objective 'my_objective': new_state should have the structure of state",
        ),
        (
            lambda p, s: (jnp.ones(()), (s, {"acc": jnp.ones(4)})),
            TypeError,
            r"metric 'acc' should be a scalar under a string name, got an array of shape \(4,\)",
        ),
        (
            lambda p, s: (jnp.ones(()), (s, [1.0])),
            TypeError,
            "metrics should be a dict of scalars, got a list",
        ),
        (lambda p, s: jnp.ones(()), TypeError, r"should return \(loss, \(new_state, metrics\)\)"),
    ],
)
def test_a_bad_objective_output_is_named(out_fn, error, match):
    model, opt = jn.Dense(2), optax.sgd(0.1)
    ts = jn.create_train_state(model, opt, (4, 3))
    step = jn.make_train_step(model, _bad(out_fn), opt)
    with pytest.raises(error, match=match):
        step(ts, np.ones((4, 3), np.float32))


def test_argument_errors_name_what_came():
    model = jn.Dense(2)
    with pytest.raises(TypeError, match="optimizer must be an optax GradientTransformation"):
        jn.make_train_step(model, "softmax_cross_entropy", "adam")
    with pytest.raises(TypeError, match="needs model= to be a jaxnets Layer"):
        jn.make_train_step(None, "softmax_cross_entropy", optax.sgd(0.1))
    objective = jn.train.supervised(model)
    with pytest.raises(ValueError, match="metrics= are for a per-example loss"):
        jn.make_train_step(model, objective, optax.sgd(0.1), metrics={"a": jn.losses.correct})
    ts = jn.create_train_state(model, optax.sgd(0.1), (4, 3))
    step = jn.make_train_step(model, "softmax_cross_entropy", optax.sgd(0.1))
    with pytest.raises(TypeError, match=r"expected a batch \(inputs, labels\), got dict"):
        step(ts, {"x": np.ones((4, 3), np.float32)})


# --------------------------------------------------------------------------- batches and fit


def test_batches_of_any_pytree():
    """An objective over ``((x, lengths), labels)``: a padded sequence classifier."""
    rnn, head = jn.RNN(jn.GRU(8)), jn.Dense(2)
    model = jn.serial(("rnn", rnn), ("head", head))  # for the shapes of the params
    opt = optax.adam(1e-2)

    def objective(params, state, batch, *, key, train):
        (x, lengths), labels = batch
        outputs, _ = rnn.apply(params["rnn"], {}, (x, lengths), key=key, train=train)
        last = outputs[jnp.arange(x.shape[0]), lengths - 1]  # each sequence's last valid step
        logits, _ = head.apply(params["head"], {}, last, key=key, train=train)
        return _ce(logits, labels), (state, {})

    x = RNG.normal(size=(4, 5, 3)).astype(np.float32)
    lengths = np.array([5, 3, 2, 5], np.int32)
    ts = jn.create_train_state(model, opt, (jax.ShapeDtypeStruct(x.shape, x.dtype), lengths))
    step = jn.make_train_step(model, objective, opt)
    losses = []
    for _ in range(60):
        ts, m = step(ts, ((x, lengths), np.array([0, 1, 0, 1], np.int32)))
        losses.append(float(m["loss"]))
    assert losses[-1] < 0.2 * losses[0]


def test_fit_with_an_objective_evaluates_every_example_once():
    model, opt = _classifier(), optax.adam(1e-2)
    objective = jn.train.supervised(model)
    data = jn.data.ArrayDataset(X, Y)
    val = jn.data.ArrayDataset(X[:11], Y[:11])  # 11 = 4 + 4 + 3: the last batch unpadded
    result = jn.fit(
        model,
        data,
        optimizer=opt,
        loss=objective,
        val_data=val,
        epochs=2,
        batch_size=8,
        eval_batch_size=4,
        progress=False,
    )
    ts = result.state
    logits, _ = model.apply(ts.params, ts.state, X[:11], train=False)
    np.testing.assert_allclose(result.history["val_loss"][-1], _ce(logits, Y[:11]), rtol=1e-5)
    expected = float(np.mean(np.argmax(logits, -1) == Y[:11]))
    np.testing.assert_allclose(result.history["val_accuracy"][-1], expected, rtol=1e-6)


def test_fit_uses_the_optimizer_as_given_with_a_train_state():
    """Clipping and accumulation composed before the state is made: the state matches."""
    model = jn.models.mlp((8,), 3)
    opt = jn.optim.wrap(optax.adam(1e-2), clip_norm=1.0, accumulate_steps=2)
    ts = jn.create_train_state(model, opt, (8, 6))
    data = jn.data.ArrayDataset(X, Y)
    result = jn.fit(
        model, data, optimizer=opt, train_state=ts, epochs=2, batch_size=8, progress=False
    )
    assert int(result.state.step) == 4
    assert int(result.state.opt_state.gradient_step) == 2  # optax.MultiSteps: 4 batches / 2
    with pytest.raises(TypeError, match="clip_norm"):
        jn.fit(model, data, optimizer=opt, clip_norm=1.0)  # type: ignore[call-arg]


# --------------------------------------------------------------------------- one step type


def _spy_jit(monkeypatch):
    seen = []
    real_jit = jax.jit

    def spy(fn, **kwargs):
        seen.append((kwargs.get("compiler_options"), "in_shardings" in kwargs))
        return real_jit(fn, **kwargs)

    monkeypatch.setattr(jax, "jit", spy)
    return seen


def test_compiler_options_are_honoured_with_a_mesh(monkeypatch):
    seen = _spy_jit(monkeypatch)
    model, opt = jn.models.mlp((8,), 3), optax.adam(1e-2)
    options = {"xla_cpu_enable_fast_math": False}
    mesh = jn.distributed.make_mesh()
    for placement in (None, mesh, jn.distributed.fully_sharded(mesh)):
        seen.clear()
        step = jn.make_train_step(
            model, "softmax_cross_entropy", opt, mesh=placement, compiler_options=options
        )
        ts, _ = step(jn.create_train_state(model, opt, (8, 6)), (X[:8], Y[:8]))
        ev = jn.make_eval_step(
            model, "softmax_cross_entropy", mesh=placement, compiler_options=options
        )
        ev(ts, (X[:8], Y[:8], np.ones(8, np.float32)))
        sharded = placement is not None
        assert seen == [(options, sharded), (options, sharded)], (placement, seen)
        assert step.compiler_options == options and ev.compiler_options == options
    assert isinstance(step, jn.train.TrainStep)


def test_mesh_step_equals_the_plain_step():
    model, opt = _classifier(), optax.adam(1e-2)
    ts_a, ts_b = (jn.create_train_state(model, opt, X.shape) for _ in range(2))
    plain = jn.make_train_step(model, "softmax_cross_entropy", opt)
    placed = jn.make_train_step(
        model, "softmax_cross_entropy", opt, mesh=jn.distributed.make_mesh()
    )
    for _ in range(3):
        ts_a, ma = plain(ts_a, (X, Y))
        ts_b, mb = placed(ts_b, (X, Y))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), ts_a.params, ts_b.params)
    leaf = jax.tree.leaves(ts_b.params)[0]
    assert isinstance(leaf.sharding, jax.sharding.NamedSharding)
    compiled = placed.lower(ts_b, (X, Y)).compile()
    ts_c, _ = compiled(ts_b, (X, Y))
    assert int(ts_c.step) == 4


@pytest.mark.skipif(
    jax.default_backend() != "cpu" or xla_options.usable_cores() < 2, reason="needs 2 CPU cores"
)
def test_the_option_rule_reads_the_objectives_with_a_mesh():
    model = jn.serial(jn.Conv(4, 3), jn.Relu(), jn.Flatten(), jn.Dense(2))
    opt = optax.rmsprop(1e-3)  # rsqrt in the optimizer is no normalisation
    x = np.ones((2, 6, 6, 1), np.float32)
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, mesh=jn.distributed.make_mesh())
    step(jn.create_train_state(model, opt, x.shape), (x, np.zeros(2, np.int32)))
    wanted = xla_options.CONVOLUTIONS_ON_EIGEN
    assert step.compiler_options == (wanted if xla_options.understood(wanted) else {})
