"""Recurrent layers: equality with flax's cells, the scan against a Python loop, masking,
bidirectional reading within each sequence's own length, carries, and bad input."""

from __future__ import annotations

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn

H, F, B, T = 5, 3, 3, 6


def _normal(seed, shape, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape)


def _dense(params, name):
    p = params[name]
    return p["kernel"], p.get("bias")


def _lstm_from_flax(fp):
    k = {g: _dense(fp, g)[0] for g in ("ii", "if", "ig", "io")}
    rk = {g: _dense(fp, g) for g in ("hi", "hf", "hg", "ho")}
    return {
        "kernel": jnp.concatenate([k["ii"], k["if"], k["ig"], k["io"]], axis=1),
        "recurrent_kernel": jnp.concatenate([rk[g][0] for g in ("hi", "hf", "hg", "ho")], 1),
        "bias": jnp.concatenate([rk[g][1] for g in ("hi", "hf", "hg", "ho")]),
    }


def _gru_from_flax(fp):
    return {
        "kernel": jnp.concatenate([fp[g]["kernel"] for g in ("iz", "ir", "in")], axis=1),
        "bias": jnp.concatenate([fp[g]["bias"] for g in ("iz", "ir", "in")]),
        "recurrent_kernel": jnp.concatenate([fp[g]["kernel"] for g in ("hz", "hr", "hn")], 1),
        "recurrent_bias": jnp.concatenate([jnp.zeros(2 * H), fp["hn"]["bias"]]),
    }


def _simple_from_flax(fp):
    return {
        "kernel": fp["i"]["kernel"],
        "bias": fp["i"]["bias"],
        "recurrent_kernel": fp["h"]["kernel"],
    }


