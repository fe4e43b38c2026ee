"""Small helpers shared by command modules."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from ..errors import CkError
from ..state import layout


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def experiment_dir(arg: str) -> Path:
    p = Path(arg).expanduser()
    if p.is_file() and p.name == layout.SUMMARY:
        p = p.parent
    if not p.is_dir():
        raise CkError("experiment directory not found", file=p)
    return p.resolve()


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# --- `ck CMD --json-schema`: what CMD's --json prints, from commands/json_fields.yaml ---------

_FIELDS_FILE = Path(__file__).with_name("json_fields.yaml")
_TYPES = {"string", "integer", "number", "boolean", "object", "array", "null", "any"}


@functools.lru_cache(maxsize=1)
def json_fields() -> dict:
    from ..state.yaml_input import read_package_yaml

    return read_package_yaml(_FIELDS_FILE)


def _type_of(spec: str) -> list[str]:
    types = [t.strip() for t in spec.split("|")]
    bad = [t for t in types if t not in _TYPES]
    if bad:
        raise ValueError(f"{_FIELDS_FILE.name}: unknown type {bad} in {spec!r}")
    return types


def _schema(spec) -> dict:
    """One field of json_fields.yaml -> JSON Schema (draft 2020-12)."""
    if isinstance(spec, str):
        head, _, doc = spec.partition(":")
        out = _typed(_type_of(head))
        if doc.strip():
            out["description"] = doc.strip()
        return out
    out = _typed(_type_of(spec.get("type", "object")))
    if spec.get("doc"):
        out["description"] = spec["doc"]
    if "fields" in spec:
        props, required = {}, []
        for key, sub in (spec["fields"] or {}).items():
            name = key.rstrip("?")
            props[name] = _schema(sub)
            if not key.endswith("?"):
                required.append(name)
        out["properties"], out["required"] = props, required
        out["additionalProperties"] = bool(spec.get("open", False))
    if "values" in spec:
        out["additionalProperties"] = _schema(spec["values"])
    if "items" in spec:
        out["items"] = _schema(spec["items"])
    return out


def _typed(types: list[str]) -> dict:
    if "any" in types:
        return {}
    return {"type": types[0] if len(types) == 1 else types}


def json_schema(command: str) -> dict | None:
    """The JSON Schema of `ck COMMAND --json` (None: not documented)."""
    fields = json_fields()
    names = [command] + [k for k in fields if k.startswith(command.replace(" ", "_") + "_")]
    found = [n for n in names if n in fields]
    if not found:
        return None
    variants = [_schema(fields[n]) for n in found]
    body = variants[0] if len(variants) == 1 else {"oneOf": variants}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"ck {command} --json",
            **body, "$defs": {"error": _schema(fields["error"])},
            "$comment": "exit 2 (bad input) prints #/$defs/error instead"}


class JsonSchemaAction:
    """argparse action factory: `--json-schema` prints the schema and exits, like --help."""

    @staticmethod
    def add(parser, command: str) -> None:
        import argparse

        class _Print(argparse.Action):
            def __init__(self, option_strings, dest, **kw):
                super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

            def __call__(self, parser, namespace, values, option_string=None):
                schema = json_schema(command)
                if schema is None:
                    parser.exit(2, f"ck {command}: --json output is not documented yet\n")
                emit_json(schema)
                parser.exit(0)

        parser.add_argument("--json-schema", action=_Print,
                            help="print the JSON Schema of this command's --json output and exit")
