"""Bad inputs of fit and the training API (make_train_step, make_eval_step,
create_train_state, evaluate, the callbacks): each is refused before anything compiles."""

from __future__ import annotations

import numpy as np
import optax
from bad_input import Bad

import jaxnets as jn
from jaxnets.train.callbacks import Callback, CSVLogger, EarlyStopping, LearningRateLogger
from jaxnets.train.loop import build_steps

AREA = "fit"


def _model():
    return jn.serial(jn.Dense(3))


def _data(n=8, labels=None, inputs=None):
    x = np.ones((n, 2), np.float32) if inputs is None else inputs
    y = (np.arange(n) % 3).astype(np.int32) if labels is None else labels
    return jn.data.ArrayDataset(x, y)


def _fit(**changes):
    kwargs = dict(optimizer=optax.sgd(0.1), epochs=1, batch_size=4, progress=False)
    model = changes.pop("model") if "model" in changes else _model()
    data = changes.pop("train_data") if "train_data" in changes else _data()
    kwargs.update(changes)
    return lambda: jn.fit(model, data, **kwargs)


def _labels(*values, dtype=np.int32):
    return np.array(values, dtype)


def _ts():
    return jn.create_train_state(_model(), optax.sgd(0.1), (4, 2))


class _NoHooks:
    pass


class _BadHook(Callback):
    on_epoch_end = 3  # type: ignore[assignment]


def _with_nan():
    x = np.ones((8, 2), np.float32)
    x[5, 1] = np.nan
    return _data(inputs=x)


def _pairs_objective(params, state, batch, *, key, train):
    return 0.0, (state, {})


