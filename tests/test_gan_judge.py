"""The scores of jaxnets.gan.scores against independent references, and the digits judge."""

import json

import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

import jaxnets as jn
from jaxnets.gan.judge import SampleJudge, train_digits_judge
from jaxnets.gan.scores import (
    class_shares,
    conditional_accuracy,
    confident_share,
    frechet_distance,
    inception_score,
)


def random_probs(rng, n, c, concentration=0.3):
    return rng.dirichlet(np.full(c, concentration), size=n)


def reference_inception_score(probs, splits):
    """Salimans et al.'s loop, with scipy's KL divergence (entropy of p against q)."""
    n = len(probs)
    scores = []
    for i in range(splits):
        part = probs[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0)
        kl = [scipy.stats.entropy(row, marginal) for row in part]
        scores.append(np.exp(np.mean(kl)))
    return np.mean(scores)


def reference_frechet(a, b):
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root)


def correlated_gaussian(rng, n, d, scale=1.0):
    mixing = rng.normal(size=(d, d)) * scale
    return rng.normal(size=(n, d)) @ mixing + rng.normal(size=d)


# ------------------------------------------------------------------ inception score


@pytest.mark.parametrize("classes", [2, 10])
def test_inception_score_of_evenly_spread_one_hot_predictions_is_the_class_count(classes):
    probs = np.tile(np.eye(classes), (3, 1))
    assert inception_score(probs) == pytest.approx(classes, rel=1e-12)
    assert inception_score(probs, splits=3) == pytest.approx(classes, rel=1e-12)


def test_inception_score_of_identical_predictions_is_one():
    row = random_probs(np.random.default_rng(1), 1, 10)
    assert inception_score(np.repeat(row, 50, axis=0)) == pytest.approx(1.0, abs=1e-12)
    one_class = np.tile(np.eye(10)[3], (20, 1))
    assert inception_score(one_class) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("splits", [1, 4])
def test_inception_score_matches_a_scipy_entropy_reference(splits):
    probs = random_probs(np.random.default_rng(2), 400, 10)
    expected = reference_inception_score(probs, splits)
    assert inception_score(probs, splits=splits) == pytest.approx(expected, rel=1e-10)
    assert 1.0 < expected < 10.0


def test_inception_score_with_splits_is_the_mean_over_the_splits():
    rng = np.random.default_rng(3)
    confident, vague = np.tile(np.eye(5), (4, 1)), random_probs(rng, 20, 5, concentration=50.0)
    both = np.concatenate([confident, vague])
    expected = (inception_score(confident) + inception_score(vague)) / 2
    assert inception_score(both, splits=2) == pytest.approx(expected, rel=1e-12)


def test_inception_score_accepts_jax_and_float32_arrays():
    probs = random_probs(np.random.default_rng(4), 64, 10).astype(np.float32)
    probs = probs / probs.sum(axis=1, keepdims=True)
    value = inception_score(jax.numpy.asarray(probs))
    assert value == pytest.approx(reference_inception_score(probs.astype(np.float64), 1), 1e-5)


@pytest.mark.parametrize(
    ("probs", "splits", "message"),
    [
        (np.zeros((4,)), 1, "shape \\(N, C\\)"),
        (np.full((4, 3), 2.0), 1, "not logits"),
        (np.array([[1.5, -0.5], [0.5, 0.5]]), 1, "non-negative"),
        (np.full((4, 2), np.nan), 1, "NaN"),
        (np.eye(3), 4, "splits must be an integer in 1..N=3"),
        (np.eye(3), 0, "splits"),
    ],
)
def test_inception_score_errors(probs, splits, message):
    with pytest.raises(ValueError, match=message):
        inception_score(probs, splits=splits)


# ------------------------------------------------------------------ shares and accuracy


def test_confident_share_counts_samples_strictly_above_the_threshold():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.5, 0.5], [0.01, 0.99]])
    assert confident_share(probs) == 0.5
    assert confident_share(probs, threshold=0.5) == 0.75
    assert confident_share(probs, threshold=0.0) == 1.0
    with pytest.raises(ValueError, match="threshold"):
        confident_share(probs, threshold=1.0)


def test_class_shares_from_labels_and_from_probabilities():
    np.testing.assert_array_equal(
        class_shares(np.array([2, 2, 0, 2]), num_classes=4), [0.25, 0.0, 0.75, 0.0]
    )
    probs = np.array([[0.1, 0.6, 0.3], [0.2, 0.7, 0.1], [0.5, 0.25, 0.25], [0.0, 0.4, 0.6]])
    shares = class_shares(probs, num_classes=3)
    np.testing.assert_array_equal(shares, [0.25, 0.5, 0.25])
    assert shares.sum() == 1.0
    assert min(class_shares(np.tile(np.eye(10)[7], (9, 1)), 10)) == 0.0


