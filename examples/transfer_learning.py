"""Transfer learning: a pretrained backbone without its top, frozen, a new head, then the
top stage unfrozen with a lower learning rate.

Usage:
    python examples/transfer_learning.py                  # self-contained (see below)
    python examples/transfer_learning.py --backbone resnet50 \\
        --weights resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 --size 32

With ``--weights``, the backbone is a keras.applications model of the zoo (``resnet50``,
``vgg16``, ``inception_v3``, ``xception``) built with ``include_top=False`` and loaded from
the Keras weight file you point to (``jaxnets.interop.keras.load_weights``; nothing is
downloaded); the digits are upsampled to ``--size``, given three channels and scaled as
the weights expect (``preprocess_input``). Without ``--weights`` the example is
self-contained: the backbone, a CIFAR ResNet-8 (``stage1``..``stage3``), is first
pretrained briefly on one task, the digits 0-4, and then transferred to another, the
digits 5-9, which it has never seen.

The transfer runs in two phases, the recipe of the Keras transfer-learning guide:

1. The backbone is frozen by path (``jaxnets.optim.freeze(optimizer, ["backbone/*"])``:
   zero updates, no optimizer state) and runs in inference mode, so its BatchNorm
   statistics stay those it was trained with; only the new ``head`` trains.
2. The top stage of the backbone (``backbone/stage3/*``, ``stage5`` of ResNet-50, ...)
   is unfrozen with a learning rate ten times lower than the head's, still in inference
   mode; the rest stays frozen.

Prints ``test_accuracy=...`` on the new task's test half after each phase.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import optax

import jaxnets as jn

#: The last stage of each backbone: what phase 2 unfreezes.
TOP_STAGE = {
    "resnet8": "stage3",
    "resnet50": "stage5",
    "vgg16": "block5",
    "inception_v3": "mixed10",
    "xception": "block14",
}


def digits_task(classes: Sequence[int], size: int, channels: int = 1):
    """The digits of ``classes`` (labels renumbered 0, 1, ...), upsampled to ``size``.

    Args:
      classes: the digits kept, in label order.
      size: the images' new height and width (bilinear).
      channels: 1 (grey) or 3 (the grey copied to RGB).

    Returns:
      ``(train, test)`` ArrayDatasets, images in [0, 1].
    """
    parts = []
    for data in jn.data.load_digits():
        keep = np.isin(data.labels, classes)
        x = data.inputs[keep]
        x = jax.image.resize(x, (len(x), size, size, 1), "bilinear")
        x = np.repeat(np.clip(np.asarray(x, np.float32), 0, 1), channels, axis=-1)
        y = np.searchsorted(np.asarray(classes), data.labels[keep]).astype(np.int32)
        parts.append(jn.data.ArrayDataset(x, y))
    return parts[0], parts[1]


def inference_mode(layer: jn.Layer) -> jn.Layer:
    """``layer`` that always runs as at inference (``train=False``): BatchNorm on its
    moving averages, whatever the step asks. The same params and state as ``layer``."""

    def apply(params, state, x, *, key=None, train):
        return layer.apply(params, state, x, key=key, train=False)

    return jn.Layer(layer.init, apply, "InferenceMode", layer.name)


def classifier(backbone: jn.Layer, num_classes: int) -> jn.Layer:
    """``backbone`` (pooled features) and a ``head`` Dense layer of logits."""
    return jn.serial(("backbone", backbone), ("head", jn.Dense(num_classes)))


def phase_two_optimizer(params: Any, top: str, lr: float) -> optax.GradientTransformation:
    """Adam at ``lr`` for the head, ``lr / 10`` for ``backbone/<top>/*``, the rest frozen."""
    top_mask = jn.optim.path_mask(params, [f"backbone/{top}/*"])
    backbone_mask = jn.optim.path_mask(params, ["backbone/*"])

    def labels(tree):
        return jax.tree.map(
            lambda t, b: "top" if t else ("frozen" if b else "head"), top_mask, backbone_mask
        )

    transforms = {"head": optax.adam(lr), "top": optax.adam(lr / 10), "frozen": optax.set_to_zero()}
    return optax.multi_transform(transforms, labels)


def _fit(model, data, optimizer, params, state, epochs, batch_size, seed):
    # host copies: the train step donates its state, and the caller keeps what it passed
    params, state = jax.device_get((params, state))
    ts = jn.TrainState(np.int32(0), params, state, optimizer.init(params), jax.random.key(seed))
    result = jn.fit(
        model,
        data,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        train_state=ts,
        seed=seed,
        progress=False,
    )
    return result.state


def _accuracy(model, ts, data) -> float:
    return jn.evaluate(jn.make_eval_step(model, "softmax_cross_entropy"), ts, data)["accuracy"]


def pretrain(backbone: jn.Layer, train, test, epochs: int, batch_size: int, seed: int):
    """Train ``backbone`` with a temporary head on ``train``.

    Returns:
      ``(params, state, test_accuracy)``: the backbone's and the accuracy on ``test``.
    """
    model = classifier(backbone, int(train.labels.max()) + 1)
    optimizer = optax.adam(3e-3)
    spec = (batch_size, *train.inputs.shape[1:])
    ts = jn.create_train_state(model, optimizer, spec, seed=seed)
    ts = _fit(model, train, optimizer, ts.params, ts.state, epochs, batch_size, seed)
    return ts.params["backbone"], ts.state.get("backbone", {}), _accuracy(model, ts, test)


def transfer(
    backbone: jn.Layer,
    backbone_params: Any,
    backbone_state: Any,
    train,
    test,
    *,
    top: str,
    epochs: tuple[int, int] = (10, 10),
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The two phases on a new task: a new head on the frozen backbone, then the top
    stage unfrozen at a tenth of the learning rate.

    Args:
      backbone: the pretrained network without its top (pooled features out).
      backbone_params: its params.
      backbone_state: its state.
      train: the new task's training examples.
      test: its test examples.
      top: the name of the backbone's top stage.
      epochs: the epochs of each phase.
      lr: the head's learning rate.
      batch_size: examples per step.
      seed: the seed of the head's initialisation and the shuffles.

    Returns:
      For each phase, ``{"phase", "params", "state", "test_accuracy"}``.
    """
    model = classifier(inference_mode(backbone), int(train.labels.max()) + 1)
    spec = (batch_size, *train.inputs.shape[1:])
    fresh = jn.create_train_state(model, optax.adam(lr), spec, seed=seed)
    params = {**fresh.params, "backbone": backbone_params}
    state = {**fresh.state, "backbone": backbone_state} if backbone_state else fresh.state
    phases = [
        ("head only", jn.optim.freeze(optax.adam(lr), ["backbone/*"])),
        (f"{top} unfrozen at lr {lr / 10:g}", phase_two_optimizer(params, top, lr)),
    ]
    results = []
    for (name, optimizer), n in zip(phases, epochs, strict=True):
        ts = _fit(model, train, optimizer, params, state, n, batch_size, seed)
        params, state = jax.device_get((ts.params, ts.state))
        results.append(
            {
                "phase": name,
                "params": params,
                "state": state,
                "test_accuracy": _accuracy(model, ts, test),
            }
        )
    return results


def _keras_backbone(name: str, weights: str, size: int):
    from jaxnets.interop.keras import load_weights, preprocess_input
    from jaxnets.interop.keras.preprocess import MODES

    backbone = getattr(jn.models, name)(include_top=False, pooling="avg")
    params, state = load_weights(backbone, weights, (1, size, size, 3))

    def scale(data):
        x = np.asarray(preprocess_input(data.inputs * 255.0, MODES[name]), np.float32)
        return jn.data.ArrayDataset(x, data.labels)

    return backbone, params, state, scale


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the example; returns the phases of :func:`transfer`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", choices=sorted(TOP_STAGE), default="resnet8")
    parser.add_argument("--weights", help="a Keras weight file of --backbone without its top")
    parser.add_argument("--size", type=int, default=16, help="image size (default 16)")
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, nargs=2, default=(10, 10), metavar=("P1", "P2"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if (args.weights is None) != (args.backbone == "resnet8"):
        parser.error(
            "--weights goes with a keras backbone (resnet50, vgg16, ...), and resnet8 (the "
            "self-contained default) takes none"
        )
    new_task = [5, 6, 7, 8, 9]
    if args.weights is None:
        backbone = jn.models.cifar_resnet(8, include_top=False, pooling="avg")
        old_train, old_test = digits_task([0, 1, 2, 3, 4], args.size)
        params, state, accuracy = pretrain(
            backbone, old_train, old_test, args.pretrain_epochs, args.batch_size, args.seed
        )
        print(
            f"pretrained {args.backbone} on the digits 0-4 for {args.pretrain_epochs} epochs: "
            f"pretrain_test_accuracy={accuracy:.4f}"
        )
        train, test = digits_task(new_task, args.size)
    else:
        backbone, params, state, scale = _keras_backbone(args.backbone, args.weights, args.size)
        print(f"loaded {args.backbone} (include_top=False) from {args.weights}")
        train, test = (scale(d) for d in digits_task(new_task, args.size, channels=3))
    results = transfer(
        backbone,
        params,
        state,
        train,
        test,
        top=TOP_STAGE[args.backbone],
        epochs=tuple(args.epochs),
        batch_size=args.batch_size,
        seed=args.seed,
    )
    for i, phase in enumerate(results, start=1):
        accuracy = phase["test_accuracy"]
        print(f"phase {i} ({phase['phase']}) on the digits 5-9: test_accuracy={accuracy:.4f}")
    return results


if __name__ == "__main__":
    main()
