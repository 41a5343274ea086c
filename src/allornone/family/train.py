"""Train families of small next-token predictors from scratch on real prose.

A *family* is a folder of models that learn the same distribution: the same corpus split, the
same tokenizer (trained once, saved in the family), different seeds and widths. Two kinds:

- small GPT-2-style transformers (PyTorch / transformers), saved with ``save_pretrained`` so
  that :func:`allornone.models.load` reads them like any Hugging Face model;
- skip-gram negative-sampling word2vec models (gensim), ``f`` = input vectors, ``g`` = output
  vectors.

Layout::

    FAMILY/family.json                 settings, corpus split, tokenizer hash, versions
    FAMILY/tokenizer/                  the shared tokenizer (PreTrainedTokenizerFast)
    FAMILY/data/{train,heldout}.npy    token streams
    FAMILY/baseline.json               bigram held-out perplexity
    FAMILY/tf-d{D}-s{S}/checkpoint.pt  resumable training state (model, optimizer, step, curve;
                                       tensors, numbers and lists only: read with
                                       torch.load(weights_only=True), nothing is unpickled)
    FAMILY/tf-d{D}-s{S}/final/         finished model + tokenizer (save_pretrained)
    FAMILY/tf-d{D}-s{S}/curve.json     training curve; curve.png
    FAMILY/w2v-d{D}-s{S}/model/        word2vec models (word2vec.json + word2vec.safetensors,
                                       pickle-free; families before this version: model.w2v)

Reproducible from the seed: batch ``i`` of a run is drawn from ``default_rng([seed, i])``, so a
resumed run sees exactly the batches it would have seen, and every write is atomic.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_dir as _atomic_dir
from .._io import atomic_path, atomic_write_json
from .._validation import AllOrNoneError

FAMILY_VERSION = 1
EOS = "<|endoftext|>"


@dataclass
class TrainConfig:
    """Settings of a family (all models share the corpus, tokenizer and schedule)."""

    corpus: str = "kjv+austen"
    vocab_size: int = 4096
    ctx: int = 64
    layers: int = 2
    heads: int = 4
    widths: list[int] = field(default_factory=lambda: [64, 128])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = 1200
    batch: int = 32
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.01
    eval_every: int = 250
    eval_windows: int = 256
    checkpoint_every: int = 250
    heldout_every: int = 20
    word2vec: bool = True
    w2v_epochs: int = 5
    device: str = "auto"

    def tasks(self) -> list[tuple[str, int, int]]:
        """The models to train, ``(kind, width, seed)``, seed by seed: every width's
        transformer of a seed, then (with ``word2vec``) its word2vec models, then the next
        seed, so an interrupted run leaves complete seeds behind."""
        out: list[tuple[str, int, int]] = []
        for seed in self.seeds:
            out += [("transformer", w, seed) for w in self.widths]
            if self.word2vec:
                out += [("word2vec", w, seed) for w in self.widths]
        return out

    def scaled(self, factor: int) -> TrainConfig:
        """The GPU preset: widths, depth, context, batch and steps scaled up."""
        c = TrainConfig(**asdict(self))
        c.widths = [w * factor for w in self.widths]
        c.layers = self.layers * 2
        c.ctx = self.ctx * 2
        c.batch = self.batch * factor
        c.steps = self.steps * 2
        return c


#: Named families. ``small``: the earlier default (3 seeds x widths 64, 128, 1,200 steps;
#: 18 min on the 2-core CPU machine with one job). ``reference``: 8 seeds x widths 96, 128,
#: 160, 800 steps, transformers and word2vec, sized to train within 60 minutes on that
#: machine with ``--jobs 2`` (docs/FAMILY.md has the measured wall time and perplexities);
#: d = 64 at 800 steps did not clearly beat the bigram baseline (101-104 vs 103.8).
PRESETS: dict[str, dict[str, Any]] = {
    "small": {"widths": [64, 128], "seeds": [0, 1, 2], "steps": 1200},
    "reference": {"widths": [96, 128, 160], "seeds": list(range(8)), "steps": 800},
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a named preset (``PRESETS``), with ``overrides`` applied
    (``None`` values are ignored, so command-line defaults can be passed through)."""
    if name not in PRESETS:
        raise AllOrNoneError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    fields = dict(PRESETS[name])
    fields.update({k: v for k, v in overrides.items() if v is not None})
    cfg = TrainConfig(**fields)
    if not cfg.seeds or not cfg.widths:
        raise AllOrNoneError("a family needs at least one seed and one width")
    return cfg