def test_class_shares_errors():
    with pytest.raises(ValueError, match=r"3 classes .* num_classes=4"):
        class_shares(np.full((2, 3), 1 / 3), num_classes=4)
    with pytest.raises(ValueError, match=r"0\.\.2, got values from 0 to 3"):
        class_shares(np.array([0, 3]), num_classes=3)
    with pytest.raises(ValueError, match="no samples"):
        class_shares(np.array([], dtype=np.int32), num_classes=3)


def test_conditional_accuracy_on_hand_made_predictions():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3], [0.6, 0.3, 0.1]])
    assert conditional_accuracy(probs, np.array([0, 2, 1, 1])) == 0.75
    assert conditional_accuracy(probs, np.array([1, 1, 0, 2])) == 0.0
    with pytest.raises(ValueError, match="shape \\(4,\\) to match"):
        conditional_accuracy(probs, np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        conditional_accuracy(probs, np.array([0, 2, 1, 5]))


# ------------------------------------------------------------------ Fréchet distance


@pytest.mark.parametrize(("n_a", "n_b", "d"), [(300, 200, 6), (500, 500, 16)])
def test_frechet_distance_matches_a_scipy_sqrtm_reference(n_a, n_b, d):
    rng = np.random.default_rng(d)
    a = correlated_gaussian(rng, n_a, d)
    b = correlated_gaussian(rng, n_b, d, scale=0.7)
    expected = reference_frechet(a, b)
    assert expected > 1.0
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_is_zero_for_identical_sets_and_symmetric():
    rng = np.random.default_rng(5)
    a, b = correlated_gaussian(rng, 200, 8), correlated_gaussian(rng, 150, 8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)
    assert frechet_distance(a, b) > 0.1


def test_frechet_distance_grows_by_the_squared_shift_for_equal_covariances():
    rng = np.random.default_rng(6)
    a = correlated_gaussian(rng, 100, 5)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-9)
    assert frechet_distance(a + shift, a) == pytest.approx(14.25, rel=1e-9)


