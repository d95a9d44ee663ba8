"""Bad inputs of the losses and metrics (eager calls: shapes and label values checked)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from bad_input import Bad

import jaxnets as jn
from jaxnets import losses

AREA = "losses"

LOGITS = jnp.zeros((4, 3))
COLUMN = jnp.zeros((4, 1))


def _ids(*values):
    return jnp.array(values, jnp.int32)


CASES = [
    Bad(
        AREA,
        "softmax int labels as a column",
        lambda: losses.softmax_cross_entropy(LOGITS, jnp.zeros((4, 1), jnp.int32)),
        ValueError,
        ("labels", "(4,)", "(4, 1)"),
    ),
    Bad(
        AREA,
        "softmax one-hot of the wrong width",
        lambda: losses.softmax_cross_entropy(LOGITS, jnp.zeros((4, 2))),
        ValueError,
        ("labels", "(4, 3)", "(4, 2)"),
    ),
    Bad(
        AREA,
        "softmax class ids as floats",
        lambda: losses.softmax_cross_entropy(LOGITS, jnp.array([0.0, 1.0, 2.0, 1.0])),
        ValueError,
        ("labels", "(4,)", "astype"),
    ),
    Bad(
        AREA,
        "softmax label -1",
        lambda: losses.softmax_cross_entropy(LOGITS, _ids(0, 1, -1, 2)),
        ValueError,
        ("softmax_cross_entropy", "-1", "[0, 3)"),
    ),
    Bad(
        AREA,
        "softmax label equals classes",
        lambda: losses.softmax_cross_entropy(LOGITS, _ids(0, 3, 1, 2)),
        ValueError,
        ("labels", "got 3", "[0, 3)"),
    ),
    Bad(
        AREA,
        "softmax scalar logits",
        lambda: losses.softmax_cross_entropy(jnp.float32(1.0), jnp.int32(0)),
        ValueError,
        ("logits", "class axis", "()"),
    ),
    Bad(
        AREA,
        "softmax logits a string",
        lambda: losses.softmax_cross_entropy("logits", _ids(0)),
        TypeError,
        ("logits", "'logits'", "array"),
    ),
    Bad(
        AREA,
        "sigmoid labels of another size",
        lambda: losses.sigmoid_binary_cross_entropy(COLUMN, jnp.zeros((4, 2))),
        ValueError,
        ("sigmoid_binary_cross_entropy", "(4, 2)", "(4, 1)"),
    ),
    Bad(
        AREA,
        "sigmoid label 2",
        lambda: losses.sigmoid_binary_cross_entropy(COLUMN, jnp.array([0.0, 1.0, 2.0, 0.0])),
        ValueError,
        ("labels", "2.0", "[0, 1]"),
    ),
    Bad(
        AREA,
        "sigmoid label -1",
        lambda: losses.sigmoid_binary_cross_entropy(COLUMN, jnp.array([0, 1, -1, 0])),
        ValueError,
        ("labels", "-1", "binary targets"),
    ),
    Bad(
        AREA,
        "hinge label 3",
        lambda: losses.hinge(COLUMN, jnp.array([1, -1, 3, 1])),
        ValueError,
        ("hinge", "3", "-1/+1"),
    ),
    Bad(
        AREA,
        "hinge labels of another size",
        lambda: losses.hinge(COLUMN, jnp.ones(8)),
        ValueError,
        ("hinge", "labels", "(8,)"),
    ),
    Bad(
        AREA,
        "squared_error targets of another size",
        lambda: losses.squared_error(LOGITS, jnp.zeros((4, 2))),
        ValueError,
        ("squared_error", "targets", "(4, 2)"),
    ),
    Bad(
        AREA,
        "squared_error targets None",
        lambda: losses.squared_error(LOGITS, None),
        TypeError,
        ("squared_error", "targets", "None"),
    ),
    Bad(
        AREA,
        "get unknown name",
        lambda: losses.get("cross-entropy"),
        ValueError,
        ("loss", "'cross-entropy'", "'cross_entropy'"),
    ),
    Bad(AREA, "get a number", lambda: losses.get(0.5), TypeError, ("loss", "0.5", "function")),
    Bad(AREA, "get None", lambda: losses.get(None), TypeError, ("loss", "None", "loss name")),
    Bad(
        AREA,
        "accuracy labels of another shape",
        lambda: losses.accuracy(LOGITS, jnp.zeros((4, 2), jnp.int32)),
        ValueError,
        ("correct", "(4, 2)", "(4, 3)"),
    ),
    Bad(
        AREA,
        "correct labels of another length",
        lambda: losses.correct(LOGITS, _ids(0, 1, 2)),
        ValueError,
        ("labels", "(3,)", "class ids"),
    ),
    Bad(
        AREA,
        "fit with a loss from another library",
        lambda: jn.fit(
            jn.serial(jn.Dense(3)),
            jn.data.ArrayDataset(np.ones((4, 2), np.float32), np.zeros(4, np.int32)),
            optimizer=__import__("optax").sgd(0.1),
            loss=object(),
            epochs=1,
            batch_size=4,
            progress=False,
        ),
        TypeError,
        ("fit", "loss", "object"),
    ),
]
