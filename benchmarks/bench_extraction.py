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

Every mode also times the **bare forward**: the base model on the same length-sorted
batches, padded and copied to the device beforehand (outside the timing), outputs dropped,
one synchronisation at the end: the limit of any extraction. "of bare" = allornone's tokens/s
over the bare forward's, in the same run.

Random-config mode (for GPUs): ``--random-config gpt2-small`` (124 M), ``llama-1b`` (a
Llama-3.2-1B-shaped model), ``llama-3.1-8b`` (the real Llama-3.1-8B config: 8.0 B params),
or ``tiny`` / ``medium`` (CPU-sized Llamas), initialised randomly offline (built on the device
in the chosen dtype), with random token-id contexts of ``--seq-len`` tokens (lengths drawn in
[seq_len/2, seq_len]) in batches of ``--batch-size``. ``--no-peer`` skips the peer loops.

Audit mode (``--audit``, what ``benchmarks/gpu_check.sh`` runs on a GPU): the random model
with a word-level BPE trained in memory on the audit's test data, loaded by
``allornone.models.load`` (logits check included), extraction vs bare forward, then the
whole audit (``--quick``) on it with the files of ``tests/audit_data``; prints wall time, peak
GPU memory, extraction tokens/s and its ratio to the bare forward.

    python benchmarks/bench_extraction.py                       # SmolLM2, 2000 contexts, CPU
    python benchmarks/bench_extraction.py --n 64 --random-config gpt2-small   # smoke check
    python benchmarks/bench_extraction.py --random-config llama-1b --device cuda \\
        --dtype bfloat16 --n 8192 --batch-size 256 --seq-len 128
    python benchmarks/bench_extraction.py --random-config medium --no-peer --n 512  # CPU
    python benchmarks/bench_extraction.py --audit --random-config llama-3.1-8b --device cuda \\
        --dtype bfloat16 --n 4096 --batch-size 128
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
from pathlib import Path

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


#: Llama shapes (the real configs' values; no download). 8B: Llama-3.1-8B.
LLAMA_SHAPES: dict[str, dict] = {
    "llama-1b": dict(  # Llama-3.2-1B: 1.24 B params, V = 128256, d = 2048, tied
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        rope_theta=500000.0,
    ),
    "llama-3.1-8b": dict(  # Llama-3.1-8B: 8.03 B params, V = 128256, d = 4096, untied
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    ),
    "medium": dict(  # CPU-sized: 4 layers of d = 256, V = 8192
        vocab_size=8192,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    ),
    "tiny": dict(  # seconds on a CPU: what gpu_check's Python part runs with GPU_CHECK_TINY=1
        vocab_size=128256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        rope_theta=500000.0,
    ),
}
CONFIGS = ["gpt2-small", *LLAMA_SHAPES]