def _randomise(tree, seed):
    """Random values everywhere (flax's zero biases would hide a bias mapping mistake)."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef.unflatten([_normal(seed + i, a.shape, 0.5) for i, a in enumerate(leaves)])


FLAX_CELLS = {
    "lstm": (fnn.LSTMCell, jn.LSTM, _lstm_from_flax),
    "gru": (fnn.GRUCell, jn.GRU, _gru_from_flax),
    "simple": (fnn.SimpleCell, jn.SimpleRNN, _simple_from_flax),
}


def _flax_carry(name, ours):
    return (ours["c"], ours["h"]) if name == "lstm" else ours["h"]


@pytest.mark.parametrize("fused", [False, True], ids=["blocks", "fused"])
@pytest.mark.parametrize("name", sorted(FLAX_CELLS))
def test_cell_equals_flax_cell(name, fused):
    flax_cls, ours_cls, convert = FLAX_CELLS[name]
    fcell = flax_cls(features=H)
    x = _normal(1, (B, F))
    fcarry0 = fcell.initialize_carry(jax.random.key(0), x.shape)
    variables = _randomise(fcell.init(jax.random.key(2), fcarry0, x), 10)
    cell = ours_cls(H, fused=fused)
    params = convert(variables["params"])
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(
        jnp.shape, cell.init(jax.random.key(0), F)
    )
    carry = jax.tree.map(lambda a: _normal(3, a.shape), cell.initial_carry((B,)))
    (f_carry, f_y) = fcell.apply(variables, _flax_carry(name, carry), x)
    new_carry, y = cell(params, carry, x)
    np.testing.assert_allclose(y, f_y, atol=1e-5, rtol=1e-5)
    for a, b in zip(
        jax.tree.leaves(_flax_carry(name, new_carry)), jax.tree.leaves(f_carry), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_lstm_layer_equals_flax_rnn_over_a_sequence():
    fcell = fnn.LSTMCell(features=H)
    x = _normal(1, (B, T, F))
    module = fnn.RNN(fcell)
    variables = _randomise(module.init(jax.random.key(0), x), 20)
    f_y = module.apply(variables, x)
    params = _lstm_from_flax(variables["params"]["cell"])
    y, _ = jn.RNN(jn.LSTM(H)).apply(params, {}, x, train=False)
    np.testing.assert_allclose(y, f_y, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fused", [False, True], ids=["blocks", "fused"])
@pytest.mark.parametrize("make", [jn.LSTM, jn.GRU, jn.SimpleRNN], ids=["lstm", "gru", "simple"])
def test_scan_equals_python_loop(make, fused):
    cell = make(H, fused=fused)
    params = _randomise(cell.init(jax.random.key(0), F), 30)
    x = _normal(1, (B, T, F))
    carry = cell.initial_carry((B,))
    ys = []
    for t in range(T):
        carry, y = cell(params, carry, x[:, t])
        ys.append(y)
    (out, final), _ = jn.RNN(cell, return_carry=True).apply(params, {}, x, train=False)
    np.testing.assert_allclose(out, jnp.stack(ys, axis=1), atol=1e-5, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(carry), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    # reverse: the same loop backwards, outputs kept at their positions
    carry = cell.initial_carry((B,))
    rev = [None] * T
    for t in reversed(range(T)):
        carry, rev[t] = cell(params, carry, x[:, t])
    out_r, _ = jn.RNN(cell, reverse=True).apply(params, {}, x, train=False)
    np.testing.assert_allclose(out_r, jnp.stack(rev, axis=1), atol=1e-5, rtol=1e-5)


def _scan_loss(cell, params, x, carry0, reverse, sequences):
    res = jn.layers.scan_cell(
        cell, params, x, initial_carry=carry0, reverse=reverse, sequences=sequences
    )
    out = jnp.sum(jnp.sin(3.0 * res.outputs)) if sequences else 0.0
    final = jnp.sum(res.carry["c"] ** 2) + jnp.sum(jnp.cos(res.carry["h"]))
    return out + jnp.sum(res.last * jnp.arange(res.last.shape[-1])[None]) + final, res


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU formulation")
@pytest.mark.parametrize("sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_lstm_cpu_sequence_equals_plain_scan_values_and_gradients(reverse, sequences):
    """The CPU path (whole sequence, hand-written backward) against both scanned forms."""
    params = _randomise(jn.LSTM(H).init(jax.random.key(0), F), 70)
    x = _normal(1, (B, T, F))
    carry0 = {"c": _normal(2, (B, H)), "h": _normal(3, (B, H))}
    grad = jax.jit(
        jax.value_and_grad(_scan_loss, argnums=(1, 2, 3), has_aux=True),
        static_argnums=(0, 4, 5),
    )
    (loss, res), grads = grad(jn.LSTM(H), params, x, carry0, reverse, sequences)
    for fused in (False, True):
        (ref_loss, ref), ref_grads = grad(
            jn.LSTM(H, fused=fused), params, x, carry0, reverse, sequences
        )
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
        for a, b in zip(
            jax.tree.leaves((res, grads)), jax.tree.leaves((ref, ref_grads)), strict=True
        ):
            np.testing.assert_allclose(a, b, atol=2e-5, rtol=2e-5)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU formulation")
@pytest.mark.parametrize("time", [1, 2, 19], ids=["T1", "T2", "T19"])
def test_lstm_cpu_sequence_in_chunks_equals_plain_scan(time):
    """The CPU path runs its loops in chunks (uneven for 19 steps): same values and
    gradients, including the initial carry's."""
    from jaxnets._impl import lstm as recurrent

    chunks = recurrent._chunks(time)
    starts, stops = [a for a, _ in chunks], [b for _, b in chunks]
    assert starts[0] == 0 and stops[:-1] == starts[1:] and stops[-1] == time
    assert all(a < b for a, b in chunks)
    assert len(chunks) == min(recurrent.CHUNKS, time)
    params = _randomise(jn.LSTM(H).init(jax.random.key(0), F), 71)
    x = _normal(4, (B, time, F))
    carry0 = {"c": _normal(5, (B, H)), "h": _normal(6, (B, H))}
    grad = jax.jit(
        jax.value_and_grad(_scan_loss, argnums=(1, 2, 3), has_aux=True),
        static_argnums=(0, 4, 5),
    )
    (loss, res), grads = grad(jn.LSTM(H), params, x, carry0, False, True)
    (ref_loss, ref), ref_grads = grad(jn.LSTM(H, fused=False), params, x, carry0, False, True)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves((res, grads)), jax.tree.leaves((ref, ref_grads)), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=2e-5)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU formulation")
