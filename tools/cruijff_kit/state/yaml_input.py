"""User-written YAML (design specs, setup_finetune.yaml), read defensively.

Bounded in size, aliases and anchors refused (a 600-byte alias bomb expands to gigabytes),
non-UTF-8 and syntax errors reported with file and line; every mapping key's line is kept so
later checks can point at it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import CkError

MAX_YAML_BYTES = 1024 * 1024


def read_user_text(path: Path, what: str, limit: int = MAX_YAML_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except IsADirectoryError:
        raise CkError(f"{what} is a directory, not a file", file=path) from None
    except OSError as exc:
        raise CkError(f"cannot read {what}: {exc.strerror}", file=path) from None
    if len(raw) > limit:
        raise CkError(f"{what} is larger than {limit // 1024} KiB", file=path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CkError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path, line=line) from None


def load_user_yaml(path: str | Path, what: str) -> tuple[Any, dict[tuple, int]]:
    """(data, lines): lines maps a key path such as ("grid", "lora_rank") to its 1-based line."""
    import yaml

    p = Path(path)
    text = read_user_text(p, what)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_aliases(node, p)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0][:200]
        raise CkError(f"invalid YAML: {problem}", file=p, line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise CkError("invalid YAML: nested too deeply", file=p) from None
    finally:
        loader.dispose()
    lines: dict[tuple, int] = {}
    if node is not None:
        _key_lines(node, (), lines, depth=0)
    return data, lines


def _refuse_aliases(root, path: Path) -> None:
    import yaml

    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            # the composer hands back one node object for every alias of an anchor
            raise CkError("YAML anchors and aliases (&name / *name) are not allowed here: write values out",
                          file=path, line=node.start_mark.line + 1)
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: dict = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in keys:
                        # YAML keeps the last silently: a hand edit appended below would override unseen
                        raise CkError(f"key {k.value[:60]!r} appears twice (first on line {keys[k.value]})",
                                      file=path, line=k.start_mark.line + 1, field=k.value[:60])
                    keys[k.value] = k.start_mark.line + 1
                stack.extend((k, v))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    if len(seen) > 200_000:
        raise CkError("YAML has too many values", file=path)


def _key_lines(node, prefix: tuple, out: dict, depth: int) -> None:
    import yaml

    if depth > 3 or not isinstance(node, yaml.MappingNode):
        return
    for k, v in node.value:
        if not isinstance(k, yaml.ScalarNode):
            continue
        key = prefix + (k.value,)
        out.setdefault(key, k.start_mark.line + 1)
        _key_lines(v, key, out, depth + 1)


def read_mapping(path: str | Path, what: str | None = None) -> dict:
    """A YAML file that must hold a mapping (setup_finetune.yaml, finetune.yaml): bounded, no
    aliases, every failure a CkError naming the file and line; a non-mapping document is {}."""
    data, _lines = load_user_yaml(path, what or Path(path).name)
    return data if isinstance(data, dict) else {}


def read_mapping_or_empty(path: str | Path | None) -> dict:
    """The same, for readers that carry on without it (analysis, estimates, retry rules): a
    missing or unreadable file is {} (the caller then declines to guess)."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        return read_mapping(path)
    except CkError:
        return {}


def yaml_scalar(text: str):
    """The value of a KEY=VALUE override as YAML reads it ('4' -> 4, 'true' -> True, '1e-4' -> 0.0001);
    text that is not one plain scalar stays text."""
    import yaml

    if len(text) > 10_000:
        return text
    try:
        value = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe loader
    except yaml.YAMLError:
        return text
    return value if value is None or isinstance(value, (str, int, float, bool)) else text


def read_package_yaml(path: str | Path) -> Any:
    """A YAML file ck ships itself (commands/json_fields.yaml): trusted, so its anchors and
    aliases are allowed; a broken one is a bug in ck, raised as is."""
    import yaml

    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
