"""cruijff_kit: LLM fine-tuning experiments from plan to results."""
__version__ = "0.1.0"


def data_file(*parts: str):
    """A file shipped with the package (importlib.resources), so an installed wheel works like a
    checkout: `_templates/` (the repo's templates/, one jinja2 template per generated file) and
    `_data/constraints.txt` (the repo's scripts/constraints.txt) are links in a checkout and
    copies in a built package."""
    from importlib.resources import files

    node = files(__name__)
    for part in parts:
        node = node / part
    return node


def templates_dir():
    """Where the jinja2 templates are (a real directory for an installed or editable package)."""
    from pathlib import Path

    return Path(str(data_file("_templates")))