CASES = [
    # the optimizer
    Bad(
        AREA,
        "optimizer name",
        _fit(optimizer="adam"),
        TypeError,
        ("optimizer", "'adam'", "GradientTransformation"),
    ),
    Bad(
        AREA,
        "optimizer factory",
        _fit(optimizer=optax.adam),
        TypeError,
        ("optimizer", "optax.adam", "call it"),
    ),
    Bad(
        AREA,
        "optimizer None",
        _fit(optimizer=None),
        TypeError,
        ("optimizer", "None", "GradientTransformation"),
    ),
    Bad(
        AREA,
        "optimizer dict for one model",
        _fit(optimizer={"net": optax.sgd(0.1)}),
        TypeError,
        ("optimizer", "['net']", "dict of models"),
    ),
    # counts and flags
    Bad(AREA, "epochs negative", _fit(epochs=-1), ValueError, ("epochs", "-1", "int >= 0")),
    Bad(AREA, "epochs float", _fit(epochs=2.5), TypeError, ("epochs", "2.5", "int >= 0")),
    Bad(AREA, "epochs string", _fit(epochs="10"), TypeError, ("epochs", "'10'")),
    Bad(
        AREA, "batch_size zero", _fit(batch_size=0), ValueError, ("batch_size", "0", "positive int")
    ),
    Bad(
        AREA,
        "batch_size bool",
        _fit(batch_size=True),
        TypeError,
        ("batch_size", "True", "positive int"),
    ),
    Bad(AREA, "batch_size float", _fit(batch_size=4.0), TypeError, ("batch_size", "4.0")),
    Bad(
        AREA,
        "batch_size above examples",
        _fit(batch_size=16),
        ValueError,
        ("batch_size 16", "8 training examples"),
    ),
    Bad(
        AREA,
        "eval_batch_size zero",
        _fit(eval_batch_size=0, val_data=_data()),
        ValueError,
        ("eval_batch_size", "0", "positive int"),
    ),
    Bad(AREA, "seed negative", _fit(seed=-1), ValueError, ("seed", "-1", "int >= 0")),
    Bad(AREA, "seed string", _fit(seed="0"), TypeError, ("seed", "'0'")),
    Bad(
        AREA,
        "progress string",
        _fit(progress="False"),
        TypeError,
        ("progress", "'False'", "True or False"),
    ),
    Bad(AREA, "resume string", _fit(resume="yes"), TypeError, ("resume", "'yes'")),
    # callbacks
    Bad(
        AREA,
        "callbacks a single callback",
        _fit(callbacks=EarlyStopping("loss")),
        TypeError,
        ("callbacks", "EarlyStopping", "list"),
    ),
    Bad(
        AREA,
        "callbacks holds a class",
        _fit(callbacks=[EarlyStopping]),
        TypeError,
        ("callbacks[0]", "class EarlyStopping", "instance"),
    ),
    Bad(
        AREA,
        "callbacks holds a function",
        _fit(callbacks=[print]),
        TypeError,
        ("callbacks[0]", "print", "on_epoch_end"),
    ),
    Bad(
        AREA,
        "callbacks holds an object without hooks",
        _fit(callbacks=[_NoHooks()]),
        TypeError,
        ("callbacks[0]", "_NoHooks", "Callback"),
    ),
    Bad(
        AREA,
        "callback hook not a method",
        _fit(callbacks=[_BadHook()]),
        TypeError,
        ("callbacks[0].on_epoch_end", "3", "method"),
    ),
    Bad(
        AREA, "callbacks a string", _fit(callbacks="csv"), TypeError, ("callbacks", "'csv'", "list")
    ),
    Bad(
        AREA,
        "EarlyStopping monitor not in history",
        _fit(callbacks=[EarlyStopping("val_acc")], val_data=_data()),
        ValueError,
        ("EarlyStopping", "'val_acc'", "val_accuracy"),
    ),
    Bad(
        AREA,
        "EarlyStopping patience zero",
        lambda: EarlyStopping(patience=0),
        ValueError,
        ("EarlyStopping", "patience", "0"),
    ),
    Bad(
        AREA,
        "EarlyStopping mode",
        lambda: EarlyStopping(mode="maximize"),
        ValueError,
        ("EarlyStopping", "mode", "'maximize'"),
    ),
    Bad(
        AREA,
        "LearningRateLogger schedule a number",
        lambda: LearningRateLogger(0.1),
        TypeError,
        ("LearningRateLogger", "schedule", "0.1"),
    ),
    Bad(
        AREA,
        "CSVLogger path None",
        lambda: CSVLogger(None),
        TypeError,
        ("CSVLogger", "path", "None"),
    ),
    # metrics and the loss
    Bad(
        AREA,
        "metrics a list of names",
        _fit(metrics=["accuracy"]),
        TypeError,
        ("metrics", "['accuracy']", "dict"),
    ),
    Bad(
        AREA,
        "metric given by name",
        _fit(metrics={"acc": "accuracy"}),
        TypeError,
        ("metrics['acc']", "'accuracy'", "function"),
    ),
    Bad(
        AREA,
        "loss name misspelt",
        _fit(loss="crossentropy"),
        ValueError,
        ("loss", "'crossentropy'", "'softmax_cross_entropy'"),
    ),
    Bad(AREA, "loss a number", _fit(loss=3), TypeError, ("loss", "3", "loss name")),
    Bad(
        AREA,
        "precision name",
        _fit(precision="fp16"),
        ValueError,
        ("precision", "'fp16'", "'float16'"),
    ),
    Bad(
        AREA,
        "loss_scale negative",
        _fit(precision="float16", loss_scale=-1.0),
        ValueError,
        ("loss_scale", "-1.0", "> 0"),
    ),
    Bad(
        AREA,
        "loss_scale nan",
        _fit(precision="float16", loss_scale=float("nan")),
        ValueError,
        ("loss_scale", "nan", "finite"),
    ),
    # the model, the state and the data sets
    Bad(AREA, "model a name", _fit(model="mlp"), TypeError, ("model", "'mlp'", "Layer")),
    Bad(
        AREA,
        "train_state a dict",
        _fit(train_state={"params": {}}),
        TypeError,
        ("train_state", "dict", "TrainState"),
    ),
    Bad(
        AREA,
        "train_data a tuple",
        _fit(train_data=(np.ones((8, 2)), np.zeros(8))),
        TypeError,
        ("train_data", "tuple", "ArrayDataset"),
    ),
    Bad(
        AREA,
        "train_data lengths differ",
        _fit(train_data=_data(labels=np.zeros(7, np.int32))),
        ValueError,
        ("train_data", "8 inputs", "7 labels"),
    ),
    Bad(
        AREA,
        "train_data empty",
        _fit(train_data=jn.data.ArrayDataset(np.ones((0, 2), np.float32), np.zeros(0, np.int32))),
        ValueError,
        ("train_data", "empty", "0 examples"),
    ),
    Bad(
        AREA,
        "val_data lengths differ",
        _fit(val_data=_data(labels=np.zeros(5, np.int32))),
        ValueError,
        ("val_data", "8 inputs", "5 labels"),
    ),
    Bad(
        AREA,
        "val_data a list",
        _fit(val_data=[np.ones((4, 2)), np.zeros(4)]),
        TypeError,
        ("val_data", "list", "ArrayDataset"),
    ),
    Bad(
        AREA,
        "train label -1",
        _fit(train_data=_data(labels=_labels(0, 1, 2, 0, 1, -1, 2, 0))),
        ValueError,
        ("train_data", "got -1", "[0, 3)"),
    ),
    Bad(
        AREA,
        "train label equals classes",
        _fit(train_data=_data(labels=_labels(0, 1, 2, 3, 1, 0, 2, 0))),
        ValueError,
        ("train_data", "got 3", "3 outputs"),
    ),
    Bad(
        AREA,
        "val label above classes",
        _fit(val_data=_data(labels=_labels(0, 1, 2, 0, 1, 9, 2, 0))),
        ValueError,
        ("val_data", "got 9", "[0, 3)"),
    ),
    Bad(
        AREA,
        "class ids as floats",
        _fit(train_data=_data(labels=(np.arange(8) % 3).astype(np.float32))),
        ValueError,
        ("train_data", "(8,)", "astype(np.int32)"),
    ),
    Bad(
        AREA,
        "one-hot labels of the wrong width",
        _fit(train_data=_data(labels=np.eye(4, dtype=np.float32)[np.arange(8) % 4])),
        ValueError,
        ("train_data", "(8, 4)", "one-hot"),
    ),
    Bad(
        AREA,
        "class ids as a column",
        _fit(train_data=_data(labels=(np.arange(8) % 3).astype(np.int32)[:, None])),
        ValueError,
        ("train_data", "(8, 1)", "reshape(-1)"),
    ),
    Bad(
        AREA,
        "val inputs hold nan",
        _fit(val_data=_with_nan()),
        ValueError,
        ("val_data", "nan", "example 5"),
    ),
    Bad(
        AREA,
        "binary loss with a label 2",
        _fit(
            model=jn.serial(jn.Dense(1)),
            loss="sigmoid_binary_cross_entropy",
            train_data=_data(labels=_labels(0, 1, 2, 0, 1, 0, 1, 0)),
        ),
        ValueError,
        ("train_data", "got 2", "binary targets"),
    ),
    Bad(
        AREA,
        "binary loss with three outputs",
        _fit(loss="binary_cross_entropy", train_data=_data(labels=np.zeros(8, np.float32))),
        ValueError,
        ("train_data", "(8,)", "one target per output"),
    ),
    Bad(
        AREA,
        "hinge label 2",
        _fit(
            model=jn.serial(jn.Dense(1)),
            loss="hinge",
            train_data=_data(labels=_labels(1, -1, 2, 1, -1, 1, -1, 1)),
        ),
        ValueError,
        ("train_data", "got 2", "-1/+1"),
    ),
    Bad(
        AREA,
        "mse targets of another size",
        _fit(loss="mse", train_data=_data(labels=np.zeros((8, 2), np.float32))),
        ValueError,
        ("train_data", "(8, 2)", "squared_error"),
    ),
    Bad(
        AREA,
        "regression targets hold nan",
        _fit(
            loss="mse",
            train_data=_data(labels=np.where(np.arange(24).reshape(8, 3) == 7, np.nan, 0.0)),
        ),
        ValueError,
        ("train_data", "nan", "example 2"),
    ),
    # the other entry points
    Bad(
        AREA,
        "make_train_step optimizer name",
        lambda: jn.make_train_step(_model(), "mse", "sgd"),
        TypeError,
        ("make_train_step", "optimizer", "'sgd'"),
    ),
    Bad(
        AREA,
        "make_train_step metrics a tuple",
        lambda: jn.make_train_step(
            _model(), "softmax_cross_entropy", optax.sgd(0.1), metrics=("accuracy",)
        ),
        TypeError,
        ("make_train_step", "metrics", "('accuracy',)"),
    ),
    Bad(
        AREA,
        "make_train_step donate string",
        lambda: jn.make_train_step(_model(), "mse", optax.sgd(0.1), donate="no"),
        TypeError,
        ("make_train_step", "donate", "'no'"),
    ),
    Bad(
        AREA,
        "make_train_step loss misspelt",
        lambda: jn.make_train_step(_model(), "mean_squared", optax.sgd(0.1)),
        ValueError,
        ("make_train_step", "'mean_squared'", "'mse'"),
    ),
    Bad(
        AREA,
        "make_eval_step loss misspelt",
        lambda: jn.make_eval_step(_model(), "xent"),
        ValueError,
        ("make_eval_step", "loss", "'xent'"),
    ),
    Bad(
        AREA,
        "make_eval_step model a string",
        lambda: jn.make_eval_step("mlp", "mse"),
        TypeError,
        ("make_eval_step", "model", "'mlp'"),
    ),
    Bad(
        AREA,
        "create_train_state optimizer factory",
        lambda: jn.create_train_state(_model(), optax.sgd, (4, 2)),
        TypeError,
        ("create_train_state", "optax.sgd", "call it"),
    ),
    Bad(
        AREA,
        "create_train_state seed float",
        lambda: jn.create_train_state(_model(), optax.sgd(0.1), (4, 2), seed=0.5),
        TypeError,
        ("create_train_state", "seed", "0.5"),
    ),
    Bad(
        AREA,
        "evaluate batch_size zero",
        lambda: jn.evaluate(
            jn.make_eval_step(_model(), "softmax_cross_entropy"), _ts(), _data(), 0
        ),
        ValueError,
        ("evaluate", "batch_size", "0"),
    ),
    Bad(
        AREA,
        "supervised objective train string",
        lambda: jn.train.supervised(_model(), "mse")(
            _ts().params,
            _ts().state,
            (np.ones((4, 2), np.float32), np.zeros((4, 3), np.float32)),
            key=None,
            train="False",
        ),
        TypeError,
        ("train", "'False'", "True or False"),
    ),
    Bad(
        AREA,
        "build_steps pairs with eval names itself",
        lambda: build_steps({"g": _model()}, [("g", _pairs_objective)], {"g": optax.sgd(0.1)}),
        ValueError,
        ("build_steps", "with_eval=True", "pairs"),
    ),
]