def random_model(kind: str, dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """A randomly initialised model built directly on ``device`` in ``dtype`` (an 8 B model
    in bf16 takes 16 GB there and never exists in float32)."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            if kind == "gpt2-small":
                model = GPT2LMHeadModel(GPT2Config())  # 124 M, V = 50257, d = 768
            elif kind in LLAMA_SHAPES:
                model = LlamaForCausalLM(LlamaConfig(**LLAMA_SHAPES[kind]))
            else:
                raise SystemExit(f"unknown --random-config {kind!r}")
    finally:
        torch.set_default_dtype(old)
    return model.eval()


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


def bare_forward(lm, encoded: list[list[int]], bs: int, device: torch.device) -> float:
    """Seconds of the base model alone on our length-sorted batches: inputs padded and on the
    device beforehand, outputs dropped, one synchronisation at the end."""
    batches = [[encoded[i] for i in idx] for idx in lm._batches(encoded, bs)]  # noqa: SLF001
    inputs = []
    for seqs in batches:
        ids, mask, pos, _ = lm._pad(seqs, lm.padding_side)  # noqa: SLF001
        if lm.padding_side == "right":  # as the extraction runs it (causal: no mask needed)
            mask = None
        inputs.append(lm._model_kwargs(ids, mask, pos))  # noqa: SLF001
    fwd = lm._base if lm._base is not None else lm.hf_model  # noqa: SLF001
    sync(device)

    def run() -> None:
        with torch.inference_mode():
            for kw in inputs:
                fwd(**kw)

    return timed(run, device, "bare forward")


def peak_memory(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a (not CUDA)"
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB allocated"


AUDIT_DATA = Path(__file__).resolve().parents[1] / "tests" / "audit_data"


def audit_tokenizer():
    """A byte-level BPE trained in memory on the audit's test data (so its words are single
    tokens), for a random model run through the whole audit."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from allornone.data import read_pairs_tsv, read_relations_json

    lines = (AUDIT_DATA / "labels.tsv").read_text(encoding="utf-8").splitlines()
    words: list[str] = []
    for fam in read_pairs_tsv(AUDIT_DATA / "concepts.tsv"):
        for a, b in fam.pairs:
            words += [a, b]
    for rel in read_relations_json(AUDIT_DATA / "relations.json"):
        for subj, obj in rel.samples:
            words += [subj, obj]
            lines += [t.format(subj) + " " + obj for t in rel.templates]
    lines += [" ".join(words)] * 4
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        lines * 2,
        trainers.BpeTrainer(
            vocab_size=4096,
            special_tokens=["<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>")


def random_ids(n: int, seq_len: int, V: int) -> list[list[int]]:
    g = np.random.default_rng(0)
    lens = g.integers(max(1, seq_len // 2), seq_len + 1, size=n)
    return [g.integers(0, V, size=int(k)).tolist() for k in lens]


def audit_mode(args: argparse.Namespace, device: torch.device) -> int:
    """Random model -> load (logits check) -> extraction vs bare forward -> whole audit."""
    from allornone.audit.pipeline import AuditConfig, run_audit
    from allornone.models import load
    from allornone.models._device import resolve_dtype

    t0 = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    kind = args.random_config or "llama-3.1-8b"
    tdtype = resolve_dtype(args.dtype)
    assert tdtype is not None
    model = random_model(kind, tdtype, str(device))
    n_params = sum(p.numel() for p in model.parameters())
    build_s = time.perf_counter() - t0
    step(f"built {kind}: {n_params / 1e9:.2f} B params in {build_s:.1f} s")
    t1 = time.perf_counter()
    lm = load(
        model,
        tokenizer=audit_tokenizer(),
        device=device,
        dtype=args.dtype,
        cache=False,
        batch_size=args.batch_size,
        name=kind,
    )
    load_s = time.perf_counter() - t1
    step(f"loaded (logits check included) in {load_s:.1f} s")
    print(lm.report())
    bs = args.batch_size
    encoded = random_ids(args.n, args.seq_len, lm.V)
    n_tok = sum(map(len, encoded))
    lm.embed_ids(encoded[: 2 * bs], batch_size=bs, progress=False)  # warm-up
    bare_forward(lm, encoded[: 2 * bs], bs, device)
    ours_s = timed(lambda: lm.embed_ids(encoded, batch_size=bs, progress=False), device, "ours")
    bare_s = bare_forward(lm, encoded, bs, device)
    ratio = bare_s / ours_s
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print()
    print(f"GPU CHECK  model {kind} ({n_params / 1e9:.2f} B params, {lm.dtype}, d={lm.d}, "
          f"V={lm.V}, {lm.device}{gpu})")  # fmt: skip
    print(f"  build / load+check {build_s:.1f} s / {load_s:.1f} s")
    print(f"  logits check       max dev {lm.logit_check:.3g} on logits of size "
          f"{lm.logit_check_scale:.3g} (tolerance {lm.logit_check_tol:g} relative)")  # fmt: skip
    print(f"  extraction         {n_tok / ours_s:10.0f} tokens/s  ({args.n} contexts, "
          f"{n_tok} tokens, batch {bs}, {ours_s:.2f} s)")  # fmt: skip
    print(f"  bare forward       {n_tok / bare_s:10.0f} tokens/s  ({bare_s:.2f} s)")
    verdict = "PASS" if ratio >= 0.8 else "BELOW GOAL"
    print(f"  extraction / bare  {ratio:10.3f}   (goal >= 0.8: {verdict})")
    print(f"  peak GPU memory    {peak_memory(device)} (so far)", flush=True)
    step("audit (--quick) with tests/audit_data")
    t2 = time.perf_counter()
    cfg = AuditConfig(
        model=kind,
        concepts=str(AUDIT_DATA / "concepts.tsv"),
        relations=str(AUDIT_DATA / "relations.json"),
        labels=str(AUDIT_DATA / "labels.tsv"),
        device=str(device),
        dtype=args.dtype,
        batch_size=bs,
        quick=True,
        progress=False,
    )
    res = run_audit(cfg, model=lm)
    audit_s = time.perf_counter() - t2
    wall = time.perf_counter() - t0
    st = res.structure
    print("  audit steps (s)    " + ", ".join(f"{k} {v:.1f}" for k, v in res.timings_s.items()))
    print(f"  audit              {len(res.properties)} property results; structure n={st.n} "
          f"V={st.V} d={st.d} k={st.k}; {audit_s:.1f} s")  # fmt: skip
    print(f"  peak GPU memory    {peak_memory(device)}")
    print(f"  wall time          {wall:.1f} s (build, load, extraction runs, audit)")
    return 0


def step(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="number of contexts (default 2000)")
    ap.add_argument("--n-single", type=int, default=200, help="contexts timed one at a time")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--random-config", choices=CONFIGS, default=None)
    ap.add_argument("--seq-len", type=int, default=128, help="random mode: max context length")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--no-peer", action="store_true", help="skip the peer loops")
    ap.add_argument("--audit", action="store_true", help="the GPU check: see the docstring")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.audit:
        return audit_mode(args, device)

    from allornone.models import load
    from allornone.models._device import resolve_dtype

    t0 = time.perf_counter()
    if args.random_config:
        tdtype = resolve_dtype(args.dtype)
        assert tdtype is not None
        model = random_model(args.random_config, tdtype, str(device))
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
        encoded = random_ids(args.n, args.seq_len, lm.V)
        source = f"random token ids, lengths in [{args.seq_len // 2}, {args.seq_len}]"
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
    bare_forward(lm, warm, bs, device)
    if not args.no_peer:
        peer_loop(model, [warm[:bs]], lm._pad_id, device)  # noqa: SLF001

    results: list[tuple[str, int, int, float]] = []
    F_ours = None

    def run_ours() -> None:
        nonlocal F_ours
        F_ours = ours(encoded, bs)

    results.append(
        ("allornone embed (base model, length-sorted)", n, n_tok, timed(run_ours, device, "ours"))
    )
    bare_s = bare_forward(lm, encoded, bs, device)
    results.append(("bare forward (same batches, inputs on device)", n, n_tok, bare_s))
    F_peer = None
    if not args.no_peer:

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
                    lambda: peer_loop(model, sorted_batches, lm._pad_id, device),  # noqa: SLF001
                    device,
                    "peer sorted",
                ),
            )
        )
    n_rows = len(results)
    m = min(n, args.n_single)
    sub = encoded[:m]
    sub_tok = sum(len(e) for e in sub)
    if m:
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

    assert F_ours is not None
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
    if F_peer is not None:
        dev = float(np.abs(F_ours[:, : F_peer.shape[1]] - lm.head.scale * F_peer).max())
        print(f"max |F_ours - F_peer| = {dev:.2e}")
    print(f"peak GPU memory: {peak_memory(device)}")
    print()
    w = max(len(r[0]) for r in results)
    print(f"{'method':<{w}}  {'contexts':>8}  {'seconds':>8}  {'tokens/s':>10}  {'ours is':>8}")
    base_rate = results[0][2] / results[0][3]
    sub_rate = results[n_rows][2] / results[n_rows][3] if m else base_rate
    for i, (name, k, toks, sec) in enumerate(results):
        rate = toks / sec
        ref = sub_rate if i >= n_rows else base_rate
        ratio = "" if i in (0, n_rows) else f"{ref / rate:.2f}x"
        print(f"{name:<{w}}  {k:>8}  {sec:>8.2f}  {rate:>10.0f}  {ratio:>8}")
    print()
    print(
        "'ours is' = throughput of allornone (batched) / throughput of that row, on the same "
        "contexts in this run."
    )
    print(f"extraction / bare forward = {results[1][3] / results[0][3]:.3f}")
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sys.exit(main())
