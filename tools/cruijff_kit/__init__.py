"""cruijff_kit: LLM fine-tuning experiments from plan to results."""
__version__ = "0.1.0"


def templates_dir():
    """The repo's templates/ folder (one jinja2 template per generated file)."""
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "templates"
