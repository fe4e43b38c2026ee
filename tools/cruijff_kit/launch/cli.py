"""`ck launch …` (placeholder while the subcommands are built)."""
from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("launch", help="launch any training repo and monitor it")
