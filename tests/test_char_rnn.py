"""Character language model: text utilities, TBPTT through the stateful state, sampling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn


def test_stdlib_corpus_is_deterministic_and_split_holds_out_the_tail():
    a = jn.data.stdlib_corpus(5_000)
    assert a == jn.data.stdlib_corpus(5_000) and len(a) == 5_000
    train, val = jn.data.split_text(a, 0.2)
    assert train + val == a and len(val) == 1_000


def test_vocab_round_trip_and_unknown_characters():
    vocab = jn.data.CharVocab.from_text("banana")
    assert vocab.chars == "\ufffdabn" and len(vocab) == 4
    assert vocab.decode(vocab.encode("nab")) == "nab"
    assert vocab.encode("bz").tolist() == [2, 0]
    with pytest.raises(IndexError):
        vocab.decode([4])


def test_tbptt_windows_are_contiguous_streams():
    ids = np.arange(2 * 3 * 4 + 5)
    w = jn.data.tbptt_windows(ids, batch_size=2, seq_len=4)
    per_stream = (len(ids) - 1) // 2
    assert w.inputs.shape == (3, 2, 4)
    np.testing.assert_array_equal(w.targets, w.inputs + 1)
    for b in range(2):  # window s + 1 continues window s in every row
        stream = np.concatenate([w.inputs[s, b] for s in range(3)])
        np.testing.assert_array_equal(stream, np.arange(12) + b * per_stream)
    with pytest.raises(ValueError, match="too few"):
        jn.data.tbptt_windows(np.arange(5), 2, 4)


def test_bigram_is_the_entropy_of_a_known_chain():
    rng = np.random.default_rng(0)
    # next character uniform over the two that follow the current one: 1 bit per character
    ids = [0]
    for _ in range(20_000):
        ids.append((ids[-1] + 1 + rng.integers(2)) % 4)
    ids = np.array(ids)
    bpc = jn.data.bigram_bits_per_char(ids[:10_000], 4, ids[10_000:-1], ids[10_001:], 0.1)
    assert abs(bpc - 1.0) < 0.01


def test_stateful_train_step_threads_the_carry_between_windows():
    """make_train_step carries the LSTM state: two windows end where one long one does."""
    model = jn.models.char_rnn(7, embed_dim=4, hidden=(5, 6))
    opt = optax.sgd(0.0)
    ts = jn.create_train_state(model, opt, jax.ShapeDtypeStruct((2, 3), jnp.int32))
    params = jax.tree.map(jnp.copy, ts.params)  # the step donates ts
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, metrics={})
    x = jax.random.randint(jax.random.key(1), (2, 6), 0, 7)
    ts, _ = step(ts, (x[:, :3], x[:, :3]))
    ts, _ = step(ts, (x[:, 3:], x[:, 3:]))
    embedded, _ = jn.Embedding(7, 4).apply(params["embed"], {}, x, train=False)
    stacked = jn.StackedRNN([jn.LSTM(5), jn.LSTM(6)], return_carry=True)
    (_, final), _ = stacked.apply(params["lstm"], {}, embedded, train=False)
    for layer in ("layer_0", "layer_1"):
        for part in ("c", "h"):
            np.testing.assert_allclose(
                ts.state["lstm"]["carry"][layer][part], final[layer][part], atol=1e-5
            )
    _, _, state = jn.models.char_rnn(7, embed_dim=4, hidden=(5,), stateful=False).init(
        jax.random.key(0), jax.ShapeDtypeStruct((2, 3), jnp.int32)
    )
    assert state == {}


def test_training_lowers_held_out_bpc_and_sampling_works():
    text = "the cat sat on the mat. " * 40
    res = jn.models.train_char_lm(
        text[:800],
        text[800:],
        embed_dim=8,
        hidden=(32,),
        batch_size=4,
        seq_len=16,
        learning_rate=1e-2,
        max_steps=60,
        eval_every=30,
        log=None,
    )
    assert res.steps == 60 and [c[0] for c in res.curve] == [30, 60]
    assert res.curve[-1][3] < 2.0 < res.curve[0][3] + 2.0  # well below log2(13) = 3.7
    kwargs = dict(embed_dim=8, hidden=(32,), key=jax.random.key(0))
    greedy = jn.models.sample(res.params, res.vocab, "the c", 10, temperature=0.0, **kwargs)
    assert greedy.startswith("at")
    hot = jn.models.sample(res.params, res.vocab, "the", 50, temperature=5.0, **kwargs)
    assert len(hot) == 50 and set(hot) <= set(res.vocab.chars)
    with pytest.raises(ValueError, match="prompt"):
        jn.models.sample(res.params, res.vocab, "", 5, **kwargs)


def test_evaluate_bpc_compiles_once_per_model():
    text = "abcabcabd" * 40
    vocab = jn.data.CharVocab.from_text(text)
    windows = jn.data.tbptt_windows(vocab.encode(text), 2, 8)
    model = jn.models.char_rnn(len(vocab), embed_dim=4, hidden=(8,))
    traces = []

    def apply(params, state, x, *, key=None, train):
        traces.append(1)
        return model.apply(params, state, x, key=key, train=train)

    counted = model._replace(apply=apply)
    _, params, _ = model.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 8), jnp.int32))
    first = jn.models.evaluate_bpc(counted, params, windows)
    n = len(traces)
    assert jn.models.evaluate_bpc(counted, params, windows) == pytest.approx(first)
    assert n >= 1 and len(traces) == n  # the second evaluation traced nothing
