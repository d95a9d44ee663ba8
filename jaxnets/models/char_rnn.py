"""A character language model: Embedding, stacked LSTM, Dense to the vocabulary.

Trained with truncated backpropagation through time (TBPTT): the training text is cut into
``batch_size`` contiguous streams read window by window (:func:`jaxnets.data.tbptt_windows`);
the LSTM is ``stateful``, so its carry flows from one window to the next while gradients
stop at window boundaries. The train step is :func:`jaxnets.make_train_step` unchanged: the
carry is the model's ``state``, which the step threads through. (``jaxnets.fit`` is not
used: it shuffles batches, which would break the streams.)

Example:
    >>> import jax, jax.numpy as jnp, jaxnets as jn
    >>> model = jn.models.char_rnn(30, embed_dim=8, hidden=(16, 16))
    >>> spec, params, state = model.init(jax.random.key(0),
    ...                                  jax.ShapeDtypeStruct((4, 10), jnp.int32))
    >>> spec.shape, sorted(params), sorted(state["lstm"]["carry"])
    ((4, 10, 30), ['embed', 'logits', 'lstm'], ['layer_0', 'layer_1'])
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.activations import check_name
from jaxnets.core import Layer, serial
from jaxnets.core.arguments import count, flag, number
from jaxnets.data.text import CharVocab, Windows, tbptt_windows
from jaxnets.layers import LSTM, Dense, Embedding, StackedRNN
from jaxnets.models._common import widths
from jaxnets.train import TrainState, create_train_state, make_train_step


def char_rnn(
    vocab_size: int,
    *,
    embed_dim: int = 64,
    hidden: Sequence[int] = (256, 256),
    stateful: bool = True,
    name: str | None = "char_rnn",
) -> Layer:
    """``serial(embed: Embedding, lstm: StackedRNN of LSTMs, logits: Dense(vocab_size))``.

    Args:
      vocab_size: the number of character ids, in and out.
      embed_dim: the size of each character's embedding.
      hidden: the width of each LSTM layer, bottom first.
      stateful: keep the LSTM carry in ``state`` from one call to the next (fixed batch
        size; see :func:`jaxnets.RNN`).
      name: the model's name.

    Returns:
      The model: int ids ``(batch, time)`` in, logits ``(batch, time, vocab_size)`` out.
    """
    where = "char_rnn"
    count(where, "vocab_size", vocab_size)
    count(where, "embed_dim", embed_dim)
    hidden = widths(where, "hidden", hidden, empty=False)
    flag(where, "stateful", stateful)
    check_name(where, name)
    return serial(
        ("embed", Embedding(vocab_size, embed_dim)),
        ("lstm", StackedRNN([LSTM(h) for h in hidden], stateful=stateful)),
        ("logits", Dense(vocab_size)),
        name=name,
    )


def _ids_spec(batch: int, time_steps: int) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct((batch, time_steps), jnp.int32)


def zero_state(state):
    """The state with every carry reset to zeros (start of a new pass over the streams).

    Args:
      state: the model's state (its LSTM carries).

    Returns:
      A pytree of the same structure with every leaf zero.
    """
    return jax.tree.map(jnp.zeros_like, state)


@functools.lru_cache(maxsize=16)
def _loss_sum_step(model: Layer):
    """The jitted evaluation step of ``model``, built once per model (so repeated
    evaluations of one model compile once per window shape)."""

    @jax.jit
    def step(params, state, inputs, targets):
        logits, state = model.apply(params, state, inputs, key=None, train=False)
        nll = optax.losses.softmax_cross_entropy_with_integer_labels(
            logits.astype(jnp.float32), targets
        )
        return jnp.sum(nll), state

    return step


def evaluate_bpc(model: Layer, params, windows: Windows) -> float:
    """Bits per character of ``model`` on ``windows``, reading each stream from a zero
    carry (one window after another, carry passed on): ``mean(-log2 p(target))``.

    Args:
      model: a :func:`char_rnn` (stateful, for the carry to pass between windows).
      params: its params.
      windows: the held-out :class:`~jaxnets.data.text.Windows`.

    Returns:
      The bits per character over every target of ``windows``.

    The jitted step is cached per model (the 16 most recent), so calling this after
    every few training steps compiles once.
    """
    if not isinstance(model, Layer):
        raise TypeError(f"evaluate_bpc: model must be a Layer (a char_rnn), got {model!r:.60}")
    if not isinstance(windows, Windows):
        raise TypeError(
            f"evaluate_bpc: windows must be jaxnets.data.Windows (from tbptt_windows), got "
            f"{type(windows).__name__}"
        )
    batch, seq_len = windows.inputs.shape[1:]
    state = _zero_carry(model, int(batch), int(seq_len))
    step = _loss_sum_step(model)
    total = 0.0
    for x, y in zip(windows.inputs, windows.targets, strict=True):
        nll, state = step(params, state, x, y)
        total += float(nll)
    return total / (windows.targets.size * math.log(2.0))


@functools.lru_cache(maxsize=16)
def _zero_carry(model: Layer, batch: int, seq_len: int):
    """The model's state at the start of a stream (zero carries), without drawing params."""
    shapes = jax.eval_shape(
        lambda k: model.init(k, _ids_spec(batch, seq_len))[2], jax.random.key(0)
    )
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def _positive_seconds(where: str, value: Any) -> float:
    """A positive number of seconds; unlike a hyper-parameter, infinity (no limit) is fine."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    return number(where, "max_seconds", value, low=0.0, low_open=True)


def _check_training(where: str, train_text, val_text, options: dict, log) -> None:
    for what, text in (("train_text", train_text), ("val_text", val_text)):
        if not isinstance(text, str) or not text:
            error = ValueError if isinstance(text, str) else TypeError
            raise error(f"{where}: {what} must be a non-empty str, got {text!r:.60}")
    for what in ("embed_dim", "batch_size", "seq_len", "max_steps", "eval_every"):
        count(where, what, options[what])
    widths(where, "hidden", options["hidden"], empty=False)
    for what in ("learning_rate", "clip_norm"):
        number(where, what, options[what], low=0.0, low_open=True)
    _positive_seconds(where, options["max_seconds"])
    count(where, "seed", options["seed"], minimum=0)
    if log is not None and not callable(log):
        raise TypeError(f"{where}: log must be a function of one str or None, got {log!r:.60}")


class CharLMResult(NamedTuple):
    """What :func:`train_char_lm` returns. ``curve`` lists ``(step, seconds, train_bpc,
    val_bpc)`` at every evaluation; ``val_bpc`` is the final held-out figure."""

    model: Layer
    params: dict
    vocab: CharVocab
    curve: list[tuple[int, float, float, float]]
    val_bpc: float
    steps: int


def train_char_lm(
    train_text: str,
    val_text: str,
    *,
    embed_dim: int = 64,
    hidden: Sequence[int] = (256, 256),
    batch_size: int = 32,
    seq_len: int = 64,
    learning_rate: float = 3e-3,
    clip_norm: float = 1.0,
    max_steps: int = 100_000,
    max_seconds: float = float("inf"),
    eval_every: int = 200,
    seed: int = 0,
    log=print,
) -> CharLMResult:
    """Train :func:`char_rnn` on ``train_text`` by TBPTT; measure on ``val_text``.

    Training runs epochs over the windows (carry reset to zero at each epoch start) until
    ``max_steps`` steps or ``max_seconds`` of wall time. The vocabulary is that of
    ``train_text``; characters only in ``val_text`` count as unknown.

    Args:
      train_text: the text trained on.
      val_text: the held-out text.
      embed_dim: the embedding size of :func:`char_rnn`.
      hidden: the LSTM widths of :func:`char_rnn`.
      batch_size: the number of streams (see :func:`jaxnets.data.tbptt_windows`).
      seq_len: the characters per window, the TBPTT length.
      learning_rate: Adam's learning rate.
      clip_norm: the global gradient norm clipped to before Adam.
      max_steps: stop after this many steps.
      max_seconds: stop after this much wall time.
      eval_every: evaluate the held-out bits per character every this many steps (and
        once at the end).
      seed: the seed of the initialisation.
      log: called with one line of text per evaluation; None for silence.

    Returns:
      A :class:`CharLMResult`.

    Example:
        >>> import jaxnets as jn
        >>> text = "abcabcabd" * 60
        >>> res = jn.models.train_char_lm(text[:400], text[400:], embed_dim=4, hidden=(8,),
        ...                               batch_size=2, seq_len=8, max_steps=3, log=None)
        >>> res.steps, len(res.curve)
        (3, 1)
    """
    options = {
        "embed_dim": embed_dim,
        "hidden": hidden,
        "batch_size": batch_size,
        "seq_len": seq_len,
        "learning_rate": learning_rate,
        "clip_norm": clip_norm,
        "max_steps": max_steps,
        "max_seconds": max_seconds,
        "eval_every": eval_every,
        "seed": seed,
    }
    _check_training("train_char_lm", train_text, val_text, options, log)
    vocab = CharVocab.from_text(train_text)
    train = tbptt_windows(vocab.encode(train_text), batch_size, seq_len)
    val = tbptt_windows(vocab.encode(val_text), batch_size, seq_len)
    model = char_rnn(len(vocab), embed_dim=embed_dim, hidden=hidden)
    optimizer = optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(learning_rate))
    ts: TrainState = create_train_state(model, optimizer, _ids_spec(batch_size, seq_len), seed=seed)
    step = make_train_step(model, "softmax_cross_entropy", optimizer, metrics={})
    curve: list[tuple[int, float, float, float]] = []
    start = time.perf_counter()
    steps = 0
    recent: list[jax.Array] = []

    def record():
        losses = [float(v) for v in recent]
        train_bpc = float(np.mean(losses)) / math.log(2.0) if losses else float("nan")
        val_bpc = evaluate_bpc(model, ts.params, val)
        curve.append((steps, time.perf_counter() - start, train_bpc, val_bpc))
        if log is not None:
            log(
                f"step {steps:6d}  {curve[-1][1]:7.1f}s  train_bpc {train_bpc:.3f}  "
                f"val_bpc {val_bpc:.3f}"
            )
        recent.clear()

    done = False
    while not done:
        ts = ts._replace(state=zero_state(ts.state))
        for x, y in zip(train.inputs, train.targets, strict=True):
            ts, metrics = step(ts, (x, y))
            recent.append(metrics["loss"])
            steps += 1
            done = steps >= max_steps or time.perf_counter() - start >= max_seconds
            if done:
                break
            if steps % eval_every == 0:
                record()
    record()
    return CharLMResult(model, ts.params, vocab, curve, curve[-1][3], steps)


def sample(
    params,
    vocab: CharVocab,
    prompt: str,
    length: int,
    *,
    embed_dim: int = 64,
    hidden: Sequence[int] = (256, 256),
    temperature: float = 1.0,
    key: jax.Array | None = None,
) -> str:
    """Continue ``prompt`` by ``length`` characters drawn from ``softmax(logits /
    temperature)`` (``temperature=0``: always the most likely character).

    The prompt is read in one call; the characters are then drawn one at a time inside
    one ``lax.scan``.

    Args:
      params: the params of a :func:`char_rnn`.
      vocab: its vocabulary; prompt characters outside it are read as unknown.
      prompt: the text to continue, not empty.
      length: the number of characters to draw.
      embed_dim: the embedding size the params were trained with.
      hidden: the LSTM widths the params were trained with.
      temperature: divides the logits before drawing, >= 0.
      key: the PRNG key of the draws (default ``jax.random.key(0)``).

    Returns:
      The ``length`` drawn characters, without the prompt.

    Example:
        >>> import jax, jax.numpy as jnp, jaxnets as jn
        >>> vocab = jn.data.CharVocab.from_text("ab")
        >>> model = jn.models.char_rnn(len(vocab), embed_dim=4, hidden=(8,))
        >>> _, params, _ = model.init(jax.random.key(0), jax.ShapeDtypeStruct((1, 1), jnp.int32))
        >>> text = jn.models.sample(params, vocab, "ab", 5, embed_dim=4, hidden=(8,),
        ...                         key=jax.random.key(1))
        >>> len(text), set(text) <= set(vocab.chars)
        (5, True)
    """
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"sample: vocab must be a CharVocab, got {type(vocab).__name__}")
    if not isinstance(prompt, str):
        raise TypeError(f"sample: prompt must be a non-empty str, got {prompt!r:.60}")
    if not prompt:
        raise ValueError("sample: the prompt must not be empty")
    length = count("sample", "length", length, minimum=0)
    temperature = number("sample", "temperature", temperature, low=0.0)
    key = jax.random.key(0) if key is None else key
    model = char_rnn(len(vocab), embed_dim=embed_dim, hidden=hidden)
    _, _, state = model.init(jax.random.key(0), _ids_spec(1, 1))
    prompt_ids = jnp.asarray(vocab.encode(prompt))[None, :]

    @jax.jit
    def generate(params, state, prompt_ids, key):
        logits, state = model.apply(params, state, prompt_ids, train=False)

        def draw(logits, k):
            if temperature == 0:
                return jnp.argmax(logits, axis=-1).astype(jnp.int32)
            scaled = logits.astype(jnp.float32) / temperature
            return jax.random.categorical(k, scaled, axis=-1).astype(jnp.int32)

        def body(carry, k):
            state, last_logits = carry
            char = draw(last_logits, k)  # (1,)
            logits, state = model.apply(params, state, char[:, None], train=False)
            return (state, logits[:, -1]), char[0]

        _, chars = jax.lax.scan(body, (state, logits[:, -1]), jax.random.split(key, length))
        return chars

    return vocab.decode(np.asarray(generate(params, state, prompt_ids, key)))
