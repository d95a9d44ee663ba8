"""Augmentation: per-example randomness, exact shifts, the Augment layer's modes."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets.data import (
    Augment,
    augmentation,
    random_brightness,
    random_contrast,
    random_crop,
    random_flip,
    random_translate,
)


def _images(n=16, h=6, w=7, c=2, seed=0):
    """Distinct values everywhere, so each shift gives a different image."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, (n, h, w, c)).astype(np.float32)


def _shift_np(image, dy, dx, fill=0.0):
    """``image`` (H, W, C) with its content moved down ``dy`` rows and right ``dx`` columns."""
    h, w = image.shape[:2]
    out = np.full_like(image, fill)
    for i, j in itertools.product(range(h), range(w)):
        si, sj = i - dy, j - dx
        if 0 <= si < h and 0 <= sj < w:
            out[i, j] = image[si, sj]
    return out


def _found_shifts(x, y, max_shift, fill=0.0):
    """For each example, the one (dy, dx) that maps x to y exactly (asserted unique)."""
    ph, pw = max_shift
    shifts = []
    for xi, yi in zip(x, np.asarray(y), strict=True):
        matches = [
            (dy, dx)
            for dy in range(-ph, ph + 1)
            for dx in range(-pw, pw + 1)
            if np.array_equal(_shift_np(xi, dy, dx, fill), yi)
        ]
        assert len(matches) == 1, matches
        shifts.append(matches[0])
    return shifts


@pytest.mark.parametrize("padding", [1, 2, (1, 3)])
def test_crop_shifts_each_example_exactly_by_an_offset_in_range(padding):
    x = _images(n=24)
    pad = (padding, padding) if isinstance(padding, int) else padding
    y = jax.jit(random_crop, static_argnums=2)(jax.random.key(1), x, padding)
    shifts = _found_shifts(x, y, pad)
    assert len(set(shifts)) > 3, "examples must get different shifts"


def test_crop_covers_every_offset_uniformly():
    x = _images(n=400, h=3, w=3, c=1)
    shifts = _found_shifts(x, random_crop(jax.random.key(2), x, 1), (1, 1))
    counts = np.array([shifts.count(s) for s in itertools.product((-1, 0, 1), repeat=2)])
    assert counts.min() > 400 / 9 * 0.5, counts


def test_translate_fills_with_the_given_value():
    x = _images(n=12)
    y = random_translate(jax.random.key(3), x, 2, fill=-1.0)
    shifts = _found_shifts(x, y, (2, 2), fill=-1.0)
    assert any(s != (0, 0) for s in shifts)


def test_crop_reflect_mode_matches_numpy_pad():
    x = _images(n=8)
    y = np.asarray(random_crop(jax.random.key(4), x, 2, pad_mode="reflect"))
    for xi, yi in zip(x, y, strict=True):
        padded = np.pad(xi, ((2, 2), (2, 2), (0, 0)), mode="reflect")
        windows = [padded[i : i + 6, j : j + 7] for i in range(5) for j in range(5)]
        assert sum(np.array_equal(win, yi) for win in windows) == 1


def test_same_key_same_result_different_key_different_result():
    x = _images()
    augment = augmentation(crop_padding=1, flip=True, brightness=0.1, contrast=0.2)
    a = augment(jax.random.key(5), x)
    b = jax.jit(augment)(jax.random.key(5), x)
    c = augment(jax.random.key(6), x)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    assert not np.allclose(np.asarray(a), np.asarray(c))


def test_flip_mirrors_about_half_of_the_examples():
    x = _images(n=200)
    y = np.asarray(random_flip(jax.random.key(7), x))
    flipped = np.array([np.array_equal(yi, xi[:, ::-1]) for xi, yi in zip(x, y, strict=True)])
    kept = np.array([np.array_equal(yi, xi) for xi, yi in zip(x, y, strict=True)])
    assert np.all(flipped ^ kept)
    assert 60 < flipped.sum() < 140


def test_flip_is_off_by_default():
    x = _images(n=64)
    y = np.asarray(augmentation(crop_padding=1)(jax.random.key(8), x))
    shifts = _found_shifts(x, y, (1, 1))  # every output is a pure shift: none mirrored
    assert len(shifts) == 64


