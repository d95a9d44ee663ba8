"""Embedding: lookup, equality with flax's nn.Embed, and ids outside the vocabulary."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn

IDS = jax.ShapeDtypeStruct((2, 3), jnp.int32)


def test_lookup_equals_flax_embed():
    embed = jn.Embedding(11, 4)
    _, params, _ = embed.init(jax.random.key(0), IDS)
    ids = jnp.array([[0, 5, 10], [3, 3, 1]])
    y, _ = embed.apply(params, {}, ids, train=False)
    flax_y = fnn.Embed(11, 4).apply({"params": params}, ids)
    np.testing.assert_array_equal(y, flax_y)
    np.testing.assert_array_equal(y[1, 0], params["embedding"][3])


def test_ids_outside_the_vocabulary():
    embed = jn.Embedding(5, 2)
    _, params, _ = embed.init(jax.random.key(0), IDS)
    with pytest.raises(jn.LayerError, match=r"token ids must lie in \[0, 5\).*\[-1, 5\]"):
        embed.apply(params, {}, jnp.array([[0, 5, -1]]), train=False)
    with pytest.raises(jn.LayerError, match=r"\[0, 5\)"):
        embed.apply(params, {}, np.array([7]), train=False)
    y = jax.jit(lambda i: embed.apply(params, {}, i, train=False)[0])(jnp.array([0, 5, -1, 4]))
    assert np.isnan(y[1:3]).all(), "out-of-range ids give NaN rows under jit"
    np.testing.assert_array_equal(y[3], params["embedding"][4])
    np.testing.assert_array_equal(y[0], params["embedding"][0])


def test_non_integer_ids_and_bad_sizes_raise():
    embed = jn.Embedding(5, 2)
    with pytest.raises(jn.LayerTypeError, match="integer token ids"):
        embed.init(jax.random.key(0), jax.ShapeDtypeStruct((2, 3), jnp.float32))
    _, params, _ = embed.init(jax.random.key(0), IDS)
    with pytest.raises(jn.LayerTypeError, match="integer token ids"):
        embed.apply(params, {}, jnp.ones((2, 3)), train=False)
    with pytest.raises(ValueError, match="num_embeddings must be a positive int"):
        jn.Embedding(0, 3)


def test_a_tuple_input_passes_lengths_on_to_a_recurrent_layer():
    net = jn.serial(jn.Embedding(9, 4), jn.Bidirectional(jn.GRU(3)), jn.Dense(2))
    ids_spec = jax.ShapeDtypeStruct((2, 5), jnp.int32)
    spec, params, state = net.init(jax.random.key(0), (ids_spec, ids_spec.update(shape=(2,))))
    assert spec.shape == (2, 5, 2)
    ids = jnp.array([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0]])
    y, _ = net.apply(params, state, (ids, jnp.array([5, 3])), train=False)
    alone, _ = net.apply(params, state, ids[1:, :3], train=False)
    np.testing.assert_allclose(y[1, :3], alone[0], atol=1e-5)
