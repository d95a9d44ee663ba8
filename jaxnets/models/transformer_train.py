"""Training a character :func:`~jaxnets.models.transformer_lm` and measuring its bits per
character on the same held-out characters as :func:`~jaxnets.models.train_char_lm`.

Training draws random windows of ``seq_len + 1`` characters from the training text and
updates with AdamW (weight decay on matrices only, gradient clipping) under a linear
warmup and a cosine decay over the run. With a wall-time budget the decay follows the
fraction of the budget spent, so the learning rate reaches its floor when time runs out.
The held-out text is cut into the streams of :func:`jaxnets.data.tbptt_windows` and each
stream is read with a sliding context of ``max_len`` characters (half of it new each time):
every character the LSTM is scored on is scored once, with up to ``max_len - 1``
characters of context.
"""

from __future__ import annotations

import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.core import Layer
from jaxnets.core.arguments import count, number
from jaxnets.data.text import CharVocab, Windows, tbptt_windows
from jaxnets.models.char_rnn import CharLMResult
from jaxnets.models.transformer_lm import transformer_lm
from jaxnets.train import create_train_state, make_train_step

__all__ = ["evaluate_transformer_bpc", "train_transformer_lm"]


@functools.lru_cache(maxsize=8)
def _nll_step(model: Layer):
    @jax.jit
    def step(params, inputs, targets, scored):
        logits, _ = model.apply(params, {}, inputs, train=False)
        nll = optax.losses.softmax_cross_entropy_with_integer_labels(
            logits.astype(jnp.float32), targets
        )
        return jnp.sum(jnp.where(scored, nll, 0.0))

    return step


