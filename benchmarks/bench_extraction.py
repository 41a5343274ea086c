"""Throughput of context-representation extraction (F) against the usual peer loop.

Default mode (CPU is fine): SmolLM2-135M-Instruct on ``--n`` real sentences (KJV verses when
the corpus is unpacked, else sentences of gensim's bundled Lee corpus). Compared, over the
same contexts in the same run:

1. ``allornone``: ``LanguageModel.embed`` (base model only, length-sorted batches);
2. ``peer loop``: ``model(**batch, output_hidden_states=True)`` over batches in input order,
   padded by the tokenizer, ``hidden_states[-1]`` at the last real token (what peer code
   does); and the same loop over our length-sorted batches (isolates the cost of the
   full-vocabulary logits and of keeping every layer's hidden states);
3. one context at a time (``batch_size=1``) on the first ``--n-single`` contexts.

Random-config mode (for GPUs): ``--random-config gpt2-small`` (124 M) or ``llama-1b``
(a Llama-3.2-1B-shaped model) initialised randomly offline, with random token-id contexts of
``--seq-len`` tokens (lengths drawn in [seq_len/2, seq_len]) in batches of ``--batch-size``.

    python benchmarks/bench_extraction.py                       # SmolLM2, 2000 contexts, CPU
    python benchmarks/bench_extraction.py --n 64 --random-config gpt2-small   # smoke check
    python benchmarks/bench_extraction.py --random-config llama-1b --device cuda \\
        --dtype bfloat16 --n 8192 --batch-size 256 --seq-len 128
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def real_contexts(n: int) -> tuple[list[str], str]:
    """``n`` real sentences: KJV verses if available, else Lee-corpus sentences."""
    try:
        from allornone.data.corpora import kjv_verses

        verses = kjv_verses()
        step = max(1, len(verses) // n)
        return verses[::step][:n], "KJV verses (every k-th)"
    except Exception:
        from gensim.test.utils import datapath

        with open(datapath("lee_background.cor"), encoding="utf-8") as fh:
            text = fh.read()
        sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
        out = (sents * (n // max(len(sents), 1) + 1))[:n]
        return out, "sentences of gensim's lee_background.cor"


def toy_tokenizer():
    """A byte-level BPE trained in memory (the random models only need some tokenizer)."""
    from pathlib import Path

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    try:
        from gensim.test.utils import datapath

        with open(datapath("lee_background.cor"), encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except ImportError:  # GPU images without gensim: any English text will do
        lines = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        lines,
        trainers.BpeTrainer(
            vocab_size=512,
            special_tokens=["<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>")


def random_model(kind: str):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if kind == "gpt2-small":
        return GPT2LMHeadModel(GPT2Config())  # 124 M, V = 50257, d = 768
    if kind == "llama-1b":  # Llama-3.2-1B shape: 1.24 B params, V = 128256, d = 2048
        cfg = LlamaConfig(
            vocab_size=128256,
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=4096,
            tie_word_embeddings=True,
            rope_theta=500000.0,
        )
        return LlamaForCausalLM(cfg)
    raise SystemExit(f"unknown --random-config {kind!r}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device, label: str = "") -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    sec = time.perf_counter() - t0
    if label:  # progress on stderr, so a long CPU run can be followed
        print(f"[{time.strftime('%H:%M:%S')}] {label}: {sec:.1f} s", file=sys.stderr, flush=True)
    return sec


def peer_loop(model, batches: Sequence[list[list[int]]], pad_id: int, device) -> np.ndarray:
    """The common peer pattern: full model, all hidden states, right padding, last real."""
    out = []
    with torch.no_grad():
        for seqs in batches:
            T = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
            mask = torch.zeros((len(seqs), T), dtype=torch.long)
            for i, s in enumerate(seqs):
                ids[i, : len(s)] = torch.tensor(s)
                mask[i, : len(s)] = 1
            batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
            hs = model(**batch, output_hidden_states=True).hidden_states[-1]
            last = batch["attention_mask"].sum(1) - 1
            out.append(hs[torch.arange(len(seqs), device=device), last].float().cpu())
    return torch.cat(out).numpy()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="number of contexts (default 2000)")
    ap.add_argument("--n-single", type=int, default=200, help="contexts timed one at a time")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--random-config", choices=["gpt2-small", "llama-1b"], default=None)
    ap.add_argument("--seq-len", type=int, default=128, help="random mode: max context length")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    from allornone.models import load

    t0 = time.perf_counter()
    if args.random_config:
        model = random_model(args.random_config)
        lm = load(
            model,
            tokenizer=toy_tokenizer(),
            device=device,
            dtype=args.dtype,
            cache=False,
            batch_size=args.batch_size,
            max_batch_tokens=1 << 30,
            name=args.random_config,
        )
        g = np.random.default_rng(0)
        lens = g.integers(max(1, args.seq_len // 2), args.seq_len + 1, size=args.n)
        encoded = [g.integers(0, lm.V, size=int(k)).tolist() for k in lens]
        source = f"random token ids, lengths in [{args.seq_len // 2}, {args.seq_len}]"

        def ours(enc: list[list[int]], bs: int) -> np.ndarray:
            return lm.embed_ids(enc, batch_size=bs, progress=False)
    else:
        lm = load(
            "smollm2",
            device=device,
            dtype=args.dtype,
            cache=False,
            batch_size=args.batch_size,
            max_batch_tokens=1 << 30,
        )
        texts, source = real_contexts(args.n)
        encoded = lm.encode(texts)

        def ours(enc: list[list[int]], bs: int) -> np.ndarray:
            return lm.embed_ids(enc, batch_size=bs, progress=False)

    load_s = time.perf_counter() - t0
    model = lm.hf_model
    n, bs = len(encoded), args.batch_size
    n_tok = sum(len(e) for e in encoded)
    in_order = [encoded[i : i + bs] for i in range(0, n, bs)]
    sorted_batches = [[encoded[i] for i in idx] for idx in lm._batches(encoded, bs)]  # noqa: SLF001
    pad_tokens_in_order = sum(len(b) * max(map(len, b)) for b in in_order)
    pad_tokens_sorted = sum(len(b) * max(map(len, b)) for b in sorted_batches)

    # warm-up (allocators, kernels) on a few batches of each path
    warm = encoded[: min(n, 2 * bs)]
    ours(warm, bs)
    peer_loop(model, [warm[:bs]], lm._pad_id, device)  # noqa: SLF001

    results: list[tuple[str, int, int, float]] = []
    F_ours = None

    def run_ours() -> None:
        nonlocal F_ours
        F_ours = ours(encoded, bs)

    results.append(
        ("allornone embed (base model, length-sorted)", n, n_tok, timed(run_ours, device, "ours"))
    )
    F_peer = None

    def run_peer() -> None:
        nonlocal F_peer
        F_peer = peer_loop(model, in_order, lm._pad_id, device)  # noqa: SLF001

    results.append(
        (
            "peer loop: model(**batch, output_hidden_states=True)",
            n,
            n_tok,
            timed(run_peer, device, "peer"),
        )
    )
    results.append(
        (
            "peer loop on our length-sorted batches",
            n,
            n_tok,
            timed(
                lambda: peer_loop(model, sorted_batches, lm._pad_id, device), device, "peer sorted"
            ),
        )
    )  # noqa: SLF001
    m = min(n, args.n_single)
    sub = encoded[:m]
    sub_tok = sum(len(e) for e in sub)
    results.append(
        (
            f"allornone, batched (first {m} contexts)",
            m,
            sub_tok,
            timed(lambda: ours(sub, bs), device, "ours subset"),
        )
    )
    results.append(
        (
            f"allornone, one context at a time (first {m})",
            m,
            sub_tok,
            timed(lambda: ours(sub, 1), device, "one at a time"),
        )
    )

    assert F_ours is not None and F_peer is not None
    scale = lm.head.scale
    dev = float(np.abs(F_ours[:, : F_peer.shape[1]] - scale * F_peer).max())

    print()
    print(
        f"model: {lm.name}  (d={lm.d}, V={lm.V}, {lm.dtype}, device={device}, "
        f"torch threads={torch.get_num_threads()}, load {load_s:.1f} s)"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
    )
    print(f"contexts: {n} ({source}); {n_tok} real tokens, mean {n_tok / n:.1f}; batch size {bs}")
    print(f"padded tokens: {pad_tokens_in_order} in input order, {pad_tokens_sorted} sorted")
    print(f"max |F_ours - F_peer| = {dev:.2e}")
    print()
    w = max(len(r[0]) for r in results)
    print(f"{'method':<{w}}  {'contexts':>8}  {'seconds':>8}  {'tokens/s':>10}  {'ours is':>8}")
    base_rate = results[0][2] / results[0][3]
    sub_rate = results[3][2] / results[3][3]
    for i, (name, k, toks, sec) in enumerate(results):
        rate = toks / sec
        ref = sub_rate if i >= 3 else base_rate
        ratio = "" if i in (0, 3) else f"{ref / rate:.2f}x"
        print(f"{name:<{w}}  {k:>8}  {sec:>8.2f}  {rate:>10.0f}  {ratio:>8}")
    print()
    print(
        "'ours is' = throughput of allornone (batched) / throughput of that row, on the same "
        "contexts in this run."
    )
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sys.exit(main())
