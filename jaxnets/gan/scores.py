"""Scores for generated samples, from a classifier's outputs: no eyes needed.

Every function takes plain arrays (numpy or JAX) and returns Python floats or numpy arrays,
computed in float64 numpy. Nothing here knows about a particular data set: the class
probabilities ``(N, C)`` and features ``(N, D)`` come from any classifier, e.g. the one in
:class:`jaxnets.gan.judge.SampleJudge`.

- :func:`inception_score`: confident *and* varied predictions (Salimans et al. 2016).
- :func:`confident_share`: the share of samples the classifier is sure about.
- :func:`class_shares`: how the samples spread over the classes (mode collapse).
- :func:`conditional_accuracy`: whether a conditional generator draws what was asked.
- :func:`frechet_distance`: the Fréchet distance between two Gaussians fitted to two
  feature sets (Heusel et al. 2017, the FID when the features are Inception-v3's).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from jaxnets.core.arguments import count, number

__all__ = [
    "class_shares",
    "conditional_accuracy",
    "confident_share",
    "frechet_distance",
    "inception_score",
]


def _as_probs(probs: ArrayLike, where: str) -> np.ndarray:
    """``probs`` as float64 ``(N, C)`` with N >= 1, checked to be probability rows."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise ValueError(
            f"{where}: probs must have shape (N, C) with N, C >= 1, got shape {p.shape}"
        )
    if not np.isfinite(p).all():
        raise ValueError(f"{where}: probs contain NaN or infinite values")
    sums = p.sum(axis=1)
    if (p < 0).any() or not np.allclose(sums, 1.0, atol=1e-3):
        worst = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(
            f"{where}: probs must be non-negative rows summing to 1 (softmax outputs, not "
            f"logits); row {worst} sums to {sums[worst]:.6g}, min entry {p.min():.6g}"
        )
    return p


