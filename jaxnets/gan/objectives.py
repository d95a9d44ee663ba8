"""The objectives of a generative adversarial network, for the train step's updates.

Each is a function ``objective(params, state, batch, *, key, train) -> (loss, (new_state,
metrics))`` where ``params`` and ``state`` are dicts ``{"generator": ...,
"discriminator": ...}`` of the two networks' params and state, and ``batch`` is
``(images, labels)`` with images in [-1, 1]. A step differentiates
:func:`discriminator_objective` with respect to ``params["discriminator"]``, then
:func:`generator_objective` with respect to ``params["generator"]`` against the updated
discriminator.

The loss is the non-saturating one of Goodfellow et al. (2014): the discriminator
minimises ``BCE(D(x), 1) + BCE(D(G(z)), 0)`` on logits and the generator
``BCE(D(G(z)), 1) = softplus(-D(G(z)))``. The discriminator sees the real and the fake
batch in separate calls, so its BatchNorm normalises each with its own statistics, as
the DCGAN reference implementations do.

BatchNorm state: each objective updates the statistics of the network it trains, and
returns the other network's state unchanged. The discriminator objective threads D's
state through its real then its fake call; the generator objective runs G in training
mode and returns its new statistics (the discriminator objective runs G in training
mode too, but drops G's new statistics, so they are updated once a step).

Conditional GANs (``conditional=True``): the fake images are generated for the batch's
own labels, so the fake batch has the real batch's classes, and the discriminator sees
``(images, labels)`` for both.

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> from jaxnets import gan
    >>> g = jn.models.mlp_generator(8, hidden=(16,))
    >>> d = jn.models.mlp_discriminator(hidden=(16,))
    >>> _, g_params, g_state = g.init(jax.random.key(0), (1, 8))
    >>> _, d_params, d_state = d.init(jax.random.key(1), (1, 8, 8, 1))
    >>> params = {"generator": g_params, "discriminator": d_params}
    >>> state = {"generator": g_state, "discriminator": d_state}
    >>> batch = (jnp.zeros((4, 8, 8, 1)), jnp.zeros(4, jnp.int32))
    >>> d_objective = gan.discriminator_objective(g, d, 8)
    >>> loss, (state, metrics) = d_objective(
    ...     params, state, batch, key=jax.random.key(2), train=True)
    >>> loss.shape, sorted(metrics)
    ((), ['d_fake', 'd_loss', 'd_real'])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxnets.core import Layer
from jaxnets.core.arguments import count, flag
from jaxnets.core.children import check_layer
from jaxnets.gan._checks import check_key, check_training

Array = jax.Array
Objective = Callable[..., tuple[Array, tuple[Any, dict[str, Array]]]]

#: The sub-keys of an objective's key: ``fold_in(key, tag)``.
NOISE_KEY, GENERATOR_KEY, REAL_KEY, FAKE_KEY = 0, 1, 2, 3

_PARTS = ("generator", "discriminator")


def noise(key: Array, n: int, latent_dim: int) -> Array:
    """The generator's input noise ``z ~ N(0, 1)``, float32 ``(n, latent_dim)``.

    The same key gives the same noise, so one batch drawn before training, passed to the
    generator (or the same key passed to :func:`sample`) after every epoch, gives
    comparable sample grids.

    Args:
      key: a jax PRNG key.
      n: the number of noise vectors.
      latent_dim: the size of each.

    Returns:
      A float32 array ``(n, latent_dim)``.

    Example:
        >>> import jax
        >>> z = noise(jax.random.key(0), 16, 64)
        >>> z.shape, bool((z == noise(jax.random.key(0), 16, 64)).all())
        ((16, 64), True)
    """
    check_key("noise", key)
    n = count("noise", "n", n, minimum=0)
    latent_dim = count("noise", "latent_dim", latent_dim)
    return jax.random.normal(key, (n, latent_dim), jnp.float32)


def _require_key(where: str, key: Array | None) -> Array:
    if key is None:
        raise ValueError(
            f"{where}: needs a PRNG key to draw the noise z, got key=None (the train step "
            f"passes one; in a test pass key=jax.random.key(0))"
        )
    return key


def _parts(where: str, tree: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(tree, dict) or set(tree) != set(_PARTS):
        got = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
        raise ValueError(
            f"{where}: {what} must be a dict with the entries 'generator' and "
            f"'discriminator' (each that network's {what}), got {got}"
        )
    return tree["generator"], tree["discriminator"]


def _images_labels(where: str, batch: Any) -> tuple[Array, Array]:
    if not isinstance(batch, tuple | list) or len(batch) != 2:
        raise TypeError(
            f"{where}: expected a batch (images, labels), got {type(batch).__name__}"
            + (f" of {len(batch)} items" if isinstance(batch, tuple | list) else "")
        )
    return batch[0], batch[1]


def _logits(where: str, logits: Array, n: int) -> Array:
    """The discriminator's ``(n,)`` or ``(n, 1)`` output as float32 ``(n,)``."""
    if tuple(logits.shape) not in ((n,), (n, 1)):
        raise ValueError(
            f"{where}: the discriminator should give one logit per example, shape ({n},) or "
            f"({n}, 1), got shape {tuple(logits.shape)}"
        )
    return logits.reshape(n).astype(jnp.float32)


