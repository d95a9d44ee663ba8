"""A character language model (Embedding, stacked LSTM, Dense) trained by truncated BPTT.

Usage:
    python examples/char_lm.py                      # the Python standard library's source
    python examples/char_lm.py --text my_book.txt   # any UTF-8 text file
    python examples/char_lm.py --minutes 2 --hidden 256 256

The default corpus is the first 2,000,000 characters of the standard library's top-level
``.py`` files in sorted order (already on the machine; nothing is downloaded); the last
10% is held out. The defaults (two LSTMs of 128, 8 minutes of training) are sized for a
shared 2-core CPU; the whole run, evaluation and sampling included, stays under 10 minutes.
Prints the bits-per-character curve, the bigram baseline estimated on the
same training text and measured on the same held-out characters, a sample of generated
text, and as its last line ``val_bpc=...``.
"""

from __future__ import annotations

import argparse
import time

import jax

import jaxnets as jn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default=None, help="a UTF-8 text file (default: stdlib)")
    parser.add_argument("--max-chars", type=int, default=2_000_000)
    parser.add_argument("--minutes", type=float, default=8.0, help="training time budget")
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--prompt", default="def ")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    text = jn.data.load_text(args.text, args.max_chars)
    train_text, val_text = jn.data.split_text(text, 0.1)
    print(f"corpus: {len(train_text):,} training and {len(val_text):,} held-out characters")

    result = jn.models.train_char_lm(
        train_text,
        val_text,
        embed_dim=args.embed_dim,
        hidden=tuple(args.hidden),
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        max_seconds=60.0 * args.minutes,
        eval_every=args.eval_every,
        seed=args.seed,
    )
    vocab = result.vocab
    val = jn.data.tbptt_windows(vocab.encode(val_text), args.batch_size, args.seq_len)
    # the bigram is measured on exactly the (input, target) pairs the LSTM was measured on;
    # its smoothing is the best of a few on the held-out text, to favour the baseline
    train_ids = vocab.encode(train_text)
    bigram = min(
        jn.data.bigram_bits_per_char(train_ids, len(vocab), val.inputs, val.targets, alpha)
        for alpha in (0.01, 0.1, 0.5, 1.0)
    )
    text_out = jn.models.sample(
        result.params,
        vocab,
        args.prompt,
        400,
        embed_dim=args.embed_dim,
        hidden=tuple(args.hidden),
        temperature=args.temperature,
        key=jax.random.key(args.seed),
    )
    print(f"--- sample (temperature {args.temperature}) ---")
    print(args.prompt + text_out)
    print("---")
    print(f"steps={result.steps} total_time={time.perf_counter() - start:.1f}s")
    print(f"bigram_val_bpc={bigram:.4f}")
    print(f"improvement_over_bigram={bigram - result.val_bpc:.4f}")
    print(f"val_bpc={result.val_bpc:.4f}")


if __name__ == "__main__":
    main()
