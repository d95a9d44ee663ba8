"""TransformerBlock against PyTorch's, repeated stacks, the key/value cache, sampling, the
Transformer language model and the vision Transformer."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn

IDS = jnp.int32


def _randomise(params, seed=1, scale=0.3):
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        tree,
        [
            a + scale * jax.random.normal(k, a.shape, a.dtype)
            for k, a in zip(keys, leaves, strict=True)
        ],
    )


@pytest.mark.parametrize("causal", [False, True])
def test_block_equals_torch_transformer_encoder_layer(causal):
    torch = pytest.importorskip("torch", reason="the PyTorch comparison needs torch")
    d, heads, mlp_dim, t = 8, 2, 16, 6
    block = jn.TransformerBlock(heads, mlp_dim, causal=causal)
    _, params, _ = block.init(jax.random.key(0), (2, t, d))
    params = _randomise(params)
    x = np.asarray(jax.random.normal(jax.random.key(5), (2, t, d)))
    layer = torch.nn.TransformerEncoderLayer(
        d, heads, mlp_dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )

    def tensor(a):
        return torch.tensor(np.asarray(a, np.float32))

    def flat_in(name):
        return np.asarray(params["attention"][name]["kernel"]).reshape(d, d).T

    with torch.no_grad():
        a = layer.self_attn
        a.in_proj_weight.copy_(
            tensor(np.concatenate([flat_in(n) for n in ("query", "key", "value")]))
        )
        a.in_proj_bias.copy_(
            tensor(
                np.concatenate(
                    [np.ravel(params["attention"][n]["bias"]) for n in ("query", "key", "value")]
                )
            )
        )
        a.out_proj.weight.copy_(
            tensor(np.asarray(params["attention"]["output"]["kernel"]).reshape(d, d).T)
        )
        a.out_proj.bias.copy_(tensor(params["attention"]["output"]["bias"]))
        for ours, theirs in (("mlp_in", layer.linear1), ("mlp_out", layer.linear2)):
            theirs.weight.copy_(tensor(np.asarray(params[ours]["kernel"]).T))
            theirs.bias.copy_(tensor(params[ours]["bias"]))
        for ours, theirs in (("attention_norm", layer.norm1), ("mlp_norm", layer.norm2)):
            theirs.weight.copy_(tensor(params[ours]["scale"]))
            theirs.bias.copy_(tensor(params[ours]["bias"]))
        mask = torch.nn.Transformer.generate_square_subsequent_mask(t) if causal else None
        expected = layer(torch.tensor(x), src_mask=mask, is_causal=causal).numpy()
    y, _ = block.apply(params, {}, jnp.asarray(x), train=False)
    np.testing.assert_allclose(np.asarray(y), expected, atol=1e-5, rtol=1e-5)


def test_repeat_stack_equals_the_unrolled_stack():
    block = jn.TransformerBlock(2, 16, mlp="swiglu", causal=True)
    stack = jn.repeat(block, 3)
    x = jax.random.normal(jax.random.key(1), (2, 5, 8))
    _, params, state = stack.init(jax.random.key(0), x.shape)
    y, _ = stack.apply(params, state, x, train=False)
    h = x
    for i in range(3):
        h, _ = block.apply(jax.tree.map(lambda a, i=i: a[i], params), {}, h, train=False)
    np.testing.assert_allclose(np.asarray(y), np.asarray(h), atol=1e-5, rtol=1e-5)


def test_decoder_block_attends_to_the_context_and_passes_it_on():
    block = jn.TransformerBlock(2, 16, cross=True, causal=True)
    x, ctx = jnp.ones((2, 4, 8)), jax.random.normal(jax.random.key(2), (2, 3, 8))
    _, params, _ = block.init(jax.random.key(0), (x.shape, ctx.shape))
    (y, passed), _ = block.apply(params, {}, (x, ctx), train=False)
    assert passed is ctx
    (y2, _), _ = block.apply(params, {}, (x, ctx.at[:, 2].set(5.0)), train=False)
    assert not np.allclose(np.asarray(y), np.asarray(y2))
    lengths = jnp.array([2, 2])
    (a, _, _), _ = block.apply(params, {}, (x, ctx, lengths), train=False)
    (b, _, _), _ = block.apply(params, {}, (x, ctx.at[:, 2].set(5.0), lengths), train=False)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
def test_cache_gives_the_logits_of_recomputation(positions):
    kwargs = {"d_model": 16, "heads": 4, "layers": 2, "max_len": 10, "positions": positions}
    if positions == "rotary":
        kwargs["num_kv_heads"] = 2
    full = jn.models.transformer_lm(11, **kwargs)
    decoding = jn.models.transformer_lm(11, decode=True, **kwargs)
    ids = jax.random.randint(jax.random.key(3), (2, 9), 0, 11)
    _, params, _ = full.init(jax.random.key(0), jax.ShapeDtypeStruct(ids.shape, IDS))
    params = _randomise(params, scale=0.1)
    expected, _ = jax.jit(lambda p, x: full.apply(p, {}, x, train=False))(params, ids)
    _, dparams, state = decoding.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 1), IDS))
    assert jax.tree.structure(dparams) == jax.tree.structure(params)
    step = jax.jit(lambda p, s, x: decoding.apply(p, s, x, train=False))
    logits, state = step(params, state, ids[:, :4])  # a prompt of 4
    steps = [logits]
    for t in range(4, 9):
        logits, state = step(params, state, ids[:, t : t + 1])
        steps.append(logits)
    got = jnp.concatenate(steps, axis=1)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5, rtol=1e-5)


def test_sampling_respects_top_k_and_temperature_zero_is_greedy():
    kwargs = {"d_model": 16, "heads": 2, "layers": 1, "max_len": 16}
    full = jn.models.transformer_lm(9, **kwargs)
    decoding = jn.models.transformer_lm(9, decode=True, **kwargs)
    _, params, _ = full.init(jax.random.key(0), jax.ShapeDtypeStruct((1, 16), IDS))
    params = _randomise(params, scale=0.5)
    prompt = jnp.array([[1, 2, 3], [4, 5, 6]])
    for top_k in (1, 3):
        drawn = jn.models.generate(
            decoding, params, prompt, 8, top_k=top_k, temperature=2.0, key=jax.random.key(4)
        )
        seq = jnp.concatenate([prompt, drawn], axis=1)
        logits, _ = jax.jit(lambda p, x: full.apply(p, {}, x, train=False))(params, seq)
        before = logits[:, 2:-1]  # the logits each drawn token was drawn from
        rank = jnp.sum(before > jnp.take_along_axis(before, drawn[..., None], -1), axis=-1)
        assert int(jnp.max(rank)) < top_k
    greedy = jn.models.generate(decoding, params, prompt, 8, temperature=0.0)
    top1 = jn.models.generate(decoding, params, prompt, 8, top_k=1, key=jax.random.key(9))
    np.testing.assert_array_equal(np.asarray(greedy), np.asarray(top1))
    with pytest.raises(ValueError, match="exceed the model's max_len"):
        jn.models.generate(decoding, params, prompt, 14)
    with pytest.raises(ValueError, match="decode=True"):
        jn.models.generate(full, params, prompt, 2)


def test_transformer_lm_shapes_and_parameter_count():
    v, d, layers, max_len, mlp = 13, 16, 3, 12, 64
    model = jn.models.transformer_lm(v, d, 4, layers, max_len)
    spec, params, state = model.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 12), IDS))
    assert spec.shape == (2, 12, v) and state == {}
    block = 4 * (d * d + d) + 2 * 2 * d + (d * mlp + mlp) + (mlp * d + d)
    expected = v * d + max_len * d + layers * block + 2 * d
    assert sum(a.size for a in jax.tree.leaves(params)) == expected
    untied = jn.models.transformer_lm(v, d, 4, layers, max_len, tie_embeddings=False)
    _, p2, _ = untied.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 12), IDS))
    assert sum(a.size for a in jax.tree.leaves(p2)) == expected + d * v + v
    with pytest.raises(jn.LayerError, match="more than max_len=12"):
        model.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 13), IDS))
    with pytest.raises(ValueError, match="multiple of heads"):
        jn.models.transformer_lm(v, 10, 4)


def test_vit_shapes_and_parameter_count():
    d, layers, mlp = 16, 2, 64
    for pool, tokens in (("cls", 17), ("mean", 16)):
        model = jn.models.vit(8, 2, d_model=d, heads=2, layers=layers, pool=pool)
        spec, params, _ = model.init(jax.random.key(0), (3, 8, 8, 1))
        assert spec.shape == (3, 10)
        block = 4 * (d * d + d) + 2 * 2 * d + (d * mlp + mlp) + (mlp * d + d)
        expected = (4 * d + d) + tokens * d + layers * block + 2 * d + (d * 10 + 10)
        expected += d if pool == "cls" else 0
        assert sum(a.size for a in jax.tree.leaves(params)) == expected
    with pytest.raises(ValueError, match="must divide image_size"):
        jn.models.vit(8, 3)
    with pytest.raises(jn.LayerError, match="expects images"):
        jn.models.vit(8, 2).init(jax.random.key(0), (3, 6, 6, 1))


def test_vit_training_steps_reduce_the_loss():
    train, _ = jn.data.load_digits()
    x, y = train.inputs[:64], train.labels[:64]
    model = jn.models.vit(8, 2, d_model=16, heads=2, layers=1)
    opt = optax.adam(3e-3)
    ts = jn.create_train_state(model, opt, x.shape)
    step = jn.make_train_step(model, "softmax_cross_entropy", opt, metrics={})
    losses = []
    for _ in range(15):
        ts, m = step(ts, (x, y))
        losses.append(float(m["loss"]))
    assert losses[-1] < 0.8 * losses[0]


def test_transformer_lm_training_reduces_bpc():
    text = "the quick brown fox jumps over the lazy dog. " * 40
    res = jn.models.train_transformer_lm(
        text[:1500],
        text[1500:],
        d_model=16,
        heads=2,
        layers=1,
        seq_len=16,
        batch_size=8,
        learning_rate=1e-2,
        warmup_steps=5,
        max_steps=60,
        eval_every=30,
        eval_streams=2,
        eval_seq_len=8,
        log=None,
    )
    assert res.steps == 60 and len(res.curve) == 2
    uniform = math.log2(len(res.vocab))
    assert res.val_bpc < 0.7 * uniform and res.curve[-1][2] < res.curve[0][2] + 1e-6


def test_sliding_evaluation_scores_every_character_once():
    """With zero params every prediction is uniform: the bpc is exactly log2(vocab)."""
    model = jn.models.transformer_lm(7, 8, 2, 1, 6)
    _, params, _ = model.init(jax.random.key(0), jax.ShapeDtypeStruct((1, 6), IDS))
    zeros = jax.tree.map(jnp.zeros_like, params)
    windows = jn.data.tbptt_windows(np.arange(100) % 7, 3, 5)
    bpc = jn.models.evaluate_transformer_bpc(model, zeros, windows, 6)
    np.testing.assert_allclose(bpc, math.log2(7), rtol=1e-6)
    # a context as long as the streams: one window, the plain mean over every target
    long = jn.models.transformer_lm(7, 8, 2, 1, 32)
    _, params, _ = long.init(jax.random.key(0), jax.ShapeDtypeStruct((1, 32), IDS))
    params = _randomise(params)
    inputs = np.asarray(windows.inputs).transpose(1, 0, 2).reshape(3, -1)
    targets = np.asarray(windows.targets).transpose(1, 0, 2).reshape(3, -1)
    logits, _ = jax.jit(lambda p, x: long.apply(p, {}, x, train=False))(params, inputs)
    nll = optax.losses.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(targets))
    expected = float(jnp.mean(nll)) / math.log(2.0)
    got = jn.models.evaluate_transformer_bpc(long, params, windows, 32)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