def evaluate_transformer_bpc(model: Layer, params, windows: Windows, max_len: int) -> float:
    """Bits per character on every target of ``windows``, each stream read with a sliding
    context of ``max_len`` characters (stride ``max_len // 2``).

    Args:
      model: a :func:`transformer_lm` (without ``decode``).
      params: its params.
      windows: held-out :class:`~jaxnets.data.text.Windows` (its streams are read whole).
      max_len: the context length (at most the model's ``max_len``, at least 2).

    Returns:
      ``mean(-log2 p(target))`` over ``windows.targets``.
    """
    max_len = count("evaluate_transformer_bpc", "max_len", max_len, minimum=2)
    steps, batch, seq_len = windows.inputs.shape
    inputs = np.asarray(windows.inputs).transpose(1, 0, 2).reshape(batch, steps * seq_len)
    targets = np.asarray(windows.targets).transpose(1, 0, 2).reshape(batch, steps * seq_len)
    n = inputs.shape[1]
    half = max_len // 2
    padded = -(-n // half) * half + half
    x = np.zeros((batch, padded), np.int32)
    y = np.zeros((batch, padded), np.int32)
    x[:, :n], y[:, :n] = inputs, targets
    valid = np.arange(padded) < n
    step = _nll_step(model)
    total = float(
        step(
            params,
            x[:, :max_len],
            y[:, :max_len],
            np.broadcast_to(valid[:max_len], (batch, max_len)),
        )
    )
    for start in range(max_len, padded - half + 1, half):
        lo = start + half - max_len
        scored = np.zeros(max_len, bool)
        scored[max_len - half :] = valid[start : start + half]
        if not scored.any():
            break
        total += float(
            step(
                params,
                x[:, lo : start + half],
                y[:, lo : start + half],
                np.broadcast_to(scored, (batch, max_len)),
            )
        )
    return total / (targets.size * math.log(2.0))


def _decay_mask(params):
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def train_transformer_lm(
    train_text: str,
    val_text: str,
    *,
    d_model: int = 128,
    heads: int = 4,
    layers: int = 2,
    seq_len: int = 64,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    warmup_steps: int = 200,
    weight_decay: float = 0.05,
    clip_norm: float = 1.0,
    max_steps: int = 100_000,
    max_seconds: float = float("inf"),
    eval_every: int = 250,
    eval_streams: int = 32,
    eval_seq_len: int = 64,
    seed: int = 0,
    log=print,
    **model_args,
) -> CharLMResult:
    """Train a character :func:`transformer_lm` (``max_len=seq_len``) on random windows of
    ``train_text``; measure bits per character on ``val_text``.

    Args:
      train_text: the text trained on.
      val_text: the held-out text.
      d_model: the model's width.
      heads: its attention heads.
      layers: its blocks.
      seq_len: the characters per training window, also the model's ``max_len``.
      batch_size: windows per step.
      learning_rate: the peak learning rate.
      warmup_steps: steps of linear warmup from 0.
      weight_decay: AdamW's decoupled weight decay (on matrices only).
      clip_norm: the global gradient norm clipped to.
      max_steps: stop after this many steps (the cosine's length without a time budget).
      max_seconds: stop after this much wall time (the cosine then follows the time).
      eval_every: evaluate every this many steps (and once at the end).
      eval_streams: the streams the held-out text is cut into (``train_char_lm``'s
        ``batch_size``, for the same characters).
      eval_seq_len: ``train_char_lm``'s ``seq_len`` (the windows the streams are cut into).
      seed: the seed of the initialisation and of the windows drawn.
      log: called with one line per evaluation; None for silence.
      **model_args: further arguments of :func:`transformer_lm` (``mlp``, ``positions``...).

    Returns:
      A :class:`~jaxnets.models.char_rnn.CharLMResult` (``model`` without ``decode``).

    Example:
        >>> import jaxnets as jn
        >>> text = "abcabcabd" * 60
        >>> res = jn.models.train_transformer_lm(text[:400], text[400:], d_model=8, heads=2,
        ...     layers=1, seq_len=8, batch_size=2, max_steps=3, eval_streams=2,
        ...     eval_seq_len=8, log=None)
        >>> res.steps, len(res.curve)
        (3, 1)
    """
    where = "train_transformer_lm"
    for what, text in (("train_text", train_text), ("val_text", val_text)):
        if not isinstance(text, str) or not text:
            raise (ValueError if isinstance(text, str) else TypeError)(
                f"{where}: {what} must be a non-empty str, got {text!r:.60}"
            )
    for what, value in (
        ("seq_len", seq_len),
        ("batch_size", batch_size),
        ("max_steps", max_steps),
        ("eval_every", eval_every),
    ):
        count(where, what, value)
    count(where, "warmup_steps", warmup_steps, minimum=0)
    for what, real in (("learning_rate", learning_rate), ("clip_norm", clip_norm)):
        number(where, what, real, low=0.0, low_open=True)
    number(where, "weight_decay", weight_decay, low=0.0)
    budget = (
        math.inf
        if max_seconds == math.inf
        else number(where, "max_seconds", max_seconds, low=0.0, low_open=True)
    )
    vocab = CharVocab.from_text(train_text)
    ids = vocab.encode(train_text)
    if len(ids) <= seq_len + 1:
        raise ValueError(f"{where}: train_text must be longer than seq_len + 1 ({seq_len + 1})")
    val = tbptt_windows(vocab.encode(val_text), eval_streams, eval_seq_len)
    model = transformer_lm(len(vocab), d_model, heads, layers, seq_len, **model_args)
    adamw = optax.inject_hyperparams(optax.adamw)(
        learning_rate=jnp.asarray(0.0, jnp.float32),
        weight_decay=weight_decay,
        b2=0.99,
        mask=_decay_mask,
    )
    optimizer = optax.chain(optax.clip_by_global_norm(clip_norm), adamw)
    spec = jax.ShapeDtypeStruct((batch_size, seq_len), jnp.int32)
    ts = create_train_state(model, optimizer, spec, seed=seed)
    step = make_train_step(model, "softmax_cross_entropy", optimizer, metrics={})
    rng = np.random.default_rng(seed)
    offsets = np.arange(seq_len + 1)
    curve: list[tuple[int, float, float, float]] = []
    recent: list[jax.Array] = []
    start = time.perf_counter()
    steps = 0

    def lr_at(steps: int, elapsed: float) -> float:
        if steps < warmup_steps:
            return learning_rate * (steps + 1) / warmup_steps
        progress = max((steps - warmup_steps) / max(max_steps - warmup_steps, 1), elapsed / budget)
        return learning_rate * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))

    def record():
        losses = [float(v) for v in recent]
        train_bpc = float(np.mean(losses)) / math.log(2.0) if losses else float("nan")
        val_bpc = evaluate_transformer_bpc(model, ts.params, val, seq_len)
        curve.append((steps, time.perf_counter() - start, train_bpc, val_bpc))
        if log is not None:
            log(
                f"step {steps:6d}  {curve[-1][1]:7.1f}s  train_bpc {train_bpc:.3f}  "
                f"val_bpc {val_bpc:.3f}"
            )
        recent.clear()

    while True:
        windows = ids[rng.integers(0, len(ids) - seq_len - 1, batch_size)[:, None] + offsets]
        clip_state, inner = ts.opt_state
        lr = jnp.asarray(lr_at(steps, time.perf_counter() - start), jnp.float32)
        inner = inner._replace(hyperparams={**inner.hyperparams, "learning_rate": lr})
        ts = ts._replace(opt_state=(clip_state, inner))
        ts, metrics = step(ts, (windows[:, :-1].astype(np.int32), windows[:, 1:].astype(np.int32)))
        recent.append(metrics["loss"])
        steps += 1
        if steps >= max_steps or time.perf_counter() - start >= budget:
            break
        if steps % eval_every == 0:
            record()
    record()
    return CharLMResult(model, ts.params, vocab, curve, curve[-1][3], steps)