def _check_players(where: str, generator, discriminator, latent_dim, conditional) -> int:
    """Check the arguments both objectives take; returns ``latent_dim`` as an int."""
    check_layer(where, "generator", generator)
    check_layer(where, "discriminator", discriminator)
    flag(where, "conditional", conditional)
    return count(where, "latent_dim", latent_dim)


def _fake_images(generator, g_params, g_state, n, labels, latent_dim, key, train, conditional):
    """``G(z)`` in the objective's mode for ``n`` noise vectors from ``key``."""
    z = noise(jax.random.fold_in(key, NOISE_KEY), n, latent_dim)
    inputs = (z, labels) if conditional else z
    return generator.apply(
        g_params, g_state, inputs, key=jax.random.fold_in(key, GENERATOR_KEY), train=train
    )


def _inputs(where: str, params: Any, state: Any, batch: Any, key: Any) -> tuple:
    """An objective's arguments taken apart and checked: the key, ``(G, D)`` params,
    ``(G, D)`` state and ``(images, labels)``."""
    return (
        _require_key(where, key),
        _parts(where, params, "params"),
        _parts(where, state, "state"),
        _images_labels(where, batch),
    )


def discriminator_objective(
    generator: Layer,
    discriminator: Layer,
    latent_dim: int,
    *,
    conditional: bool = False,
    label_smoothing: float = 0.0,
) -> Objective:
    """The discriminator's non-saturating GAN objective (Goodfellow et al. 2014).

    ``loss = mean BCE(D(x), 1 - label_smoothing) + mean BCE(D(G(z)), 0)`` with
    ``optax.losses.sigmoid_binary_cross_entropy`` on the logits. ``z ~ N(0, 1)`` is drawn
    from ``fold_in(key, 0)``; G runs in the objective's mode and its images are wrapped in
    ``jax.lax.stop_gradient``, so the gradient with respect to the generator's params is
    exactly zero. D sees the real batch, then the fake batch, in two calls, its state
    threaded through both; G's new BatchNorm statistics are dropped (the generator
    objective updates them). With ``conditional`` the fakes are generated for the batch's
    labels and D sees ``(images, labels)``.

    Args:
      generator: maps ``z`` (or ``(z, labels)``) to images in [-1, 1].
      discriminator: maps images (or ``(images, labels)``) to logits ``(N,)`` or
        ``(N, 1)``.
      latent_dim: the size of ``z``.
      conditional: whether both networks take the labels.
      label_smoothing: one-sided label smoothing (Salimans et al. 2016): the target of
        real images is ``1 - label_smoothing``, that of fakes stays 0; in [0, 1).

    Returns:
      ``discriminator_objective(params, state, batch, *, key, train) -> (loss,
      (new_state, metrics))``, metrics ``d_loss``, ``d_real`` and ``d_fake`` (the mean
      probability D gives to real and to fake images being real).

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> g, d = jn.models.mlp_generator(4, hidden=(8,)), jn.models.mlp_discriminator(hidden=(8,))
        >>> params = {"generator": g.init(jax.random.key(0), (1, 4))[1],
        ...           "discriminator": d.init(jax.random.key(1), (1, 8, 8, 1))[1]}
        >>> state = {"generator": {}, "discriminator": {}}
        >>> objective = discriminator_objective(g, d, 4, label_smoothing=0.1)
        >>> batch = (jnp.zeros((2, 8, 8, 1)), jnp.zeros(2, jnp.int32))
        >>> grads, (new_state, metrics) = jax.grad(objective, has_aux=True)(
        ...     params, state, batch, key=jax.random.key(2), train=True)
        >>> objective.__name__, all(float(jnp.abs(a).max()) == 0.0
        ...                         for a in jax.tree.leaves(grads["generator"]))
        ('discriminator_objective', True)
    """
    where = "discriminator_objective"
    latent_dim = _check_players(where, generator, discriminator, latent_dim, conditional)
    check_training(where, label_smoothing=label_smoothing)
    real_target = 1.0 - label_smoothing

    def discriminator_objective(params, state, batch, *, key, train):
        key, (g_params, d_params), (g_state, d_state), (images, labels) = _inputs(
            where, params, state, batch, key
        )
        n = images.shape[0]
        fake, _ = _fake_images(
            generator, g_params, g_state, n, labels, latent_dim, key, train, conditional
        )
        fake = jax.lax.stop_gradient(fake)
        real_in = (images, labels) if conditional else images
        fake_in = (fake, labels) if conditional else fake
        real_logits, d_state = discriminator.apply(
            d_params, d_state, real_in, key=jax.random.fold_in(key, REAL_KEY), train=train
        )
        fake_logits, d_state = discriminator.apply(
            d_params, d_state, fake_in, key=jax.random.fold_in(key, FAKE_KEY), train=train
        )
        real_logits = _logits(where, real_logits, n)
        fake_logits = _logits(where, fake_logits, n)
        bce = optax.losses.sigmoid_binary_cross_entropy
        real_loss = jnp.mean(bce(real_logits, jnp.full((n,), real_target, jnp.float32)))
        fake_loss = jnp.mean(bce(fake_logits, jnp.zeros((n,), jnp.float32)))
        loss = real_loss + fake_loss
        metrics = {
            "d_loss": loss,
            "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
            "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
        }
        return loss, ({"generator": g_state, "discriminator": d_state}, metrics)

    return discriminator_objective