# ------------------------------------------------------------------------------ corpus
def corpus_texts(corpus: str) -> list[str]:
    """Lines of real prose: ``kjv``, ``austen``, ``fortunes`` joined with ``+``."""
    from ..models.word2vec import corpus_lines

    lines = corpus_lines(corpus)
    if not lines:
        raise AllOrNoneError(f"corpus {corpus!r} is empty")
    return lines


def split_texts(lines: list[str], every: int) -> tuple[list[str], list[str]]:
    """Deterministic split: every ``every``-th block of lines is held out. Blocks are 50 lines
    (fewer for small corpora) so neighbouring lines rarely straddle the split."""
    block = max(1, min(50, len(lines) // (every * 5)))
    train: list[str] = []
    held: list[str] = []
    for b, start in enumerate(range(0, len(lines), block)):
        (held if b % every == every - 1 else train).extend(lines[start : start + block])
    if not held or not train:
        raise AllOrNoneError(
            f"corpus of {len(lines)} lines is too small to hold out 1 block in {every}"
        )
    return train, held


def train_tokenizer(texts: list[str], vocab_size: int, out_dir: Path):
    """Byte-level BPE trained on the training split, saved as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS, unk_token=EOS
    )
    _atomic_dir(out_dir, fast.save_pretrained)
    return fast


def tokenizer_hash(tok_dir: Path) -> str:
    return hashlib.sha256((tok_dir / "tokenizer.json").read_bytes()).hexdigest()[:16]


def encode_stream(tok, texts: list[str]) -> np.ndarray:
    ids: list[int] = []
    eos = tok.convert_tokens_to_ids(EOS)
    for batch_start in range(0, len(texts), 4096):
        for row in tok(texts[batch_start : batch_start + 4096])["input_ids"]:
            ids.extend(row)
            ids.append(eos)
    return np.asarray(ids, dtype=np.int32)


# ------------------------------------------------------------------------------ family
def prepare_family(out: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Create (or check) the family folder: corpus split, tokenizer, token streams, bigram."""
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "family.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        _check_compatible(meta, cfg, out)
        return meta
    lines = corpus_texts(cfg.corpus)
    train, held = split_texts(lines, cfg.heldout_every)
    tok = train_tokenizer(train, cfg.vocab_size, out / "tokenizer")
    (out / "data").mkdir(exist_ok=True)
    tr, he = encode_stream(tok, train), encode_stream(tok, held)
    for name, arr in (("train.npy", tr), ("heldout.npy", he)):
        with atomic_path(out / "data" / name) as tmp:
            np.save(tmp, arr)
    bigram = bigram_perplexity(tr, he, len(tok))
    atomic_write_json(out / "baseline.json", {"bigram_heldout_ppl": bigram})
    meta = {
        "family_version": FAMILY_VERSION,
        "config": asdict(cfg),
        "tokenizer_sha": tokenizer_hash(out / "tokenizer"),
        "vocab_size": len(tok),
        "train_tokens": int(tr.size),
        "heldout_tokens": int(he.size),
        "train_lines": len(train),
        "heldout_lines": len(held),
        "bigram_heldout_ppl": bigram,
    }
    atomic_write_json(meta_path, meta)
    return meta


def _check_compatible(meta: dict, cfg: TrainConfig, out: Path) -> None:
    if meta.get("family_version") != FAMILY_VERSION:
        raise AllOrNoneError(
            f"{out} was written by family format version {meta.get('family_version')}, this "
            f"is version {FAMILY_VERSION}: train a new family in another folder"
        )
    old = meta["config"]
    for key in ("corpus", "vocab_size", "heldout_every"):
        if old[key] != getattr(cfg, key):
            raise AllOrNoneError(
                f"{out} holds a family with {key}={old[key]!r}, you asked for "
                f"{getattr(cfg, key)!r}: models of one family must share corpus and tokenizer; "
                "use another --out folder"
            )
    if tokenizer_hash(out / "tokenizer") != meta["tokenizer_sha"]:
        raise AllOrNoneError(f"{out}/tokenizer was modified after the family was created")


def bigram_perplexity(train: np.ndarray, held: np.ndarray, V: int, alpha: float = 0.1) -> float:
    """Held-out perplexity of an add-alpha smoothed bigram model (the baseline to beat)."""
    counts = np.zeros((V, V), dtype=np.float64)
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    counts += alpha
    logp = np.log(counts) - np.log(counts.sum(axis=1, keepdims=True))
    return float(np.exp(-logp[held[:-1], held[1:]].mean()))


# ------------------------------------------------------------------------------ transformer
def _device(name: str):
    import torch

    from ..models import check_device

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(name)  # a clear error naming the devices that exist


def build_model(cfg: TrainConfig, width: int, vocab: int, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    conf = GPT2Config(
        vocab_size=vocab,
        n_positions=cfg.ctx,
        n_embd=width,
        n_layer=cfg.layers,
        n_head=cfg.heads,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(conf)


def batch_at(stream: np.ndarray, seed: int, step: int, batch: int, ctx: int) -> np.ndarray:
    """The batch of ``step``: a pure function of (seed, step), so resuming is exact."""
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, stream.size - ctx - 1, size=batch)
    return np.stack([stream[s : s + ctx + 1] for s in starts])


def heldout_loss(model, held: np.ndarray, cfg: TrainConfig, device) -> float:
    import torch

    n = min(cfg.eval_windows, (held.size - 1) // cfg.ctx)
    starts = np.linspace(0, held.size - cfg.ctx - 1, n).astype(int)
    X = torch.from_numpy(np.stack([held[s : s + cfg.ctx + 1] for s in starts]).astype(np.int64))
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, n, 64):
            xb = X[i : i + 64].to(device)
            logits = model(input_ids=xb[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), xb[:, 1:].reshape(-1), reduction="sum"
            )
            total += float(loss)
            count += xb[:, 1:].numel()
    model.train()
    return total / count


def load_checkpoint(ckpt: Path, device: Any) -> dict[str, Any]:
    """Read a training checkpoint without unpickling objects: ``torch.load`` with
    ``weights_only=True`` accepts only tensors, numbers, strings and containers of them."""
    import pickle

    import torch

    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AllOrNoneError(
            f"checkpoint {ckpt} cannot be read safely (it is damaged or holds objects other "
            f"than tensors and numbers: {first[:160]}); delete it to retrain this model from "
            "step 0"
        ) from None
    if not isinstance(state, dict):
        raise AllOrNoneError(
            f"checkpoint {ckpt} holds a {type(state).__name__}, not a training state; delete "
            "it to retrain this model from step 0"
        )
    return state


def train_transformer(
    family: Path, cfg: TrainConfig, width: int, seed: int, *, progress: bool = True
) -> dict[str, Any]:
    """Train (or resume, or skip if finished) one transformer of the family."""
    import torch
    from tqdm.auto import tqdm
    from transformers import PreTrainedTokenizerFast

    run = family / f"tf-d{width}-s{seed}"
    final = run / "final"
    if (run / "done.json").exists():
        return json.loads((run / "done.json").read_text())
    run.mkdir(parents=True, exist_ok=True)
    tok = PreTrainedTokenizerFast.from_pretrained(family / "tokenizer")
    train = np.load(family / "data" / "train.npy")
    held = np.load(family / "data" / "heldout.npy")
    device = _device(cfg.device)
    model = build_model(cfg, width, len(tok), seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, curve, elapsed = 0, [], 0.0
    ckpt = run / "checkpoint.pt"
    if ckpt.exists():
        state = load_checkpoint(ckpt, device)
        if state.get("family_version") != FAMILY_VERSION or state.get("width") != width:
            raise AllOrNoneError(
                f"{ckpt} was written by another version or for another model; delete it to "
                "retrain this model"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        step, curve, elapsed = state["step"], state["curve"], state["elapsed"]

    def lr_at(s: int) -> float:
        if s < cfg.warmup:
            return cfg.lr * (s + 1) / cfg.warmup
        t = (s - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=f"d={width} seed={seed}",
        disable=not progress,
        leave=False,
    )
    t0 = time.perf_counter() - elapsed
    running = []
    model.train()
    while step < cfg.steps:
        xb = torch.from_numpy(batch_at(train, seed, step, cfg.batch, cfg.ctx).astype(np.int64))
        xb = xb.to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(input_ids=xb[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), xb[:, 1:].reshape(-1)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        step += 1
        bar.update(1)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            h = heldout_loss(model, held, cfg, device)
            curve.append({"step": step, "train_loss": float(np.mean(running)), "heldout_loss": h})
            running = []
            bar.set_postfix(heldout_ppl=f"{math.exp(h):.1f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            with atomic_path(ckpt) as tmp:
                torch.save(
                    {
                        "family_version": FAMILY_VERSION,
                        "width": width,
                        "seed": seed,
                        "model": model.state_dict(),
                        "optim": opt.state_dict(),
                        "step": step,
                        "curve": curve,
                        "elapsed": time.perf_counter() - t0,
                    },
                    tmp,
                )
    bar.close()
    model = model.to("cpu")

    def save(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    _atomic_dir(final, save)
    atomic_write_json(run / "curve.json", curve)
    _plot_curve(run / "curve.png", curve, json.loads((family / "baseline.json").read_text()))
    done = {
        "kind": "transformer",
        "name": run.name,
        "width": width,
        "seed": seed,
        "steps": cfg.steps,
        "train_seconds": time.perf_counter() - t0,
        "heldout_loss": curve[-1]["heldout_loss"],
        "heldout_ppl": math.exp(curve[-1]["heldout_loss"]),
        "params": int(sum(p.numel() for p in model.parameters())),
        "device": str(device),
    }
    atomic_write_json(run / "done.json", done)
    ckpt.unlink(missing_ok=True)
    return done


def train_w2v(family: Path, cfg: TrainConfig, width: int, seed: int) -> dict[str, Any]:
    """Train one skip-gram word2vec model of the family on the same training split."""
    from ..models.word2vec import train_word2vec

    run = family / f"w2v-d{width}-s{seed}"
    if (run / "done.json").exists():
        return json.loads((run / "done.json").read_text())
    train, _ = split_texts(corpus_texts(cfg.corpus), cfg.heldout_every)
    t0 = time.perf_counter()
    m = train_word2vec(train, vector_size=width, seed=seed, epochs=cfg.w2v_epochs)
    run.mkdir(parents=True, exist_ok=True)
    m.save(run / "model")  # pickle-free: word2vec.json + word2vec.safetensors
    done = {
        "kind": "word2vec",
        "name": run.name,
        "width": width,
        "seed": seed,
        "train_seconds": time.perf_counter() - t0,
        "vocab": len(m.w2v.wv),
    }
    atomic_write_json(run / "done.json", done)
    return done


def _train_one(
    family: Path, cfg: TrainConfig, task: tuple[str, int, int], progress: bool
) -> dict[str, Any]:
    kind, width, seed = task
    if kind == "transformer":
        return train_transformer(family, cfg, width, seed, progress=progress)
    return train_w2v(family, cfg, width, seed)


def _worker_init(threads: int) -> None:
    """A worker process of ``train_family(jobs=N)``: ``threads`` torch threads, so N workers
    share the machine's cores instead of oversubscribing them."""
    import torch

    torch.set_num_threads(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def train_family(
    out: str | Path,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    jobs: int = 1,
    on_done: Any = None,
) -> dict[str, Any]:
    """Train every model of the family (resuming unfinished ones). Returns a summary.

    ``jobs``: models trained at once, each in its own process with ``cpu_count // jobs``
    torch threads (1 = in this process, the torch default). Models are taken seed by seed
    (:meth:`TrainConfig.tasks`). ``on_done(result)`` is called as each model finishes.
    Results are the same whatever ``jobs`` is, up to float rounding (the thread count
    changes the order of sums): each model depends only on its seed.
    """
    out = Path(out)
    if jobs < 1:
        raise AllOrNoneError(f"--jobs must be at least 1, got {jobs}")
    _device(cfg.device)  # a bad --device fails now, not after the tokenizer is trained
    t0 = time.perf_counter()
    meta = prepare_family(out, cfg)
    tasks = cfg.tasks()
    results: list[dict[str, Any]] = []
    if jobs == 1:
        for task in tasks:
            results.append(_train_one(out, cfg, task, progress))
            if on_done is not None:
                on_done(results[-1])
    else:
        results = _train_parallel(out, cfg, tasks, jobs, on_done)
    summary = {
        "family": str(out),
        "bigram_heldout_ppl": meta["bigram_heldout_ppl"],
        "models": results,
        "jobs": jobs,
        "wall_seconds": time.perf_counter() - t0,
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def _train_parallel(
    out: Path, cfg: TrainConfig, tasks: list[tuple[str, int, int]], jobs: int, on_done: Any
) -> list[dict[str, Any]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // jobs)
    # spawn: the parent has imported torch and used the tokenizer; forking either is unsafe
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads,))
    try:
        futures = [pool.submit(_train_one, out, cfg, task, False) for task in tasks]
        for f in as_completed(futures):
            result = f.result()  # a failed model raises here; the rest are cancelled
            if on_done is not None:
                on_done(result)
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------ io helpers
def _plot_curve(path: Path, curve: list[dict], baseline: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    steps = [c["step"] for c in curve]
    ax.plot(steps, [math.exp(c["train_loss"]) for c in curve], label="train")
    ax.plot(steps, [math.exp(c["heldout_loss"]) for c in curve], label="held-out")
    ax.axhline(baseline["bigram_heldout_ppl"], color="grey", ls="--", label="bigram (held-out)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("perplexity")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
