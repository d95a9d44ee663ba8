"""Generators and discriminators of generative adversarial networks for small images.

Two families, each optionally class-conditional:

- :func:`dcgan_generator` / :func:`dcgan_discriminator`: the deep convolutional GAN of
  Radford, Metz & Chintala (2016): strided (transposed) convolutions, no pooling,
  BatchNorm everywhere except at the generator's output and the discriminator's input,
  ReLU in the generator with tanh at the output, LeakyReLU 0.2 in the discriminator and
  every weight drawn from N(0, 0.02).
- :func:`mlp_generator` / :func:`mlp_discriminator`: the fully connected GAN of
  Goodfellow et al. (2014).

Generators map noise ``z`` of shape ``(N, latent_dim)`` to images ``(N, *image_shape)``
in [-1, 1]; discriminators map images to one logit per example, of shape ``(N,)``. With
``num_classes`` the generator takes the pair ``(z, labels)`` and the discriminator
``(images, labels)``, ``labels`` an integer array ``(N,)`` of classes in
``[0, num_classes)``, conditioned as in Mirza & Osindero (2014): a one-hot code of the
label is concatenated to ``z`` (generators), to the image channels as constant planes
(DCGAN discriminator) or to the flattened image (MLP discriminator). Initialise a
conditional model with arrays, or with an integer ``jax.ShapeDtypeStruct`` for the
labels (a bare shape means float32, which the label input refuses). Labels outside
``[0, num_classes)`` raise a LayerError when they are concrete (an eager call); under
``jit`` they cannot be inspected and get an all-zero code.

The objectives that train them are in :mod:`jaxnets.gan`.

Example:
    >>> import jax, jaxnets as jn
    >>> g_spec, _, _ = jn.shape_tree(jn.models.dcgan_generator(), (4, 64))
    >>> d_spec, _, _ = jn.shape_tree(jn.models.dcgan_discriminator(), g_spec)
    >>> g_spec.shape, d_spec.shape
    ((4, 8, 8, 1), (4,))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnets.activations import Relu, Tanh, check_name
from jaxnets.core import Layer, serial
from jaxnets.layers import Conv, ConvTranspose, Dense, Flatten, Reshape
from jaxnets.models._gan_parts import (  # noqa: F401  (the unused ones stay importable here)
    BN_MOMENTUM,
    _append_label,
    _check_hidden,
    _check_image_shape,
    _check_integer,
    _check_num_classes,
    _check_positive,
    _dcgan_batch_norm,
    _describe,
    _input_check,
    _leaky_relu,
    _one_hot,
)


def dcgan_kernel_init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    """The DCGAN initialisation of every convolution and dense kernel: N(0, 0.02).

    The distribution of ``jax.nn.initializers.normal(0.02)``, drawn as one flat vector and
    reshaped (the same values under JAX's default partitionable threefry): XLA:CPU
    compiles a flat draw much faster than one of a rank-4 kernel shape.

    Args:
      key: a PRNG key.
      shape: the kernel's shape.
      dtype: its dtype.

    Returns:
      An array of ``shape`` and ``dtype``.

    Example:
        >>> import jax
        >>> kernel = dcgan_kernel_init(jax.random.key(0), (4, 4, 16, 16))
        >>> kernel.shape, round(float(kernel.std()), 2)
        ((4, 4, 16, 16), 0.02)
    """
    shape = tuple(shape)
    return (0.02 * jax.random.normal(key, (math.prod(shape),), dtype)).reshape(shape)


# --------------------------------------------------------------------------- DCGAN


def dcgan_generator(
    latent_dim: int = 64,
    *,
    num_classes: int | None = None,
    base_features: int = 64,
    image_shape: tuple[int, int, int] = (8, 8, 1),
    name: str = "dcgan_generator",
) -> Layer:
    """The DCGAN generator (Radford et al. 2016) for small images, e.g. 8x8 digits.

    ``[condition] -> project`` (Dense to ``H/4 x W/4 x 2*base_features``, reshaped) ``->
    project_bn -> project_relu -> up1`` (ConvTranspose 4x4 stride 2 SAME to ``H/2 x W/2 x
    base_features``) ``-> up1_bn -> up1_relu -> to_image`` (ConvTranspose 4x4 stride 2 to
    ``H x W x channels``) ``-> tanh``. BatchNorm (momentum 0.9, scale N(1, 0.02)) follows
    every layer but the output, whose convolution alone has a bias; every kernel is
    N(0, 0.02).

    Args:
      latent_dim: the size of the noise vector ``z``.
      num_classes: if given, the generator is conditional: its input is the pair
        ``(z, labels)``, labels integer ``(N,)`` in ``[0, num_classes)``, and the
        one-hot code of the label is concatenated to ``z`` (layer ``condition``).
      base_features: the channels of the last hidden feature map (twice that before).
      image_shape: ``(height, width, channels)``; height and width multiples of 4.
      name: the model's name.

    Returns:
      A Layer mapping ``z`` ``(N, latent_dim)`` (or ``(z, labels)``) to images
      ``(N, *image_shape)`` in [-1, 1].

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> g = jn.models.dcgan_generator(16, num_classes=10, base_features=8)
        >>> z, labels = jnp.zeros((3, 16)), jnp.array([0, 1, 2])
        >>> spec, params, state = g.init(jax.random.key(0), (z, labels))
        >>> spec.shape, list(state)
        ((3, 8, 8, 1), ['project_bn', 'up1_bn'])
        >>> images, state = g.apply(params, state, (z, labels), key=None, train=False)
        >>> bool(jnp.all(jnp.abs(images) <= 1))
        True
    """
    where = "dcgan_generator"
    check_name(where, name)
    _check_positive(where, "latent_dim", latent_dim)
    _check_positive(where, "base_features", base_features)
    _check_num_classes(where, num_classes)
    height, width, channels = _check_image_shape(where, image_shape, 4)
    start = (height // 4, width // 4, 2 * base_features)
    layers: list[tuple[str, Layer]] = [("input", _input_check(name, (latent_dim,), num_classes))]
    if num_classes is not None:
        layers.append(("condition", _append_label(num_classes)))
    layers += [
        ("project", Dense(math.prod(start), use_bias=False, kernel_init=dcgan_kernel_init)),
        ("reshape", Reshape(start)),
        ("project_bn", _dcgan_batch_norm()),
        ("project_relu", Relu()),
        (
            "up1",
            ConvTranspose(
                base_features, 4, 2, "SAME", use_bias=False, kernel_init=dcgan_kernel_init
            ),
        ),
        ("up1_bn", _dcgan_batch_norm()),
        ("up1_relu", Relu()),
        ("to_image", ConvTranspose(channels, 4, 2, "SAME", kernel_init=dcgan_kernel_init)),
        ("tanh", Tanh()),
    ]
    return serial(*layers, name=name)


def dcgan_discriminator(
    *,
    num_classes: int | None = None,
    base_features: int = 64,
    image_shape: tuple[int, int, int] = (8, 8, 1),
    name: str = "dcgan_discriminator",
) -> Layer:
    """The DCGAN discriminator (Radford et al. 2016), the mirror of :func:`dcgan_generator`.

    ``[condition] -> conv1`` (Conv 4x4 stride 2 SAME, ``base_features``, with bias, no
    BatchNorm on the input) ``-> lrelu1 -> conv2`` (Conv 4x4 stride 2, ``2 *
    base_features``) ``-> conv2_bn -> lrelu2 -> flatten -> logit`` (Dense 1) ``->
    squeeze``. LeakyReLU slope 0.2, BatchNorm momentum 0.9 with scale N(1, 0.02), kernels
    N(0, 0.02).

    Args:
      num_classes: if given, the discriminator is conditional: its input is the pair
        ``(images, labels)``, labels integer ``(N,)`` in ``[0, num_classes)``, whose
        one-hot code is concatenated to the image channels as constant planes.
      base_features: the channels of the first feature map (twice that in the second).
      image_shape: ``(height, width, channels)`` of the images.
      name: the model's name.

    Returns:
      A Layer mapping images ``(N, *image_shape)`` (or ``(images, labels)``) to one
      logit per example, shape ``(N,)``: the log-odds that the image is real.

    Example:
        >>> import jax, jaxnets as jn
        >>> d = jn.models.dcgan_discriminator()
        >>> spec, params, state = jn.shape_tree(d, (5, 8, 8, 1))
        >>> spec.shape, list(params), list(state)
        ((5,), ['conv1', 'conv2', 'conv2_bn', 'logit'], ['conv2_bn'])
    """
    where = "dcgan_discriminator"
    check_name(where, name)
    _check_positive(where, "base_features", base_features)
    _check_num_classes(where, num_classes)
    image_shape = _check_image_shape(where, image_shape)
    layers: list[tuple[str, Layer]] = [("input", _input_check(name, image_shape, num_classes))]
    if num_classes is not None:
        layers.append(("condition", _append_label(num_classes)))
    layers += [
        ("conv1", Conv(base_features, 4, 2, "SAME", kernel_init=dcgan_kernel_init)),
        ("lrelu1", _leaky_relu()),
        (
            "conv2",
            Conv(2 * base_features, 4, 2, "SAME", use_bias=False, kernel_init=dcgan_kernel_init),
        ),
        ("conv2_bn", _dcgan_batch_norm()),
        ("lrelu2", _leaky_relu()),
        ("flatten", Flatten()),
        ("logit", Dense(1, kernel_init=dcgan_kernel_init)),
        ("squeeze", Reshape(())),
    ]
    return serial(*layers, name=name)


# --------------------------------------------------------------------------- MLP


def mlp_generator(
    latent_dim: int = 64,
    *,
    hidden: Sequence[int] = (256, 256),
    num_classes: int | None = None,
    image_shape: tuple[int, int, int] = (8, 8, 1),
    name: str = "mlp_generator",
) -> Layer:
    """The fully connected generator of Goodfellow et al. (2014).

    ``[condition] -> hidden_0 -> hidden_1 ... -> to_image`` (Dense to ``H * W * C``)
    ``-> tanh -> reshape``; each ``hidden_i`` is a ``serial`` of ``dense`` and ``act``
    (ReLU). Kernels are Glorot uniform (the library's default), biases zero.

    Args:
      latent_dim: the size of the noise vector ``z``.
      hidden: the widths of the hidden layers.
      num_classes: if given, the input is the pair ``(z, labels)``, labels integer
        ``(N,)`` in ``[0, num_classes)``, whose one-hot code is concatenated to ``z``.
      image_shape: ``(height, width, channels)`` of the images.
      name: the model's name.

    Returns:
      A Layer mapping ``z`` ``(N, latent_dim)`` (or ``(z, labels)``) to images
      ``(N, *image_shape)`` in [-1, 1].

    Example:
        >>> import jax, jaxnets as jn
        >>> spec, params, _ = jn.shape_tree(jn.models.mlp_generator(hidden=(32,)), (2, 64))
        >>> spec.shape, list(params)
        ((2, 8, 8, 1), ['hidden_0', 'to_image'])
    """
    where = "mlp_generator"
    check_name(where, name)
    _check_positive(where, "latent_dim", latent_dim)
    _check_num_classes(where, num_classes)
    hidden = _check_hidden(where, hidden)
    image_shape = _check_image_shape(where, image_shape)
    layers: list[tuple[str, Layer]] = [("input", _input_check(name, (latent_dim,), num_classes))]
    if num_classes is not None:
        layers.append(("condition", _append_label(num_classes)))
    for i, width in enumerate(hidden):
        layers.append((f"hidden_{i}", serial(("dense", Dense(width)), ("act", Relu()))))
    layers += [
        ("to_image", Dense(math.prod(image_shape))),
        ("tanh", Tanh()),
        ("reshape", Reshape(image_shape)),
    ]
    return serial(*layers, name=name)


def mlp_discriminator(
    *,
    hidden: Sequence[int] = (256, 256),
    num_classes: int | None = None,
    image_shape: tuple[int, int, int] = (8, 8, 1),
    name: str = "mlp_discriminator",
) -> Layer:
    """The fully connected discriminator of Goodfellow et al. (2014), with LeakyReLU 0.2.

    ``flatten`` (or ``condition``) ``-> hidden_0 -> hidden_1 ... -> logit`` (Dense 1)
    ``-> squeeze``; each ``hidden_i`` is a ``serial`` of ``dense`` and ``act``. Kernels
    are Glorot uniform, biases zero.

    Args:
      hidden: the widths of the hidden layers.
      num_classes: if given, the input is the pair ``(images, labels)``, labels integer
        ``(N,)`` in ``[0, num_classes)``, whose one-hot code is concatenated to the
        flattened image (layer ``condition``, in place of ``flatten``).
      image_shape: ``(height, width, channels)`` of the images.
      name: the model's name.

    Returns:
      A Layer mapping images ``(N, *image_shape)`` (or ``(images, labels)``) to one
      logit per example, shape ``(N,)``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> d = jn.models.mlp_discriminator(hidden=(32,), num_classes=10)
        >>> images, labels = jnp.zeros((4, 8, 8, 1)), jnp.arange(4)
        >>> spec, params, _ = d.init(jax.random.key(0), (images, labels))
        >>> spec.shape, params["hidden_0"]["dense"]["kernel"].shape
        ((4,), (74, 32))
    """
    where = "mlp_discriminator"
    check_name(where, name)
    _check_num_classes(where, num_classes)
    hidden = _check_hidden(where, hidden)
    image_shape = _check_image_shape(where, image_shape)
    layers: list[tuple[str, Layer]] = [("input", _input_check(name, image_shape, num_classes))]
    if num_classes is not None:
        layers.append(("condition", _append_label(num_classes, flatten=True)))
    else:
        layers.append(("flatten", Flatten()))
    for i, width in enumerate(hidden):
        layers.append((f"hidden_{i}", serial(("dense", Dense(width)), ("act", _leaky_relu()))))
    layers += [("logit", Dense(1)), ("squeeze", Reshape(()))]
    return serial(*layers, name=name)
