"""Training a GAN with :func:`jaxnets.fit`: two named parts, two updates, one step.

The generator and the discriminator are the parts ``"generator"`` and ``"discriminator"``
of one train state, each with its own Adam; every step updates the discriminator on a
real and a fake batch, then the generator against the updated discriminator, inside one
compiled function. :class:`SampleGrid` draws a fixed noise batch after every epoch, so
the grids are comparable over training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.core import Layer
from jaxnets.core.arguments import count, flag
from jaxnets.core.children import check_layer
from jaxnets.data.dataset import ArrayDataset
from jaxnets.gan._checks import check_training
from jaxnets.gan.objectives import discriminator_objective, generator_objective, noise
from jaxnets.train.callbacks import Callback, Run
from jaxnets.train.loop import FitResult, fit
from jaxnets.train.state import create_train_state

GENERATOR, DISCRIMINATOR = "generator", "discriminator"


def make_sampler(generator: Layer, *, conditional: bool) -> Any:
    """A jitted sampler that runs the generator in inference mode.

    Args:
      generator: the generator network.
      conditional: whether the generator takes ``(z, labels)`` rather than ``z``.

    Returns:
      ``sampler(params, state, z, labels=None) -> images``, taking the generator's own
      params and state.
    """

    check_layer("make_sampler", "generator", generator)
    flag("make_sampler", "conditional", conditional)

    def sampler(params, state, z, labels=None):
        inputs = z if not conditional else (z, labels)
        return generator.apply(params, state, inputs, key=None, train=False)[0]

    return jax.jit(sampler)


class SampleGrid(Callback):
    """After every ``every`` epochs, writes the generator's images of one fixed noise
    batch to ``directory/epoch_<n>.png`` (and ``final.png`` at the end).

    For a conditional generator the grid has one row per class: ``per_class`` samples of
    each, the noise the same in every row.

    Args:
      generator: the generator network (the part ``"generator"`` of the train state).
      latent_dim: the size of its noise.
      directory: where the PNG files go (made if missing).
      num_classes: the classes of a conditional generator; None for an unconditional one.
      n: images in an unconditional grid.
      per_class: images per class in a conditional grid.
      seed: the seed of the fixed noise.
      every: write every so many epochs.

    Example:
        >>> import jaxnets as jn
        >>> grid = SampleGrid(jn.models.mlp_generator(8), 8, "/tmp/grids")
        >>> grid.noise.shape
        (64, 8)
    """

    def __init__(
        self,
        generator: Layer,
        latent_dim: int,
        directory: str,
        *,
        num_classes: int | None = None,
        n: int = 64,
        per_class: int = 10,
        seed: int = 0,
        every: int = 1,
    ):
        where = "SampleGrid"
        check_layer(where, "generator", generator)
        check_training(where, latent_dim=latent_dim, directory=directory, n=n)
        check_training(where, per_class=per_class, seed=seed, every=every)
        if num_classes is not None:
            count(where, "num_classes", num_classes)
        self.directory = directory
        self.every = every
        self.num_classes = num_classes
        self.written: list[str] = []
        key = jax.random.key(seed)
        if num_classes is None:
            self.noise = noise(key, n, latent_dim)
            self.labels = None
        else:
            z = noise(key, per_class, latent_dim)
            self.noise = jnp.tile(z, (num_classes, 1))
            self.labels = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), per_class)
        self._sampler = make_sampler(generator, conditional=num_classes is not None)

    def images(self, train_state: Any) -> np.ndarray:
        """The grid's images from ``train_state``'s generator, in its output range."""
        params, state = train_state.params[GENERATOR], train_state.state[GENERATOR]
        return np.asarray(self._sampler(params, state, self.noise, self.labels))

    def write(self, train_state: Any, name: str) -> str:
        """Write the grid of ``train_state`` as ``directory/<name>.png``; returns the path."""
        from jaxnets.plots import plot_samples

        os.makedirs(self.directory, exist_ok=True)
        columns = None if self.num_classes is None else len(self.noise) // self.num_classes
        path = plot_samples(
            self.images(train_state),
            os.path.join(self.directory, f"{name}.png"),
            columns=columns,
            value_range=(-1.0, 1.0),
        )
        self.written.append(path)
        return path

    def on_epoch_end(self, run: Run, logs: dict[str, float]) -> None:
        if run.epoch % self.every == 0:
            self.write(run.train_state, f"epoch_{run.epoch:04d}")

    def on_train_end(self, run: Run) -> None:
        if run.epoch:
            self.write(run.train_state, "final")


def train_gan(
    generator: Layer,
    discriminator: Layer,
    latent_dim: int,
    data: ArrayDataset,
    *,
    conditional: bool = False,
    epochs: int = 100,
    batch_size: int = 32,
    learning_rate: float = 2e-4,
    beta1: float = 0.5,
    label_smoothing: float = 0.0,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> FitResult:
    """Train a GAN on ``data`` (images in the generator's range, [-1, 1] for tanh).

    Adam with ``learning_rate`` and ``beta1`` for each player (DCGAN's 2e-4 and 0.5 by
    default), the non-saturating loss, optional one-sided label smoothing, BatchNorm
    state of both networks threaded through the step. The history holds
    ``discriminator_loss``, ``generator_loss``, ``d_real`` and ``d_fake`` (the mean
    probability D gives real and fake images) per epoch.

    Args:
      generator: maps noise ``(N, latent_dim)`` (and labels, if conditional) to images.
      discriminator: maps images (and labels) to one logit per image.
      latent_dim: the size of the noise.
      data: ``(images, labels)``; labels are used only when ``conditional``.
      conditional: train a class-conditional GAN.
      epochs: passes over ``data``.
      batch_size: images per step (the last partial batch is dropped).
      learning_rate: Adam's learning rate, for both players.
      beta1: Adam's first-moment decay.
      label_smoothing: the real target of D is ``1 - label_smoothing``.
      seed: initialisation, noise and shuffling.
      callbacks: passed to :func:`jaxnets.fit` (e.g. a :class:`SampleGrid`).
      progress: show the progress bar.

    Returns:
      :func:`jaxnets.fit`'s result: the train state with both parts, and the history.

    Example:
        >>> import numpy as np, jaxnets as jn
        >>> from jaxnets import gan
        >>> data = jn.data.ArrayDataset(np.zeros((16, 8, 8, 1), np.float32), np.zeros(16, int))
        >>> g = jn.models.mlp_generator(4, hidden=(8,))
        >>> d = jn.models.mlp_discriminator(hidden=(8,))
        >>> result = gan.train_gan(g, d, 4, data, epochs=1, batch_size=8, progress=False)
        >>> int(result.state.step), sorted(result.state.params)
        (2, ['discriminator', 'generator'])
    """
    where = "train_gan"
    check_layer(where, "generator", generator)
    check_layer(where, "discriminator", discriminator)
    if not isinstance(data, ArrayDataset):
        raise TypeError(
            f"{where}: data must be an ArrayDataset (jaxnets.data.ArrayDataset(images, "
            f"labels)), got {type(data).__name__}"
        )
    check_training(where, latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, seed=seed)
    check_training(where, learning_rate=learning_rate, beta1=beta1, label_smoothing=label_smoothing)
    flag(where, "conditional", conditional)
    flag(where, "progress", progress)
    adam = optax.adam(learning_rate, b1=beta1)
    models = {GENERATOR: generator, DISCRIMINATOR: discriminator}
    optimizers = {GENERATOR: adam, DISCRIMINATOR: adam}
    images = jax.ShapeDtypeStruct((batch_size, *data.inputs.shape[1:]), data.inputs.dtype)
    z = jax.ShapeDtypeStruct((batch_size, latent_dim), jnp.float32)
    if conditional:
        labels = jax.ShapeDtypeStruct((batch_size,), jnp.int32)
        specs: dict[str, Any] = {GENERATOR: (z, labels), DISCRIMINATOR: (images, labels)}
    else:
        specs = {GENERATOR: z, DISCRIMINATOR: images}
    ts = create_train_state(models, optimizers, specs, seed=seed)
    objectives = [
        (
            DISCRIMINATOR,
            discriminator_objective(
                generator,
                discriminator,
                latent_dim,
                conditional=conditional,
                label_smoothing=label_smoothing,
            ),
        ),
        (
            GENERATOR,
            generator_objective(generator, discriminator, latent_dim, conditional=conditional),
        ),
    ]
    if conditional:
        data = ArrayDataset(data.inputs, np.asarray(data.labels, np.int32))
    return fit(
        models,
        data,
        optimizer=optimizers,
        loss=objectives,
        train_state=ts,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        callbacks=callbacks,
        progress=progress,
    )


def plot_gan_history(history: dict[str, list[float]], path: str) -> str:
    """Both players' losses in one panel and D's mean outputs on real and fake images in
    another, per epoch; returns ``path``.

    Args:
      history: :func:`train_gan`'s history.
      path: the PNG file to write.

    Returns:
      ``path``.
    """
    from jaxnets._plot_args import _path
    from jaxnets.plots import _pyplot, _save

    if not isinstance(history, dict):
        raise TypeError(f"plot_gan_history: history must be a dict, got {type(history).__name__}")
    path = _path("plot_gan_history", path)
    plt = _pyplot()
    fig, (losses, outputs) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, label in (("discriminator_loss", "discriminator"), ("generator_loss", "generator")):
        values = history.get(name, [])
        losses.plot(range(1, len(values) + 1), values, label=label)
    losses.set_ylabel("loss")
    for name, label in (("d_real", "D(real)"), ("d_fake", "D(G(z))")):
        values = history.get(name, [])
        outputs.plot(range(1, len(values) + 1), values, label=label)
    outputs.set_ylabel("mean probability of real")
    for ax in (losses, outputs):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save(fig, path)
