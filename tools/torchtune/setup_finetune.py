#!/usr/bin/env python3
"""scaffold-torchtune's per-run step: run inside a run directory (after a hand edit of setup_finetune.yaml).

    cd EXPERIMENT/rank8_lr1e-5 && python /path/to/cruijff_kit/tools/torchtune/setup_finetune.py

Reads ./setup_finetune.yaml and writes ./finetune.yaml (torchtune config), ./finetune.slurm and
./finetune.resources.json (what the job asks the scheduler for; `ck run` reads it).
`ck scaffold` runs the same code in-process.
"""
import importlib.util
import sys
from pathlib import Path


def _import_cruijff_kit():
    try:
        import cruijff_kit  # noqa: F401  (installed: pip install -e .)
    except ImportError:
        # Not installed: load the package from this checkout without putting tools/ on sys.path
        # (tools/torchtune/ would then shadow the real torchtune package).
        pkg = Path(__file__).resolve().parents[1] / "cruijff_kit"
        spec = importlib.util.spec_from_file_location("cruijff_kit", pkg / "__init__.py",
                                                      submodule_search_locations=[str(pkg)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["cruijff_kit"] = module
        spec.loader.exec_module(module)


def main(argv=None) -> int:
    _import_cruijff_kit()
    from cruijff_kit.errors import CkError
    from cruijff_kit.scaffold.torchtune_worker import generate_from_setup

    run_dir = Path(argv[0]) if argv else Path.cwd()
    try:
        for change in generate_from_setup(run_dir):
            print(f"{Path(change.path).name}: {change.status}")
    except CkError as err:
        print(f"setup_finetune.py: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
