"""The argument parser: the top-level options, then one sub-parser per command module."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import ModuleType

from .. import __version__
from . import audit, compare, extract, study, train, verify

#: The command modules, in the order ``allornone --help`` lists them. Each has ``NAME``,
#: ``add_parser(sub)`` (its sub-parser) and ``run(args)`` (its exit code).
COMMAND_MODULES: tuple[ModuleType, ...] = (audit, compare, train, study, extract, verify)

#: Command name -> its ``run(args)``.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {m.NAME: m.run for m in COMMAND_MODULES}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allornone",
        description="Which linear properties of a language model are facts about its "
        "next-token distribution (identified, all-or-none), and which are accidents of "
        "its parametrisation.",
    )
    parser.add_argument("--version", action="version", version=f"allornone {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        module.add_parser(sub)
    return parser
