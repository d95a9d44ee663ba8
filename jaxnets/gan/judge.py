"""A judge of generated images: a trained jaxnets classifier and the scores of
:mod:`jaxnets.gan.scores`, with the real data's scores as the yardstick.

:class:`SampleJudge` wraps any classifier built as
``serial(("features", features_net), ("logits", head))``: its class probabilities give the
Inception score, the confident share, the class shares and the conditional accuracy, and
``features_net``'s output (the penultimate layer) gives the Fréchet distance to a real
reference set. :func:`train_digits_judge` trains one on scikit-learn's 8x8 digits.

Example (scoring only; ``train_digits_judge()`` takes seconds, see its docstring):
    >>> import jax, numpy as np, jaxnets as jn
    >>> from jaxnets.gan.judge import SampleJudge
    >>> rng = np.random.default_rng(0)
    >>> real = jn.data.ArrayDataset(rng.uniform(size=(40, 4, 4, 1)).astype(np.float32),
    ...                             rng.integers(0, 3, size=40).astype(np.int32))
    >>> trunk = jn.serial(jn.Flatten(), jn.Dense(8, activation="relu"))
    >>> model = jn.serial(("features", trunk), ("logits", jn.Dense(3)))
    >>> _, params, state = model.init(jax.random.key(0), (1, 4, 4, 1))
    >>> judge = SampleJudge(trunk, jn.Dense(3), params, state, real, real)
    >>> judge.probs(np.zeros((5, 4, 4, 1))).shape, judge.features(np.zeros((5, 16))).shape
    ((5, 3), (5, 8))
    >>> scores = judge.score(rng.uniform(-1, 1, size=(30, 4, 4, 1)))
    >>> print(*sorted(scores))
    class_shares confident_share frechet frechet_real inception_score min_class_share
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpy.typing import ArrayLike

from jaxnets.core import Layer, branches, check_tree_matches, serial, shape_tree
from jaxnets.data.augment import Augment
from jaxnets.data.dataset import ArrayDataset
from jaxnets.data.digits import load_digits
from jaxnets.gan._checks import check_range, check_training
from jaxnets.gan.scores import (
    class_shares,
    conditional_accuracy,
    confident_share,
    frechet_distance,
    inception_score,
)
from jaxnets.layers import Conv, Dense, Dropout, Flatten, MaxPool
from jaxnets.train.loop import fit

__all__ = ["SampleJudge", "digits_judge_trunk", "train_digits_judge"]


def _check_range(value_range: tuple[float, float], name: str) -> tuple[float, float]:
    return check_range("SampleJudge", name, value_range)


class SampleJudge:
    """Scores images with a trained classifier against a real reference set.

    The classifier is ``serial(("features", features_net), ("logits", head))`` with its
    trained ``params`` and ``state``; it runs jitted, in inference mode, in batches of
    ``batch_size`` (the last one padded, so each input shape compiles once). Images are
    given in ``value_range`` (a generator's range, ``(-1, 1)`` for a tanh output) and
    mapped linearly to ``classifier_range``, the range the classifier was trained on, in
    which ``real_train`` and ``real_test`` are given. Images may be ``(N, *image_shape)``
    or flat ``(N, prod(image_shape))``; values outside the range are not clipped.

    At construction the judge runs the classifier once over both real halves and keeps
    their features and the test half's probabilities: :attr:`test_accuracy` (the test
    half's accuracy) and :attr:`frechet_real`, the Fréchet distance of the real training
    half to the real test half. That is the floor a generator can hope for: real images
    that are not the reference set, at about the same count. The Fréchet distance is
    biased upwards for small sets, so score about as many samples as the test half holds.

    Attributes:
        model: the classifier, ``serial(("features", features_net), ("logits", head))``;
            ``model.apply(judge.params, judge.state, x, train=False)`` gives its logits.
        params: its params; state: its state.
        image_shape: one image's shape, e.g. ``(8, 8, 1)``.
        num_classes: the classifier's number of classes.
        feature_dim: the width of the feature layer.
        value_range: the range of the images given to the judge.
        classifier_range: the range of the classifier's inputs and of the real data.
        test_accuracy: the classifier's accuracy on ``real_test``.
        frechet_real: ``frechet_distance(features(real_train), features(real_test))``.
        train_seconds: how long training took, when the judge was trained by
            :func:`train_digits_judge` (else None).
    """

    def __init__(
        self,
        features_net: Layer,
        head: Layer,
        params: Mapping[str, Any],
        state: Mapping[str, Any],
        real_train: ArrayDataset,
        real_test: ArrayDataset,
        *,
        value_range: tuple[float, float] = (-1.0, 1.0),
        classifier_range: tuple[float, float] = (0.0, 1.0),
        batch_size: int = 256,
    ) -> None:
        """Wrap a trained classifier; see the class docstring.

        Args:
          features_net: the layer stored as ``"features"`` in the classifier.
          head: the layer stored as ``"logits"`` (features to logits).
          params: the classifier's params, ``{"features": ..., "logits": ...}``.
          state: the classifier's state (``{}`` when it has none).
          real_train: real images (in ``classifier_range``) the classifier trained on.
          real_test: held-out real images with labels: the Fréchet reference set.
          value_range: the ``(low, high)`` range of the images the judge is given.
          classifier_range: the ``(low, high)`` range the classifier expects.
          batch_size: images per jitted inference call.
        """
        check_training("SampleJudge", batch_size=batch_size)
        if not isinstance(params, Mapping) or not {"features", "logits"} <= set(params):
            got = sorted(params) if isinstance(params, Mapping) else type(params).__name__
            raise ValueError(
                "SampleJudge: params must be those of serial(('features', features_net), "
                f"('logits', head)), with keys ['features', 'logits']; got {got}"
            )
        self.value_range = _check_range(value_range, "value_range")
        self.classifier_range = _check_range(classifier_range, "classifier_range")
        self.image_shape = tuple(np.shape(real_test.inputs)[1:])
        self.batch_size = int(batch_size)
        self.model = serial(("features", features_net), ("logits", head))
        _, expected_params, expected_state = shape_tree(self.model, (1, *self.image_shape))
        check_tree_matches(expected_params, params, "SampleJudge: params")
        check_tree_matches(expected_state, state, "SampleJudge: state")
        self.params = params
        self.state = dict(state)
        self.train_seconds: float | None = None

        def forward(params, state, x):
            features, _ = features_net.apply(
                params["features"], state.get("features", {}), x, key=None, train=False
            )
            logits, _ = head.apply(
                params["logits"], state.get("logits", {}), features, key=None, train=False
            )
            return features, jax.nn.softmax(logits.astype(jnp.float32), axis=-1)

        self._forward = jax.jit(forward)
        self._train_features, _ = self._run(self._as_images(real_train.inputs, "real_train"))
        self._test_features, self._test_probs = self._run(
            self._as_images(real_test.inputs, "real_test")
        )
        self._test_labels = np.asarray(real_test.labels)
        self.num_classes = int(self._test_probs.shape[1])
        self.feature_dim = int(self._test_features.shape[1])
        self.test_accuracy = conditional_accuracy(self._test_probs, self._test_labels)
        self.frechet_real = frechet_distance(self._train_features, self._test_features)

    # ------------------------------------------------------------------ inference

    def _as_images(self, images: ArrayLike, name: str) -> np.ndarray:
        """``images`` as float32 ``(N, *image_shape)``, finite, with a clear error if not."""
        x = np.asarray(images, dtype=np.float32)
        size = math.prod(self.image_shape)
        if x.ndim >= 1 and x.shape[1:] == (size,) and self.image_shape != (size,):
            x = x.reshape(len(x), *self.image_shape)
        if x.ndim < 1 or x.shape[1:] != self.image_shape or len(x) < 1:
            raise ValueError(
                f"SampleJudge: {name} must have shape (N, {', '.join(map(str, self.image_shape))}) "
                f"or (N, {size}) with N >= 1, got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError(f"SampleJudge: {name} contain NaN or infinite values")
        return x

    def _to_classifier(self, images: ArrayLike, name: str = "images") -> np.ndarray:
        """Images in ``value_range`` mapped to ``classifier_range``."""
        x = self._as_images(images, name)
        (low, high), (c_low, c_high) = self.value_range, self.classifier_range
        scale = (c_high - c_low) / (high - low)
        return ((x - low) * scale + c_low).astype(np.float32)

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features and probabilities of images already in ``classifier_range``."""
        features, probs = [], []
        for start in range(0, len(x), self.batch_size):
            chunk = x[start : start + self.batch_size]
            pad = self.batch_size - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            f, p = self._forward(self.params, self.state, chunk)
            features.append(np.asarray(f)[: self.batch_size - pad])
            probs.append(np.asarray(p)[: self.batch_size - pad])
        return np.concatenate(features), np.concatenate(probs)

    def to_value_range(self, images: ArrayLike) -> np.ndarray:
        """Map real images from ``classifier_range`` (the data's own range, [0, 1] for the
        digits) to ``value_range``, the judge's input range, so that
        ``judge.score(judge.to_value_range(test.inputs))`` scores real images as samples."""
        x = self._as_images(images, "images")
        (low, high), (c_low, c_high) = self.value_range, self.classifier_range
        return ((x - c_low) * ((high - low) / (c_high - c_low)) + low).astype(np.float32)

    def probs(self, images: ArrayLike) -> np.ndarray:
        """The classifier's class probabilities ``(N, num_classes)`` for ``images`` (in
        ``value_range``)."""
        return self._run(self._to_classifier(images))[1]

    def features(self, images: ArrayLike) -> np.ndarray:
        """The feature layer's output ``(N, feature_dim)`` for ``images`` (in
        ``value_range``)."""
        return self._run(self._to_classifier(images))[0]

    # ------------------------------------------------------------------ scores

    def _scores(
        self,
        probs: np.ndarray,
        frechet: float,
        requested_labels: ArrayLike | None,
    ) -> dict[str, Any]:
        shares = class_shares(probs, self.num_classes)
        result: dict[str, Any] = {
            "inception_score": inception_score(probs),
            "confident_share": confident_share(probs),
            "min_class_share": float(shares.min()),
            "class_shares": [float(s) for s in shares],
            "frechet": frechet,
            "frechet_real": self.frechet_real,
        }
        if requested_labels is not None:
            result["conditional_accuracy"] = conditional_accuracy(probs, requested_labels)
        return result

    def score(
        self, images: ArrayLike, *, requested_labels: ArrayLike | None = None
    ) -> dict[str, Any]:
        """All the scores of ``images`` (in ``value_range``) at once.

        Args:
          images: ``(N, *image_shape)`` or ``(N, prod(image_shape))`` samples, N >= 2.
          requested_labels: for a conditional generator, the ``(N,)`` classes asked for.

        Returns:
          A dict: ``inception_score``, ``confident_share`` (max probability > 0.9),
          ``min_class_share`` and ``class_shares`` (a list of ``num_classes`` floats),
          ``frechet`` (the samples' features vs the real test half's), ``frechet_real``
          (the real training half vs the test half: the floor), and
          ``conditional_accuracy`` when ``requested_labels`` is given. See
          :mod:`jaxnets.gan.scores` for the definitions.
        """
        features, probs = self._run(self._to_classifier(images))
        frechet = frechet_distance(features, self._test_features)
        return self._scores(probs, frechet, requested_labels)

    def real_scores(self) -> dict[str, Any]:
        """The same scores for the real test half, to print beside a generator's.

        ``inception_score``, ``confident_share`` and the class shares are the test half's;
        ``conditional_accuracy`` is its accuracy with the true labels (:attr:`test_accuracy`).
        ``frechet`` is :attr:`frechet_real`: the test half against itself would give 0, so
        the real images scored are the training half's, real images that are not the
        reference set.
        """
        return self._scores(self._test_probs, self.frechet_real, self._test_labels)


# ---------------------------------------------------------------------- the digits judge


def digits_judge_trunk(*, width: int = 32, units: int = 128) -> Layer:
    """The digits judge's feature net: :func:`jaxnets.demo.digits_cnn` without its logits, and
    with brightness and contrast jitter added to its random one-pixel shifts. This
    augmentation and the final dropout 0.25 are identities in inference, so the features are
    then the ReLU output of the Dense layer.

    Args:
      width: the filters of the first two 3x3 convolutions (the third has ``2 * width``).
      units: the size of the Dense feature layer.

    Returns:
      A :func:`~jaxnets.serial` named ``digits_judge_trunk``, output ``(batch, units)``;
      its params are ``conv1``, ``conv2``, ``conv3`` and ``dense``.

    Example:
        >>> import jaxnets as jn
        >>> out, params, _ = jn.shape_tree(digits_judge_trunk(), (2, 8, 8, 1))
        >>> out.shape, sorted(params)
        ((2, 128), ['conv1', 'conv2', 'conv3', 'dense'])
    """
    check_training("digits_judge_trunk", width=width, units=units)
    return serial(
        ("shift", Augment(crop_padding=1, brightness=0.1, contrast=0.1)),
        ("conv1", Conv(width, 3, activation="relu")),
        ("conv2", Conv(width, 3, activation="relu")),
        ("pool1", MaxPool(2)),
        ("conv3", Conv(2 * width, 3, activation="relu")),
        ("flatten", Flatten()),
        ("dense", Dense(units, activation="relu")),
        ("dropout", Dropout(0.25)),
        name="digits_judge_trunk",
    )


def _logit_average(trained: list[tuple[Any, Any]], trunk: Layer) -> tuple[Layer, Any, Any]:
    """One classifier whose logits are the mean of the members' logits.

    ``mean_k (W_k f_k + b_k)`` is a single Dense layer on the concatenated features
    ``[f_1, ..., f_K]``, with kernel ``[W_1; ...; W_K] / K`` and bias ``mean_k b_k``, so
    the ensemble is again ``serial(("features", branches(...)), ("logits", Dense))``.
    """
    names = [f"member{k}" for k in range(len(trained))]
    features_net = branches(*[(name, trunk) for name in names], merge="concat")
    kernels = [params["logits"]["kernel"] for params, _ in trained]
    biases = [params["logits"]["bias"] for params, _ in trained]
    params = {
        "features": {name: p["features"] for name, (p, _) in zip(names, trained, strict=True)},
        "logits": {
            "kernel": jnp.concatenate(kernels, axis=0) / len(trained),
            "bias": jnp.mean(jnp.stack(biases), axis=0),
        },
    }
    member_states = {name: s["features"] for name, (_, s) in zip(names, trained, strict=True) if s}
    state = {"features": member_states} if member_states else {}
    return features_net, params, state


def train_digits_judge(
    seed: int = 0,
    epochs: int = 30,
    *,
    members: int = 6,
    width: int = 32,
    units: int = 128,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-3,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> SampleJudge:
    """Train a :class:`SampleJudge` for scikit-learn's 8x8 digits.

    Trains ``members`` CNNs ``serial(("features", digits_judge_trunk()), ("logits",
    Dense(10)))`` on the digits' training half (:func:`jaxnets.data.load_digits`), with
    seeds ``seed * members + k``, the demo's optimiser (AdamW, cosine decay from
    ``learning_rate``, ``weight_decay``) and plain softmax cross-entropy (no label
    smoothing, which would cap the confidence that :func:`~jaxnets.gan.scores.confident_share`
    measures). With ``members > 1`` the judge averages the members' logits: its features
    are the members' concatenated (``members * units`` wide), its head one Dense layer (see
    :func:`_logit_average`). An average of several members is more accurate than one
    CNN, and varies less between seeds (the figures are in ``benchmarks/RESULTS.md``).

    Args:
      seed: the training seed (initialisation, shuffling, augmentation, dropout).
      epochs: epochs per member.
      members: how many CNNs to train and average (1: a single CNN).
      width: the first convolutions' filters (the third has ``2 * width``).
      units: each member's feature width.
      batch_size: the training batch size.
      learning_rate: the peak learning rate of the cosine schedule.
      weight_decay: AdamW's decoupled weight decay.
      value_range: the range of the images the judge will be given (the generator's).

    Returns:
      The judge, with ``test_accuracy`` and ``train_seconds`` set.
    """
    where, sizes = "train_digits_judge", {"width": width, "units": units, "batch_size": batch_size}
    check_training(where, members=members, seed=seed, epochs=epochs, **sizes)
    check_training(where, learning_rate=learning_rate, weight_decay=weight_decay)
    check_range(where, "value_range", value_range)
    train, test = load_digits()
    trunk = digits_judge_trunk(width=width, units=units)
    head = Dense(10)
    model = serial(("features", trunk), ("logits", head))
    steps = max(1, epochs * (len(train) // batch_size))
    start = time.perf_counter()
    trained = []
    for k in range(members):
        schedule = optax.cosine_decay_schedule(learning_rate, steps)
        optimizer = optax.adamw(schedule, weight_decay=weight_decay)
        result = fit(
            model,
            train,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed * members + k,
            progress=False,
        )
        trained.append((result.state.params, result.state.state))
    if members == 1:
        features_net, (params, state) = trunk, trained[0]
    else:
        features_net, params, state = _logit_average(trained, trunk)
    elapsed = time.perf_counter() - start
    judge = SampleJudge(features_net, head, params, state, train, test, value_range=value_range)
    judge.train_seconds = elapsed
    return judge