def generator_objective(
    generator: Layer,
    discriminator: Layer,
    latent_dim: int,
    *,
    conditional: bool = False,
) -> Objective:
    """The generator's non-saturating GAN objective (Goodfellow et al. 2014).

    ``loss = mean BCE(D(G(z)), 1) = mean softplus(-D(G(z)))``: the generator maximises
    ``log D(G(z))`` rather than minimising ``log(1 - D(G(z)))``, which saturates when D
    rejects the fakes confidently. ``z ~ N(0, 1)`` is drawn from ``fold_in(key, 0)``; G
    and D both run in the objective's mode (D's batch statistics are those of the fake
    batch, as in its own update); G's new BatchNorm statistics are returned and D's state
    is returned unchanged. With ``conditional`` the fakes are generated for the batch's
    labels and D sees ``(fakes, labels)``; the real images are not used.

    Args:
      generator: maps ``z`` (or ``(z, labels)``) to images in [-1, 1].
      discriminator: maps images (or ``(images, labels)``) to logits ``(N,)`` or
        ``(N, 1)``.
      latent_dim: the size of ``z``.
      conditional: whether both networks take the labels.

    Returns:
      ``generator_objective(params, state, batch, *, key, train) -> (loss, (new_state,
      metrics))``, metrics ``g_loss``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> g = jn.models.dcgan_generator(4, num_classes=10, base_features=4)
        >>> d = jn.models.dcgan_discriminator(num_classes=10, base_features=4)
        >>> images, labels = jnp.zeros((2, 8, 8, 1)), jnp.array([3, 7])
        >>> _, g_params, g_state = g.init(jax.random.key(0), (jnp.zeros((2, 4)), labels))
        >>> _, d_params, d_state = d.init(jax.random.key(1), (images, labels))
        >>> objective = generator_objective(g, d, 4, conditional=True)
        >>> loss, (new_state, metrics) = objective(
        ...     {"generator": g_params, "discriminator": d_params},
        ...     {"generator": g_state, "discriminator": d_state},
        ...     (images, labels), key=jax.random.key(2), train=True)
        >>> list(metrics), new_state["discriminator"] is d_state
        (['g_loss'], True)
    """
    where = "generator_objective"
    latent_dim = _check_players(where, generator, discriminator, latent_dim, conditional)

    def generator_objective(params, state, batch, *, key, train):
        key, (g_params, d_params), (g_state, d_state), (images, labels) = _inputs(
            where, params, state, batch, key
        )
        n = images.shape[0]
        fake, g_state = _fake_images(
            generator, g_params, g_state, n, labels, latent_dim, key, train, conditional
        )
        fake_in = (fake, labels) if conditional else fake
        fake_logits, _ = discriminator.apply(
            d_params, d_state, fake_in, key=jax.random.fold_in(key, FAKE_KEY), train=train
        )
        fake_logits = _logits(where, fake_logits, n)
        loss = jnp.mean(
            optax.losses.sigmoid_binary_cross_entropy(fake_logits, jnp.ones((n,), jnp.float32))
        )
        return loss, ({"generator": g_state, "discriminator": d_state}, {"g_loss": loss})

    return generator_objective