def test_brightness_adds_one_offset_per_example_within_bounds():
    x = _images(n=32)
    y = np.asarray(random_brightness(jax.random.key(9), x, 0.2))
    delta = (y - x).reshape(32, -1)
    np.testing.assert_allclose(delta, delta[:, :1].repeat(delta.shape[1], 1), atol=1e-6)
    assert np.abs(delta).max() <= 0.2 + 1e-6
    assert np.unique(delta[:, 0].round(6)).size == 32


def test_contrast_scales_deviation_from_the_channel_mean():
    x = _images(n=32)
    y = np.asarray(random_contrast(jax.random.key(10), x, 0.5))
    mean = x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y.mean(axis=(1, 2), keepdims=True), mean, atol=1e-5)
    factor = ((y - mean) / (x - mean)).reshape(32, -1)
    np.testing.assert_allclose(factor, factor[:, :1].repeat(factor.shape[1], 1), atol=1e-3)
    assert np.all((factor >= 0.5 - 1e-3) & (factor <= 1.5 + 1e-3))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtype_is_preserved(dtype):
    x = jnp.asarray(_images(n=4), dtype)
    augment = augmentation(crop_padding=1, flip=True, brightness=0.1, contrast=0.1)
    assert augment(jax.random.key(0), x).dtype == dtype


def test_crop_and_flip_work_on_integer_images():
    x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.uint8).reshape(2, 4, 4, 3)
    y = augmentation(crop_padding=1, flip=True)(jax.random.key(0), x)
    assert y.dtype == jnp.uint8


def test_brightness_rejects_integer_images():
    x = jnp.zeros((2, 4, 4, 3), jnp.uint8)
    with pytest.raises(TypeError, match="floating-point"):
        random_brightness(jax.random.key(0), x, 0.1)


def test_augment_layer_is_identity_in_inference_and_augments_in_training():
    layer = Augment(crop_padding=1)
    x = jnp.asarray(_images(n=8))
    spec, params, state = layer.init(jax.random.key(0), x.shape)
    assert (spec.shape, params, state) == (x.shape, {}, {})
    y, _ = layer.apply(params, state, x, train=False)
    assert y is x
    y, _ = layer.apply(params, state, x, key=jax.random.key(1), train=True)
    _found_shifts(np.asarray(x), y, (1, 1))
    assert not np.array_equal(np.asarray(y), np.asarray(x))


def test_augment_layer_needs_a_key_in_training():
    layer = jn.serial(Augment(crop_padding=1), jn.Flatten(), jn.Dense(3))
    x = jnp.ones((2, 4, 4, 1))
    _, params, state = layer.init(jax.random.key(0), x.shape)
    with pytest.raises(ValueError, match=r"augment_0/Augment: needs a PRNG key"):
        layer.apply(params, state, x, train=True)


def test_augment_layer_in_a_train_step_uses_the_step_key():
    import optax

    model = jn.serial(Augment(crop_padding=1), jn.Flatten(), jn.Dense(2))
    opt = optax.sgd(0.1)
    ts = jn.create_train_state(model, opt, (4, 5, 5, 1))
    step = jn.make_train_step(model, "softmax_cross_entropy", opt)
    x = np.asarray(_images(n=4, h=5, w=5, c=1))
    ts, m = step(ts, (x, np.zeros(4, np.int32)))
    assert np.isfinite(float(m["loss"]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Augment(), "no transform is enabled"),
        (lambda: Augment(crop_padding=-1), "Augment: crop_padding must be an int >= 0"),
        (lambda: Augment(1, pad_mode="mirror"), "Augment: pad_mode must be one of"),
        (
            lambda: Augment(1, contrast=1.5),
            "Augment: contrast must be a finite number >= 0 and < 1",
        ),
        (lambda: Augment(1, brightness=-0.1), "Augment: brightness must be a finite number >= 0"),
    ],
)
def test_bad_arguments_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_non_image_input_is_rejected_at_init():
    with pytest.raises(ValueError, match=r"Augment: expected images of shape \(N, H, W, C\)"):
        Augment(crop_padding=1).init(jax.random.key(0), (4, 8, 8))


def test_functions_reject_non_image_batches():
    with pytest.raises(ValueError, match=r"random_crop: expected images .* got shape \(8, 8\)"):
        random_crop(jax.random.key(0), jnp.ones((8, 8)), 1)