def test_frechet_distance_of_one_feature_is_the_gap_of_means_and_of_deviations():
    rng = np.random.default_rng(7)
    a, b = rng.normal(1.0, 2.0, size=(300, 1)), rng.normal(-0.5, 0.5, size=(200, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_with_fewer_samples_than_features_is_finite():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(10, 32)), rng.normal(size=(12, 32)) + 1.0
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 32.0 * 0.5


def test_frechet_distance_errors_name_the_argument_and_the_shapes():
    a = np.zeros((10, 4))
    with pytest.raises(
        ValueError, match=r"features_b .* expected shape \(7, 4\), got shape \(7, 5\)"
    ):
        frechet_distance(a, np.zeros((7, 5)))
    with pytest.raises(ValueError, match=r"features_a needs at least 2 samples.*\(1, 4\)"):
        frechet_distance(np.zeros((1, 4)), a)
    with pytest.raises(ValueError, match=r"features_b needs at least 2 samples"):
        frechet_distance(a, np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"features_a must have shape \(N, D\).*got shape \(10,\)"):
        frechet_distance(np.zeros(10), a)
    with pytest.raises(ValueError, match="features_b contain NaN"):
        frechet_distance(a, np.full((3, 4), np.nan))


# ------------------------------------------------------------------ the digits judge


@pytest.fixture(scope="module")
def judge():
    return train_digits_judge(seed=0)


@pytest.fixture(scope="module")
def digits():
    return jn.data.load_digits()


@pytest.mark.slow
def test_judge_classifies_the_test_half_to_at_least_99_percent(judge):
    assert judge.test_accuracy >= 0.99
    assert judge.num_classes == 10 and judge.image_shape == (8, 8, 1)


@pytest.mark.slow
def test_judge_scores_the_real_test_half_as_confident_and_varied(judge):
    real = judge.real_scores()
    assert real["inception_score"] >= 9.0
    assert real["confident_share"] >= 0.9
    assert real["min_class_share"] >= 0.08
    assert len(real["class_shares"]) == 10 and sum(real["class_shares"]) == pytest.approx(1.0)
    assert real["conditional_accuracy"] == judge.test_accuracy
    assert real["frechet"] == real["frechet_real"] == judge.frechet_real > 0


@pytest.mark.slow
def test_judge_probs_and_features_are_the_classifiers_in_inference_mode(judge, digits):
    _, test = digits
    x01 = test.inputs[:37]
    logits, _ = judge.model.apply(judge.params, judge.state, x01, train=False)
    probs = judge.probs(judge.to_value_range(x01))
    np.testing.assert_allclose(probs, jax.nn.softmax(logits), atol=1e-5)
    flat = judge.to_value_range(x01).reshape(37, 64)
    np.testing.assert_allclose(judge.probs(flat), probs, atol=1e-6)
    features = judge.features(flat)
    assert features.shape == (37, judge.feature_dim) and (features >= 0).all()
    np.testing.assert_allclose(judge.to_value_range(x01).min(), -1.0)


@pytest.mark.slow
def test_judge_gives_real_images_a_low_frechet_and_their_labels(judge, digits):
    _, test = digits
    images = judge.to_value_range(test.inputs)
    scores = judge.score(images, requested_labels=test.labels)
    real = judge.real_scores()
    assert scores["frechet"] == pytest.approx(0.0, abs=1e-6)  # the test half against itself
    assert scores["inception_score"] == pytest.approx(real["inception_score"], rel=1e-6)
    assert scores["conditional_accuracy"] >= 0.99
    half = judge.score(images[::2])
    assert half["frechet"] < 2 * judge.frechet_real
    assert "conditional_accuracy" not in half
    assert json.loads(json.dumps(scores)) == scores  # plain floats and lists, for reports


@pytest.mark.slow
def test_judge_gives_noise_and_single_class_images_a_high_frechet(judge, digits):
    _, test = digits
    noise = np.random.default_rng(0).uniform(-1.0, 1.0, size=(899, 8, 8, 1))
    noisy = judge.score(noise)
    assert noisy["frechet"] > 10 * judge.frechet_real

    threes = judge.to_value_range(test.inputs[test.labels == 3])
    single = judge.score(threes, requested_labels=np.full(len(threes), 3))
    assert single["min_class_share"] == 0.0
    assert single["class_shares"][3] >= 0.95
    assert single["inception_score"] < 1.2
    assert single["frechet"] > 10 * judge.frechet_real
    assert single["conditional_accuracy"] == single["class_shares"][3]


def tiny_classifier():
    """An untrained classifier of 2x2 images into 2 classes, and 20 random "real" images."""
    rng = np.random.default_rng(0)
    real = jn.data.ArrayDataset(
        rng.uniform(size=(20, 2, 2, 1)).astype(np.float32), rng.integers(0, 2, 20).astype(np.int32)
    )
    trunk = jn.serial(jn.Flatten(), jn.Dense(3, activation="relu"))
    model = jn.serial(("features", trunk), ("logits", jn.Dense(2)))
    _, params, state = model.init(jax.random.key(0), (1, 2, 2, 1))
    return trunk, model, params, state, real


def test_sample_judge_maps_the_value_range_and_checks_the_params():
    trunk, model, params, state, real = tiny_classifier()
    judge = SampleJudge(trunk, jn.Dense(2), params, state, real, real, value_range=(0, 255))
    x01 = real.inputs[:5]
    expected = jax.nn.softmax(model.apply(params, state, x01, train=False)[0])
    np.testing.assert_allclose(judge.probs(x01 * 255), expected, atol=1e-6)
    np.testing.assert_allclose(judge.to_value_range(x01), x01 * 255, rtol=1e-6)
    assert judge.frechet_real == pytest.approx(0.0, abs=1e-9)  # the same set twice
    with pytest.raises(ValueError, match="keys \\['features', 'logits'\\]"):
        SampleJudge(trunk, jn.Dense(2), params["features"], state, real, real)
    with pytest.raises(ValueError, match=r"SampleJudge: params: .logits/.* the model expects"):
        SampleJudge(trunk, jn.Dense(3), params, state, real, real)
    with pytest.raises(ValueError, match="value_range"):
        SampleJudge(trunk, jn.Dense(2), params, state, real, real, value_range=(1, 1))


def test_sample_judge_rejects_images_of_the_wrong_shape_or_not_finite():
    trunk, _, params, state, real = tiny_classifier()
    judge = SampleJudge(trunk, jn.Dense(2), params, state, real, real)
    assert judge.probs(np.zeros((3, 4))).shape == (3, 2)  # flat images are reshaped
    with pytest.raises(ValueError, match=r"shape \(N, 2, 2, 1\) or \(N, 4\).*\(3, 2, 2\)"):
        judge.score(np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        judge.probs(np.full((2, 2, 2, 1), np.nan))
    with pytest.raises(ValueError, match="features_a needs at least 2 samples"):
        judge.score(np.zeros((1, 2, 2, 1)))
