"""Options several commands share, and the default names of their output folders."""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Help of ``--allow-nonlinear-head`` (every command that loads a transformers model).
NONLINEAR_HEAD_HELP = (
    "load a model whose LM head is not softmax(f^T g), a logit softcap c*tanh(z/c) as in "
    "Gemma-2, instead of refusing it: the predictor then describes the model's linear logits "
    "f^T g before the cap, so the results are about that linear model, not exactly about the "
    "model's distribution"
)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The options of audit and compare (model loading, output folder, sizes, display)."""
    p.add_argument("--out", default=None, help="output folder (default: audit-<model>)")
    p.add_argument(
        "--force", action="store_true", help="replace a previous allornone report in --out"
    )
    p.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda or cuda:1")
    p.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "bfloat16", "float16"],
        help="compute dtype of the model (default: the model's own; bfloat16 halves GPU memory)",
    )
    p.add_argument(
        "--device-map",
        default=None,
        choices=["auto"],
        help="auto: spread a model larger than one GPU over all GPUs (then CPU), with accelerate",
    )
    p.add_argument("--batch-size", type=int, default=None, help="contexts per forward batch")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sets (smoke test, ~1-2 min): 12 passages and 10 nouns per class (user "
        "labels: 10 per class), 2 relations of 14 subjects, 40 analogy questions per "
        "section, 40 pairs per concept family, 2 equivalent models",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow gensim Word2Vec pickle files (unpickling runs code: only trusted files)",
    )
    add_allow_nonlinear_head(p)


def add_allow_nonlinear_head(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-nonlinear-head", action="store_true", help=NONLINEAR_HEAD_HELP)


@contextlib.contextmanager
def nonlinear_head_allowed() -> Iterator[None]:
    """``--allow-nonlinear-head``: for the length of one command, every model loaded through
    :func:`allornone.models.load` (the audit, ``--layers`` and compare pipelines look it up
    when they load) gets ``allow_nonlinear_head=True``; then ``load`` is put back."""
    from .. import models

    real = models.load

    @functools.wraps(real)
    def load(name_or_path: Any, **options: Any) -> Any:
        options.setdefault("allow_nonlinear_head", True)
        return real(name_or_path, **options)

    models.load = load
    try:
        yield
    finally:
        models.load = real


def add_plugin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugin",
        action="append",
        default=None,
        metavar="MODULE_OR_FILE",
        help="import a module or .py file that registers a property and its audit step "
        "(repeatable; docs/EXTENDING.md). Its code runs: only your own or trusted plugins",
    )


def add_step_options(p: argparse.ArgumentParser) -> None:
    """The options the registered audit steps declare (built-in and plugins)."""
    from ..audit.step import audit_steps

    for step in audit_steps():
        for o in step.options:
            p.add_argument(
                o.flag,
                dest=f"step_option_{o.dest}",
                action="append" if o.repeatable else "store",
                default=None,
                metavar=o.metavar,
                help=o.help,
            )


def step_option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The values of the options :func:`add_step_options` added, by their ``dest``."""
    prefix = "step_option_"
    return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix)}


def out_path(args: argparse.Namespace, default: str) -> Path:
    """``--out``, else ``default`` (in the current folder)."""
    return Path(args.out) if args.out else Path(default)


def safe_name(s: str) -> str:
    """A model name or path as a folder-name part: its last component, [A-Za-z0-9-_.] only."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in Path(s).name)[:60]