def _as_labels(labels: ArrayLike, num_classes: int | None, where: str, what: str) -> np.ndarray:
    """``labels`` as an int64 vector, checked to lie in ``0 .. num_classes - 1``."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{where}: {what} must be a vector of class indices, got shape {y.shape}")
    integral = np.issubdtype(y.dtype, np.integer) or np.array_equal(y, np.round(y))
    if y.size and not integral:
        raise ValueError(f"{where}: {what} must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if num_classes is not None and y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{where}: {what} must lie in 0..{num_classes - 1}, got values from "
            f"{y.min()} to {y.max()}"
        )
    return y


def inception_score(probs: ArrayLike, splits: int = 1) -> float:
    """The Inception score of samples from their class probabilities.

    ``IS = exp(E_x KL(p(y|x) || p(y)))`` with ``p(y) = E_x p(y|x)``, the marginal over the
    samples: high when each sample is classified confidently (low-entropy ``p(y|x)``) and
    the samples cover the classes (high-entropy ``p(y)``). It lies in ``[1, C]``: 1 when
    every sample gets the same prediction, ``C`` for one-hot predictions spread evenly over
    the ``C`` classes. With ``splits > 1`` the samples are cut into that many contiguous,
    near-equal groups, the score is computed on each (with that group's own marginal) and
    the **mean** over the groups is returned, as Salimans et al. do (they also report the
    standard deviation over the splits, which this function does not return). Terms with
    ``p(y|x) = 0`` contribute 0 (``0 log 0 = 0``).

    Reference: Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen 2016, "Improved
    Techniques for Training GANs" (with Inception-v3 as the classifier and 10 splits of
    5,000 samples; with another classifier this is a "classifier-based" Inception score).

    Args:
      probs: ``(N, C)`` class probabilities ``p(y|x)``, rows summing to 1 (softmax
        outputs, not logits).
      splits: the number of groups to average over, 1 <= splits <= N.

    Returns:
      The score (the mean over the splits), a float in ``[1, C]``.

    Example:
        >>> import numpy as np
        >>> round(inception_score(np.eye(4)), 6)             # one-hot, every class once
        4.0
        >>> round(inception_score(np.full((5, 4), 0.25)), 6)  # no confidence at all
        1.0
        >>> round(inception_score(np.eye(4)[[0, 0, 1, 1]], splits=2), 6)  # one class a split
        1.0
    """
    p = _as_probs(probs, "inception_score")
    count("inception_score", "splits", splits)
    if not 1 <= splits <= len(p):
        raise ValueError(
            f"inception_score: splits must be an integer in 1..N={len(p)}, got {splits!r}"
        )
    scores = []
    for part in np.array_split(p, int(splits)):
        marginal = part.mean(axis=0, keepdims=True)
        ratio = np.divide(part, marginal, out=np.ones_like(part), where=part > 0)
        kl = (part * np.log(ratio)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores))


def confident_share(probs: ArrayLike, threshold: float = 0.9) -> float:
    """The share of samples whose highest class probability exceeds ``threshold``.

    ``mean_x [max_y p(y|x) > threshold]``: how many samples look unambiguously like *some*
    class to the classifier, a per-sample view of the confidence term behind the Inception
    score (Salimans et al. 2016: a recognisable image should have a low-entropy ``p(y|x)``).
    Blurry or mixed samples get flat predictions and fall below the threshold.

    Args:
      probs: ``(N, C)`` class probabilities, rows summing to 1.
      threshold: the confidence a sample must exceed, in ``[0, 1)``.

    Returns:
      A float in ``[0, 1]``.

    Example:
        >>> confident_share([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98]])
        0.6666666666666666
    """
    p = _as_probs(probs, "confident_share")
    threshold = number("confident_share", "threshold", threshold, low=0.0, high=1.0, high_open=True)
    return float((p.max(axis=1) > threshold).mean())


def class_shares(probs_or_labels: ArrayLike, num_classes: int) -> np.ndarray:
    """The share of samples assigned to each class (by the highest probability).

    ``share_c = mean_x [argmax_y p(y|x) = c]``. A generator that covers the data's classes
    evenly gives shares near ``1 / C``; ``min(class_shares(...))`` near 0 reveals mode
    collapse (classes the generator never draws). Counting modes with a pretrained
    classifier is how Metz et al. 2017 ("Unrolled Generative Adversarial Networks")
    measure mode collapse on stacked MNIST.

    Args:
      probs_or_labels: ``(N, C)`` class probabilities (their argmax is taken) or ``(N,)``
        integer class labels.
      num_classes: the number of classes ``C`` (so that absent classes get share 0).

    Returns:
      A float64 array of shape ``(num_classes,)`` summing to 1.

    Example:
        >>> class_shares([0, 0, 1, 3], num_classes=4)
        array([0.5 , 0.25, 0.  , 0.25])
        >>> class_shares([[0.9, 0.1], [0.3, 0.7]], num_classes=2)
        array([0.5, 0.5])
    """
    num_classes = count("class_shares", "num_classes", num_classes)
    values = np.asarray(probs_or_labels)
    if values.ndim == 2:
        p = _as_probs(values, "class_shares")
        if p.shape[1] != num_classes:
            raise ValueError(
                f"class_shares: probs have {p.shape[1]} classes (shape {p.shape}) but "
                f"num_classes={num_classes}"
            )
        labels = p.argmax(axis=1)
    else:
        labels = _as_labels(values, num_classes, "class_shares", "labels")
    if labels.size == 0:
        raise ValueError("class_shares: no samples given")
    return np.bincount(labels, minlength=num_classes) / labels.size


def conditional_accuracy(probs: ArrayLike, requested_labels: ArrayLike) -> float:
    """The share of samples that the classifier puts in the class they were requested as.

    ``mean_x [argmax_y p(y|x) = requested(x)]`` for a class-conditional generator: 1 when
    every sample looks like the class it was asked for. Odena, Olah & Shlens 2017
    ("Conditional Image Synthesis with Auxiliary Classifier GANs") measure the
    discriminability of AC-GAN samples this way, with a pretrained Inception network.

    Args:
      probs: ``(N, C)`` class probabilities of the samples, rows summing to 1.
      requested_labels: ``(N,)`` integer classes the samples were generated for.

    Returns:
      A float in ``[0, 1]``.

    Example:
        >>> conditional_accuracy([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9]], [0, 1, 1])
        0.6666666666666666
    """
    p = _as_probs(probs, "conditional_accuracy")
    labels = _as_labels(requested_labels, p.shape[1], "conditional_accuracy", "requested_labels")
    if labels.shape != (p.shape[0],):
        raise ValueError(
            f"conditional_accuracy: requested_labels must have shape ({p.shape[0]},) to match "
            f"probs of shape {p.shape}, got shape {labels.shape}"
        )
    return float((p.argmax(axis=1) == labels).mean())


def _as_features(features: ArrayLike, name: str) -> np.ndarray:
    """``features`` as float64 ``(N, D)`` with N >= 2 and finite values."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(
            f"frechet_distance: {name} must have shape (N, D) (N samples of D features), "
            f"got shape {f.shape}"
        )
    if f.shape[0] < 2:
        raise ValueError(
            f"frechet_distance: {name} needs at least 2 samples for a covariance, expected "
            f"shape (N >= 2, {f.shape[1]}), got shape {f.shape}"
        )
    if not np.isfinite(f).all():
        raise ValueError(f"frechet_distance: {name} contain NaN or infinite values")
    return f


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigh),
    with rounding's tiny negative eigenvalues clipped to 0."""
    eigenvalues, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets.

    ``d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``, with the means ``mu``
    and the (unbiased, ``N - 1``) covariances ``S`` of each set. This is the FID of Heusel
    et al. when the features are Inception-v3's pool features; with another network's
    features the numbers are on that network's own scale (compare only scores from the same
    features and the same sample counts: the estimate is biased upwards for small N).

    Computed in float64 without ``scipy.linalg.sqrtm``: ``S_a S_b`` is similar to the
    symmetric ``S_a^{1/2} S_b S_a^{1/2}``, so ``Tr((S_a S_b)^{1/2})`` is the sum of the
    square roots of that matrix's eigenvalues, with ``S_a^{1/2}`` from
    ``numpy.linalg.eigh``; rounding's tiny negative eigenvalues are clipped to 0, and so is
    the result (it is a squared distance). Singular covariances (fewer samples than
    features) are fine.

    Reference: Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter 2017, "GANs Trained by a
    Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"; the closed form is
    Dowson & Landau 1982.

    Args:
      features_a: ``(N_a, D)`` features of one set, ``N_a >= 2``.
      features_b: ``(N_b, D)`` features of the other, ``N_b >= 2``, same ``D``.

    Returns:
      The squared distance ``d^2``, a float >= 0 (0 for identical sets; symmetric).

    Example:
        >>> import numpy as np
        >>> a = np.random.default_rng(0).normal(size=(500, 3))
        >>> round(frechet_distance(a, a), 9)
        0.0
        >>> round(frechet_distance(a, a + [3.0, 4.0, 0.0]), 6)  # a mean shift: ||shift||^2
        25.0
    """
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"frechet_distance: features_b must have the {a.shape[1]} features of features_a "
            f"(shape {a.shape}), expected shape ({b.shape[0]}, {a.shape[1]}), got shape "
            f"{b.shape}"
        )
    mean_gap = a.mean(axis=0) - b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = (middle + middle.T) / 2.0
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum()
    distance = mean_gap @ mean_gap + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root
    return float(max(distance, 0.0))
