"""Text for character language models: a corpus, a character vocabulary, truncated-BPTT
windows, a held-out split and the bigram baseline.

The default corpus needs no download: the Python standard library's own top-level ``.py``
files (``sysconfig.get_paths()["stdlib"]``), read in sorted file-name order, which is the
same on every run of the same Python. Any text file can be used instead.

Example:
    >>> import jaxnets as jn
    >>> vocab = jn.data.CharVocab.from_text("hello world")
    >>> ids = vocab.encode("hold!")
    >>> ids.tolist(), vocab.decode(ids) == "hold\\ufffd"
    ([4, 6, 5, 2, 0], True)
    >>> windows = jn.data.tbptt_windows(vocab.encode("hello world" * 3), batch_size=2, seq_len=4)
    >>> windows.inputs.shape, windows.targets.shape
    ((4, 2, 4), (4, 2, 4))
"""

from __future__ import annotations

import math
import os
import sysconfig
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxnets.core.arguments import count, number, received

UNKNOWN = "\ufffd"


def stdlib_corpus(max_chars: int = 2_000_000) -> str:
    """The first ``max_chars`` characters of the standard library's top-level ``.py`` files,
    concatenated in sorted file-name order (deterministic for a given Python).

    Args:
      max_chars: the most characters to return, >= 1.

    Returns:
      The text (shorter when the files hold less).
    """
    count("stdlib_corpus", "max_chars", max_chars)
    root = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    total = 0
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        total += len(text)
        if total >= max_chars:
            break
    corpus = "".join(parts)[:max_chars]
    if not corpus:
        raise FileNotFoundError(f"stdlib_corpus: no .py files found under {root}")
    return corpus


def load_text(path: str | Path | None = None, max_chars: int | None = None) -> str:
    """The text of ``path`` (UTF-8), or the standard-library corpus when ``path`` is None.

    Args:
      path: the text file; undecodable bytes become U+FFFD. None: :func:`stdlib_corpus`.
      max_chars: keep the first ``max_chars`` characters; None keeps a whole file, or the
        corpus's default length.

    Returns:
      The text.

    Raises:
      ValueError: when the file is empty, or ``max_chars`` is not >= 1 (``0`` would
        return no text).
    """
    if max_chars is not None:
        count("load_text", "max_chars", max_chars)
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"load_text: path must be a file's path or None, got {received(path)}")
    if path is None:
        return stdlib_corpus() if max_chars is None else stdlib_corpus(max_chars)
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if not text:
        raise ValueError(f"load_text: {path} is empty")
    return text if max_chars is None else text[:max_chars]


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """``(train, val)``: the last ``val_fraction`` of the text is held out (no shuffling,
    so no training window overlaps the held-out text).

    Args:
      text: the whole text.
      val_fraction: the share held out, in (0, 1).

    Returns:
      ``(train, val)``, the two parts in order.
    """
    if not isinstance(text, str):
        raise TypeError(f"split_text: text must be a str, got {received(text)}")
    number("split_text", "val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True)
    cut = round(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


class CharVocab(NamedTuple):
    """Characters to ids and back. Id 0 is ``UNKNOWN`` (U+FFFD), given to every character
    the vocabulary was not built from; the others are sorted by code point."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The vocabulary of the characters in ``text`` (plus the unknown id 0)."""
        return cls(UNKNOWN + "".join(sorted(set(text) - {UNKNOWN})))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int32 ids of ``text``; unseen characters become 0."""
        table = {c: i for i, c in enumerate(self.chars)}
        return np.fromiter((table.get(c, 0) for c in text), np.int32, count=len(text))

    def decode(self, ids) -> str:
        """The text of ``ids`` (ids outside the vocabulary raise an IndexError)."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.chars)):
            raise IndexError(f"CharVocab.decode: ids must lie in [0, {len(self.chars)})")
        return "".join(self.chars[i] for i in ids.tolist())


class Windows(NamedTuple):
    """Truncated-BPTT windows: ``inputs`` and ``targets`` of shape ``(steps, batch, seq_len)``;
    ``targets`` are the inputs shifted by one character. Row ``b`` of window ``s + 1``
    continues row ``b`` of window ``s``, so a carry passed from one window to the next
    reads one long stream per row."""

    inputs: np.ndarray
    targets: np.ndarray


def tbptt_windows(ids: np.ndarray, batch_size: int, seq_len: int) -> Windows:
    """Cut ``ids`` into ``batch_size`` contiguous streams and each into windows of ``seq_len``.

    The tail that does not fill a whole window in every stream is dropped (fewer than
    ``batch_size * seq_len + 1`` characters).

    Args:
      ids: the encoded text, any shape (flattened).
      batch_size: the number of streams, >= 1.
      seq_len: the characters per window, >= 1.

    Returns:
      The :class:`Windows`, int32, each array ``(steps, batch_size, seq_len)``.
    """
    count("tbptt_windows", "batch_size", batch_size)
    count("tbptt_windows", "seq_len", seq_len)
    ids = np.asarray(ids, np.int32).reshape(-1)
    per_stream = (len(ids) - 1) // batch_size
    steps = per_stream // seq_len
    if steps == 0:
        raise ValueError(
            f"tbptt_windows: {len(ids)} ids are too few for one window of {batch_size} x "
            f"{seq_len} (need at least {batch_size * seq_len + 1})"
        )
    used = steps * seq_len
    starts = np.arange(batch_size) * per_stream
    idx = starts[:, None] + np.arange(used)[None, :]  # (batch, used)
    x = ids[idx].reshape(batch_size, steps, seq_len).transpose(1, 0, 2)
    y = ids[idx + 1].reshape(batch_size, steps, seq_len).transpose(1, 0, 2)
    return Windows(np.ascontiguousarray(x), np.ascontiguousarray(y))


def bigram_bits_per_char(
    train_ids: np.ndarray,
    vocab_size: int,
    inputs: np.ndarray,
    targets: np.ndarray,
    alpha: float = 0.1,
) -> float:
    """Bits per character of an add-``alpha`` smoothed bigram model estimated on
    ``train_ids``, averaged over the pairs ``inputs[i] -> targets[i]`` (the held-out text
    ``val`` gives ``inputs=val[:-1], targets=val[1:]``; TBPTT windows give their own).

    Args:
      train_ids: the encoded training text; its consecutive pairs are counted.
      vocab_size: the number of ids (each id must be below it).
      inputs: the ids that are given, any shape.
      targets: the ids to predict, the shape of ``inputs``.
      alpha: the pseudo-count added to every pair, > 0.

    Returns:
      The mean negative log2-probability of the targets.

    Example:
        >>> import numpy as np
        >>> ids = np.array([0, 1] * 50)
        >>> round(bigram_bits_per_char(ids, 2, ids[:-1], ids[1:], alpha=1e-9), 6)
        0.0
    """
    number("bigram_bits_per_char", "alpha", alpha, low=0, low_open=True)
    count("bigram_bits_per_char", "vocab_size", vocab_size)
    train_ids = np.asarray(train_ids, np.int64).reshape(-1)
    counts = np.full((vocab_size, vocab_size), alpha, np.float64)
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1.0)
    log_probs = np.log(counts) - np.log(counts.sum(axis=1, keepdims=True))
    nll = -log_probs[np.asarray(inputs).reshape(-1), np.asarray(targets).reshape(-1)]
    return float(nll.mean() / math.log(2.0))
