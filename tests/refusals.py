"""A CLI refusal as the standards ask for it: exit 2, no traceback, every expected piece of the
message (file, line, field), bounded output, and nothing written or re-moded under `root`."""
from __future__ import annotations

from pathlib import Path

from cruijff_kit.cli import main


def snapshot(root: Path) -> dict:
    return {str(p): (p.read_bytes() if p.is_file() else None, p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


def refused(capsys, argv, root: Path, *needles: str) -> str:
    before = snapshot(root)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own refusals (a malformed flag value) exit 2 too
        rc = exc.code
    out = capsys.readouterr()
    text = out.err + out.out
    assert rc == 2, text
    assert "Traceback" not in text
    for n in needles:
        assert n in text, f"{n!r} not in:\n{text}"
    assert len(text) < 20_000, "error output is bounded"
    assert snapshot(root) == before, "nothing may be written on refusal"
    return text
