"""A character Transformer language model, on the corpus, split and time budget of char_lm.py.

Usage:
    python examples/transformer_lm.py                     # the Python standard library's source
    python examples/transformer_lm.py --text my_book.txt  # any UTF-8 text file
    python examples/transformer_lm.py --minutes 2 --layers 2

The corpus is ``examples/char_lm.py``'s: the first 2,000,000 characters of the standard
library's top-level ``.py`` files, the last 10% held out, 8 minutes of training by
default. A causal pre-norm Transformer (learned positions, tied embeddings, AdamW with
warmup and a cosine decay that follows the time budget) trains on random windows; its
bits per character are measured on exactly the held-out characters char_lm.py measures,
each read with up to ``seq_len - 1`` characters of context. Prints the curve, the bigram
baseline on the same characters, a sample drawn with the key/value cache, and as its last
line ``val_bpc=...``.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import jaxnets as jn


def sample_text(args, params, vocab, prompt: str, length: int, key) -> str:
    """``length`` characters after ``prompt``, drawn in chunks that fit the context: each
    chunk starts from the last half-context of what came before."""
    model = jn.models.transformer_lm(
        len(vocab),
        args.d_model,
        args.heads,
        args.layers,
        args.seq_len,
        decode=True,
        mlp=args.mlp,
        positions=args.positions,
    )
    ids = list(vocab.encode(prompt))
    keep = args.seq_len // 2
    while len(ids) - len(prompt) < length:
        context = np.asarray(ids[-keep:], np.int32)[None, :]
        room = min(args.seq_len - context.shape[1], length - (len(ids) - len(prompt)))
        key, k = jax.random.split(key)
        drawn = jn.models.generate(
            model, params, context, room, temperature=args.temperature, top_k=args.top_k, key=k
        )
        ids.extend(np.asarray(drawn)[0].tolist())
    return vocab.decode(np.asarray(ids[len(prompt) :]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default=None, help="a UTF-8 text file (default: stdlib)")
    parser.add_argument("--max-chars", type=int, default=2_000_000)
    parser.add_argument("--minutes", type=float, default=8.0, help="training time budget")
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--mlp", choices=["gelu", "swiglu"], default="gelu")
    parser.add_argument(
        "--positions", choices=["learned", "sinusoidal", "rotary"], default="learned"
    )
    parser.add_argument("--seq-len", type=int, default=64, help="training window and context")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-streams", type=int, default=32, help="char_lm.py's --batch-size")
    parser.add_argument("--eval-seq-len", type=int, default=64, help="char_lm.py's --seq-len")
    parser.add_argument("--prompt", default="def ")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    text = jn.data.load_text(args.text, args.max_chars)
    train_text, val_text = jn.data.split_text(text, 0.1)
    print(f"corpus: {len(train_text):,} training and {len(val_text):,} held-out characters")

    result = jn.models.train_transformer_lm(
        train_text,
        val_text,
        d_model=args.d_model,
        heads=args.heads,
        layers=args.layers,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        max_steps=args.max_steps,
        max_seconds=60.0 * args.minutes,
        eval_every=args.eval_every,
        eval_streams=args.eval_streams,
        eval_seq_len=args.eval_seq_len,
        seed=args.seed,
        mlp=args.mlp,
        positions=args.positions,
    )
    vocab = result.vocab
    val = jn.data.tbptt_windows(vocab.encode(val_text), args.eval_streams, args.eval_seq_len)
    # the bigram is measured on the (input, target) pairs the model was measured on, with
    # the best of a few smoothings on the held-out text, as in char_lm.py
    train_ids = vocab.encode(train_text)
    bigram = min(
        jn.data.bigram_bits_per_char(train_ids, len(vocab), val.inputs, val.targets, alpha)
        for alpha in (0.01, 0.1, 0.5, 1.0)
    )
    text_out = sample_text(args, result.params, vocab, args.prompt, 400, jax.random.key(args.seed))
    print(f"--- sample (temperature {args.temperature}, top-k {args.top_k}) ---")
    print(args.prompt + text_out)
    print("---")
    print(f"steps={result.steps} total_time={time.perf_counter() - start:.1f}s")
    print(f"bigram_val_bpc={bigram:.4f}")
    print(f"improvement_over_bigram={bigram - result.val_bpc:.4f}")
    print(f"val_bpc={result.val_bpc:.4f}")


if __name__ == "__main__":
    main()