def test_lstm_cpu_sequence_is_used_only_when_it_applies():
    from jaxnets._impl import record_choices

    cell = jn.LSTM(H)
    params = cell.init(jax.random.key(0), F)

    def chosen(layer, *extra):  # the lengths are concrete (closed over), the sequence traced
        def run(x):
            return layer.apply(params, {}, (x, *extra) if extra else x, train=False)[0]

        with record_choices() as choices:
            jax.make_jaxpr(run)(jnp.ones((B, T, F)))
        return [c.impl for c in choices if c.op == "lstm_sequence"]

    layer = jn.RNN(cell)
    assert chosen(layer) == ["chunked_forward"]  # traced without a derivative: inference
    assert chosen(jn.RNN(jn.LSTM(H, impl="reference"))) == ["reference"]  # explicit is kept
    assert chosen(layer, jnp.array([T, 2, 0])) in ([], ["reference"])  # padding: the scan
    assert chosen(layer, jnp.full((B,), T)) == ["chunked_forward"]  # no step is padding


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU formulation")
def test_lstm_cpu_sequence_second_order_gradients_equal_the_scan():
    """Reverse-over-reverse goes through the hand-written backward pass."""
    x = _normal(1, (B, T, F))
    params = _randomise(jn.LSTM(H).init(jax.random.key(0), F), 90)

    def hessian_part(cell):
        def f(p):
            return jnp.sum(jnp.sin(jn.RNN(cell).apply(p, {}, x, train=False)[0]))

        return jax.grad(lambda p: jnp.sum(jax.grad(f)(p)["recurrent_kernel"] ** 2))(params)

    ours, plain = hessian_part(jn.LSTM(H)), hessian_part(jn.LSTM(H, fused=False))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def test_lstm_forward_mode_through_the_scanned_forms():
    """jax.jvp does not go through the CPU path's custom_vjp; an explicit ``fused`` gives
    the scan, which supports it (and agrees with reverse mode)."""
    cell = jn.LSTM(H, fused=False)
    params = _randomise(cell.init(jax.random.key(0), F), 80)
    x, v = _normal(1, (B, T, F)), _normal(2, (B, T, F))

    def f(x):
        return jnp.sum(jnp.sin(jn.RNN(cell).apply(params, {}, x, train=False)[0]))

    tangent = jax.jvp(f, (x,), (v,))[1]
    np.testing.assert_allclose(tangent, jnp.vdot(jax.grad(f)(x), v), rtol=1e-4)


