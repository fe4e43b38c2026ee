"""`ck`: one CLI for every deterministic step. Subcommands register themselves from their own
modules (`register(subparsers)`), and those modules must import nothing heavy at module level:
torch, torchtune and inspect_ai are imported inside the command functions that need them.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import NoReturn

from .errors import CkError
from .util.procs import exit_after

# module path -> each must define register(subparsers); order = order in --help
COMMAND_MODULES = [
    "cruijff_kit.commands.design",
    "cruijff_kit.commands.scaffold",
    "cruijff_kit.commands.run",
    "cruijff_kit.commands.analyze",
    "cruijff_kit.commands.results",
    "cruijff_kit.commands.compare",
    "cruijff_kit.commands.rerun",
    "cruijff_kit.commands.task",
    "cruijff_kit.launch.cli",
    "cruijff_kit.commands.setup",
    "cruijff_kit.commands.doctor",
    "cruijff_kit.commands.inspect_cli",
]


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose help and usage text end quietly when the reader has left
    (`ck --help | head -3`), whatever the Python: argparse itself ignores that from later 3.11
    releases on (3.11.7 does, Debian's 3.11.2 lets the BrokenPipeError out). Subcommands' parsers
    are made of the same class."""

    def _print_message(self, message, file=None):  # noqa: ANN001  (argparse's own signature)
        try:
            super()._print_message(message, file)
        except BrokenPipeError:
            pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ck",
        description="cruijff_kit: design -> scaffold -> run -> analyze LLM fine-tuning experiments.",
    )
    parser.add_argument("--version", action="version", version=f"ck {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _add_json_schema_flags(parser, [])
    return parser


def _add_json_schema_flags(parser: argparse.ArgumentParser, path: list[str]) -> None:
    """Every (sub)command with --json also gets --json-schema (commands/json_fields.yaml)."""
    from .commands._common import JsonSchemaAction

    if path and "--json" in parser._option_string_actions:
        JsonSchemaAction.add(parser, " ".join(path))
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _add_json_schema_flags(child, [*path, name])


def _version() -> str:
    from . import __version__

    return __version__


def normalize_argv(argv: list[str]) -> list[str]:
    """`ck inspect ...`: inspect's own options (--log-dir, --max-tokens, --version) pass through unparsed."""
    if argv[:1] == ["inspect"] and argv[1:2] not in (["-h"], ["--help"], ["--"]):
        return ["inspect", "--", *argv[1:]]
    return argv


def run() -> NoReturn:
    """The `ck` console script and `python -m cruijff_kit`: main(), then the exit without the
    interpreter's teardown (util/procs.exit_after; tests call main() itself)."""
    exit_after(main)


def main(argv: list[str] | None = None) -> int:
    argv = normalize_argv(sys.argv[1:] if argv is None else list(argv))
    try:
        return _main(argv)
    except BrokenPipeError:
        # `ck … --json | head -c 10`: the reader left; nothing more can reach it, and the exit
        # flush must not print a traceback either
        _silence_stdout()
        print("ck: error: standard output was closed before the output ended (broken pipe)", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # --json-schema prints (and may meet a closed pipe) here
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
        sys.stdout.flush()  # a closed pipe is met here, inside the handlers, not at interpreter exit
    except CkError as err:
        return _report(args, err)
    except BrokenPipeError:
        raise
    except OSError as exc:
        # a full disk, a read-only or vanished folder met while writing: one line naming the file
        err = CkError(f"cannot write or read: {exc.strerror or exc}", file=exc.filename)
        return _report(args, err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def _report(args, err: CkError) -> int:
    if getattr(args, "json", False):
        print(json.dumps(err.to_dict(), indent=2))
    else:
        print(f"ck {args.command}: error: {err}", file=sys.stderr)
    return err.exit_code


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced (tests) or already closed
        pass


if __name__ == "__main__":
    run()