def sample(
    generator: Layer,
    params: Any,
    state: Any,
    key: Array,
    n: int,
    latent_dim: int,
    *,
    labels: Array | int | None = None,
) -> Array:
    """``n`` images from the generator in inference mode (``train=False``).

    The noise is ``noise(key, n, latent_dim)``: the same key gives the same images from
    the same weights, so a key fixed before training gives comparable grids after every
    epoch. ``params`` and ``state`` are the generator's own, or the two-entry GAN dicts
    ``{"generator": ..., "discriminator": ...}`` (their generator entry is taken).

    Args:
      generator: the generator network.
      params: its params (or the GAN's two-entry params).
      state: its state (or the GAN's two-entry state).
      key: the PRNG key of the noise.
      n: the number of images.
      latent_dim: the size of ``z``.
      labels: for a conditional generator, the classes to draw: an integer array
        ``(n,)`` or one int for all; None for an unconditional one.

    Returns:
      The images ``(n, *image_shape)``, in [-1, 1] for a tanh generator.

    Example:
        >>> import jax, jaxnets as jn
        >>> g = jn.models.mlp_generator(8, hidden=(16,), num_classes=10)
        >>> _, params, state = g.init(jax.random.key(0), (jax.numpy.zeros((1, 8)),
        ...                                                jax.numpy.zeros(1, "int32")))
        >>> sample(g, params, state, jax.random.key(1), 5, 8, labels=3).shape
        (5, 8, 8, 1)
    """
    check_layer("sample", "generator", generator)
    check_key("sample", key)
    n = count("sample", "n", n)
    latent_dim = count("sample", "latent_dim", latent_dim)
    if _is_gan_dict(params):
        params = params["generator"]
    if _is_gan_dict(state):
        state = state["generator"]
    z = noise(key, n, latent_dim)
    inputs: Array | tuple[Array, Array]
    if labels is None:
        inputs = z
    else:
        labels = jnp.asarray(labels)
        if not jnp.issubdtype(labels.dtype, jnp.integer):
            raise TypeError(f"sample: labels must be integers, got dtype {labels.dtype}")
        if labels.ndim == 0:
            labels = jnp.full((n,), labels, labels.dtype)
        if tuple(labels.shape) != (n,):
            raise ValueError(
                f"sample: labels must be one int or have shape ({n},), got shape "
                f"{tuple(labels.shape)}"
            )
        inputs = (z, labels)
    images, _ = generator.apply(
        params, state, inputs, key=jax.random.fold_in(key, GENERATOR_KEY), train=False
    )
    return images


def _is_gan_dict(tree: Any) -> bool:
    return isinstance(tree, dict) and set(tree) == set(_PARTS)