def test_lstm_forget_bias_starts_at_one():
    bias = jn.LSTM(4).init(jax.random.key(0), 3)["bias"]
    np.testing.assert_array_equal(bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    assert float(jn.LSTM(4, forget_bias=0.0).init(jax.random.key(0), 3)["bias"].sum()) == 0.0


# --------------------------------------------------------------------------- masking

LENGTHS = [6, 3, 0]


def _padded_batch(seed=1):
    """Sequences of lengths 6, 3 and 0, padded with large garbage that must not leak in."""
    x = np.array(_normal(seed, (B, T, F)))
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 1e3
    return jnp.asarray(x)


@pytest.mark.parametrize("make", [jn.LSTM, jn.GRU], ids=["lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_padded_steps_change_neither_carry_nor_outputs(make, reverse):
    cell = make(H)
    layer = jn.RNN(cell, return_carry=True, reverse=reverse)
    params = _randomise(cell.init(jax.random.key(0), F), 40)
    x = _padded_batch()
    (y, carry), _ = layer.apply(params, {}, (x, jnp.array(LENGTHS)), train=False)
    last_layer = jn.RNN(cell, return_sequences=False, reverse=reverse)
    last, _ = last_layer.apply(params, {}, (x, jnp.array(LENGTHS)), train=False)
    for b, n in enumerate(LENGTHS):
        np.testing.assert_array_equal(y[b, n:], 0.0)
        if n == 0:
            np.testing.assert_array_equal(last[b], 0.0)
            for leaf in jax.tree.leaves(carry):
                np.testing.assert_array_equal(leaf[b], 0.0)
            continue
        (alone, alone_carry), _ = layer.apply(params, {}, x[b : b + 1, :n], train=False)
        np.testing.assert_allclose(y[b, :n], alone[0], atol=1e-5, rtol=1e-5)
        for a, c in zip(jax.tree.leaves(carry), jax.tree.leaves(alone_carry), strict=True):
            np.testing.assert_allclose(a[b], c[0], atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(last[b], alone[0, 0 if reverse else n - 1], atol=1e-5)


def test_mask_with_holes_skips_exactly_those_steps():
    cell = jn.GRU(H)
    params = _randomise(cell.init(jax.random.key(0), F), 50)
    x = _normal(1, (1, T, F))
    mask = jnp.array([[1, 0, 1, 1, 0, 1]], bool)
    (y, carry), _ = jn.RNN(cell, return_carry=True).apply(params, {}, (x, mask), train=False)
    kept = x[:, np.asarray(mask[0])]
    (y_kept, carry_kept), _ = jn.RNN(cell, return_carry=True).apply(params, {}, kept, train=False)
    np.testing.assert_allclose(y[:, np.asarray(mask[0])], y_kept, atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(y[:, ~np.asarray(mask[0])], 0.0)
    np.testing.assert_allclose(carry["h"], carry_kept["h"], atol=1e-5, rtol=1e-5)
    # a mask of ones and the matching lengths give the same result as lengths
    lengths = jnp.array([6, 3, 0])
    as_mask = (jnp.arange(T)[None, :] < lengths[:, None]).astype(jnp.float32)
    xb = _padded_batch()
    by_len, _ = jn.RNN(cell).apply(params, {}, (xb, lengths), train=False)
    by_mask, _ = jn.RNN(cell).apply(params, {}, (xb, as_mask), train=False)
    np.testing.assert_array_equal(by_len, by_mask)


def test_bidirectional_reverses_within_each_sequence_own_length():
    layer = jn.Bidirectional(jn.LSTM(H), jn.GRU(H))
    x = _padded_batch()
    _, params, _ = layer.init(jax.random.key(0), (B, T, F))
    params = _randomise(params, 60)
    run = jax.jit(lambda p, x, n: layer.apply(p, {}, (x, n), train=False)[0])
    y = run(params, x, jnp.array(LENGTHS))
    assert y.shape == (B, T, 2 * H)
    for b, n in enumerate(LENGTHS):
        np.testing.assert_array_equal(y[b, n:], 0.0)
        if n:
            alone, _ = layer.apply(params, {}, x[b : b + 1, :n], train=False)
            np.testing.assert_allclose(y[b, :n], alone[0], atol=1e-5, rtol=1e-5)
    # the backward half at step 0 has read the whole valid sequence backwards, by hand:
    cell, bparams = jn.GRU(H), params["backward"]
    carry = cell.initial_carry((1,))
    for t in reversed(range(LENGTHS[1])):
        carry, out = cell(bparams, carry, x[1:2, t])
    np.testing.assert_allclose(y[1, 0, H:], out[0], atol=1e-5, rtol=1e-5)
    # return_sequences=False merges forward-at-last-valid with backward-at-0
    last_layer = jn.Bidirectional(jn.LSTM(H), jn.GRU(H), return_sequences=False)
    last, _ = last_layer.apply(params, {}, (x, jnp.array(LENGTHS)), train=False)
    np.testing.assert_allclose(last[1], jnp.concatenate([y[1, 2, :H], y[1, 0, H:]]), atol=1e-6)


# --------------------------------------------------------------------------- carries


def test_initial_carry_continues_a_sequence():
    cell = jn.LSTM(H)
    layer = jn.RNN(cell, return_carry=True)
    params = cell.init(jax.random.key(0), F)
    x = _normal(1, (B, T, F))
    full = jnp.full((B,), T // 2)
    (y_all, c_all), _ = layer.apply(params, {}, x, train=False)
    (y1, c1), _ = layer.apply(params, {}, x[:, : T // 2], train=False)
    (y2, c2), _ = layer.apply(params, {}, (x[:, T // 2 :], full, c1), train=False)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), y_all, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(c2["c"], c_all["c"], atol=1e-5, rtol=1e-5)


def test_stateful_layer_carries_state_between_calls():
    layer = jn.RNN(jn.GRU(H), stateful=True)
    x = _normal(1, (B, T, F))
    _, params, state = layer.init(jax.random.key(0), (B, T // 2, F))
    y1, state = layer.apply(params, state, x[:, : T // 2], train=True)
    y2, state = layer.apply(params, state, x[:, T // 2 :], train=True)
    y_all, _ = jn.RNN(jn.GRU(H)).apply(params, {}, x, train=False)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), y_all, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(state["carry"]["h"], y_all[:, -1], atol=1e-5, rtol=1e-5)
    with pytest.raises(jn.LayerError, match="initialised for batch size 3 but got 1"):
        layer.apply(params, state, x[:1], train=False)


def test_stacked_equals_serial_of_rnn_layers():
    cells = [jn.LSTM(4), jn.GRU(H)]
    stacked = jn.StackedRNN(cells, return_carry=True)
    _, params, _ = stacked.init(jax.random.key(0), (B, T, F))
    x = _normal(1, (B, T, F))
    (y, carry), _ = stacked.apply(params, {}, x, train=False)
    h, _ = jn.RNN(cells[0]).apply(params["layer_0"], {}, x, train=False)
    h, _ = jn.RNN(cells[1]).apply(params["layer_1"], {}, h, train=False)
    np.testing.assert_allclose(y, h, atol=1e-5, rtol=1e-5)
    assert sorted(carry) == ["layer_0", "layer_1"] and sorted(carry["layer_0"]) == ["c", "h"]


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    layer = jn.RNN(jn.LSTM(H))
    _, params, _ = layer.init(jax.random.key(0), (B, T, F))
    x = _normal(1, (B, T, F))
    with pytest.raises(jn.LayerError, match=r"\(batch, time, features\), got shape \(3, 6\)"):
        layer.init(jax.random.key(0), (B, T))
    with pytest.raises(jn.LayerError, match=r"got shape \(6, 3\)"):
        layer.apply(params, {}, x[0], train=False)
    with pytest.raises(jn.LayerTypeError, match="floating-point sequence"):
        layer.apply(params, {}, jnp.ones((B, T, F), jnp.int32), train=False)
    with pytest.raises(jn.LayerError, match=r"lengths must lie in \[0, 6\].*max 9"):
        layer.apply(params, {}, (x, jnp.array([6, 9, 1])), train=False)
    with pytest.raises(jn.LayerError, match=r"lengths must lie in \[0, 6\].*min -1"):
        layer.apply(params, {}, (x, jnp.array([6, -1, 1])), train=False)
    with pytest.raises(jn.LayerError, match=r"lengths must have shape \(3,\)"):
        layer.apply(params, {}, (x, jnp.array([6, 1])), train=False)
    with pytest.raises(jn.LayerTypeError, match="lengths must be integers"):
        layer.apply(params, {}, (x, jnp.array([6.0, 1.0, 2.0])), train=False)
    with pytest.raises(jn.LayerError, match=r"mask must have shape \(3, 6\)"):
        layer.apply(params, {}, (x, jnp.ones((B, T + 1))), train=False)
    bad_carry = {"c": jnp.zeros((B, H)), "h": jnp.zeros((B, H + 1))}
    with pytest.raises(jn.LayerError, match=r"initial carry has shapes"):
        layer.apply(params, {}, (x, jnp.full((B,), T), bad_carry), train=False)
    with pytest.raises(jn.LayerError, match=r"initial carry must look like"):
        layer.apply(params, {}, (x, jnp.full((B,), T), jnp.zeros((B, H))), train=False)
    with pytest.raises(jn.LayerError, match="kernel has shape"):
        layer.apply(params, {}, x[..., :2], train=False)


def test_traced_lengths_out_of_range_act_as_clipped():
    layer = jn.RNN(jn.GRU(H))
    _, params, _ = layer.init(jax.random.key(0), (B, T, F))
    x = _normal(1, (B, T, F))
    run = jax.jit(lambda n: layer.apply(params, {}, (x, n), train=False)[0])
    np.testing.assert_array_equal(run(jnp.array([T + 4, -2, 2])), run(jnp.array([T, 0, 2])))


def test_empty_batch_with_lengths_runs():
    layer = jn.RNN(jn.LSTM(4))
    _, params, _ = layer.init(jax.random.key(0), (2, 5, 3))
    x, lengths = jnp.ones((0, 5, 3)), jnp.zeros((0,), jnp.int32)
    y, _ = layer.apply(params, {}, (x, lengths), train=False)
    assert y.shape == (0, 5, 4)
    assert jn.layers.recurrent.valid_steps("LSTM", np.zeros(0, np.int32), 0, 5) is None


def test_initial_carry_leaf_without_shape_is_a_layer_error():
    layer = jn.RNN(jn.GRU(4))
    _, params, _ = layer.init(jax.random.key(0), (2, 5, 3))
    with pytest.raises(jn.LayerError, match=r"initial carry has shapes \{'h': \(\)\}, expected"):
        layer.apply(params, {}, (jnp.ones((2, 5, 3)), None, {"h": 0.0}), train=False)


def test_numpy_integers_are_accepted_where_ints_are():
    cell = jn.LSTM(np.int64(4))
    layer = jn.RNN(cell, unroll=np.int32(2))
    spec, _, _ = layer.init(jax.random.key(0), (2, 5, 3))
    assert spec.shape == (2, 5, 4) and isinstance(cell.features, int)
    assert jn.StackedRNN(jn.GRU(h) for h in (3, 2)).init(jax.random.key(0), (1, 4, 2))[0].shape == (
        1,
        4,
        2,
    )
