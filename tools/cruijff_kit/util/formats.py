"""Every human-facing number format and every timestamp, once.

Timestamps: ck writes aware local times (`now_iso()`: 2026-12-07T05:01:02+00:00) and reads any
ISO text with `parse_time()`, which takes a naive one (older ledgers, SLURM's sacct) as local
time, so naive and aware stamps always subtract. Sizes: `size_gib` for measured memory in
tables, `size_short` for `ck status`'s compact columns, `size_estimate` for the design's
"~1.2 GB" estimates. Durations: `duration_short` ('8m 2s'), `duration_hms` ('1:02:03'),
`duration_estimate` ('~12m')."""
from __future__ import annotations

import datetime as _dt


# ---- timestamps --------------------------------------------------------------------------------

def now_iso() -> str:
    """Now, local time with its UTC offset, to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def epoch_iso(epoch: float) -> str:
    """A POSIX time as now_iso() writes it."""
    return _dt.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def parse_time(text: str | None) -> _dt.datetime | None:
    """An aware datetime from ISO text (naive text is local time); None for none or unparseable."""
    if not text or not isinstance(text, str):
        return None
    try:
        t = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.astimezone()


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from start to end (None unless both parse)."""
    a, b = parse_time(start), parse_time(end)
    return None if a is None or b is None else (b - a).total_seconds()


def seconds_since(start: str | None) -> float | None:
    a = parse_time(start)
    return None if a is None else (_dt.datetime.now().astimezone() - a).total_seconds()


def log_stamp() -> str:
    """The action logs' '[YYYY-MM-DD HH:MM:SS]' time (local)."""
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


# ---- durations ---------------------------------------------------------------------------------

def duration_short(seconds: float) -> str:
    """'8m 2s', '1h 3m', '42s' (ck status)."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s}s" if m else f"{s}s"


def duration_hms(seconds: float | None) -> str:
    """'1:02:03' or '2:03' (report tables); '-' when unknown."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def duration_estimate(seconds: float | None) -> str:
    """'~40s', '~12m', '~1.5h' (design estimates); 'unknown' when there is none."""
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"~{max(1, round(seconds))}s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)}m"
    return f"~{seconds / 3600:.1f}h"


# ---- sizes -------------------------------------------------------------------------------------

def size_gib(n: int | None) -> str:
    """'1.2 GiB' (measured memory in the report); '-' when unknown."""
    return "-" if n is None else f"{n / 1024 ** 3:.1f} GiB"


def size_short(n: int) -> str:
    """'1.2G', '300.0M', '12K' (ck status columns, binary units)."""
    for unit, size in (("T", 1024 ** 4), ("G", 1024 ** 3), ("M", 1024 ** 2)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n / 1024:.0f}K"


def size_estimate(n: int | None) -> str:
    """'~1.2 GB', '~35 MB' (design's disk estimates, decimal units); 'unknown' when there is none."""
    if n is None:
        return "unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"~{value:.1f} {unit}" if value < 10 else f"~{round(value)} {unit}"
    return f"~{n} B"


def size_binary(n: float) -> str:
    """'512 B', '1.5 MiB', '3.0 GiB' (what a failure log says it tried to allocate)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"
