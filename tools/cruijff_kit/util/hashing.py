"""sha256 of datasets (a file, or a directory of split files): the results store and each run's
manifest.json name the bytes a run trained on, not only their path."""
from __future__ import annotations

import hashlib
from pathlib import Path

_SHA: dict[tuple[str, int, int], str] = {}


def dataset_sha256(path: str) -> str:
    """sha256 of a dataset file, or of a directory's files (names and bytes, sorted); '' if unreadable."""
    p = Path(path)
    try:
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        st = [f.stat() for f in files]
    except OSError:
        return ""
    key = (str(p), sum(s.st_size for s in st), max((s.st_mtime_ns for s in st), default=0))
    if key not in _SHA:
        h = hashlib.sha256()
        for f in files:
            if p.is_dir():
                h.update(str(f.relative_to(p)).encode() + b"\0")
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        _SHA[key] = h.hexdigest()
    return _SHA[key]
