"""Where the real datasets the tests and benchmarks read live (never copied into the repo).

`../shared/datasets/` next to the checkout, as the project is laid out; a checkout cloned
elsewhere on the same machine finds the machine's copy, or BJGAS_DATASETS names the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINE_COPY = Path("/work/shared/datasets")


def dataset(name: str) -> Path:
    """Return the path of dataset file `name`: the first folder that has it, or the
    project's own place for it (so that an error names where it was expected)."""
    folders = [ROOT.parent / "shared" / "datasets", MACHINE_COPY]
    if os.environ.get("BJGAS_DATASETS"):
        folders.insert(0, Path(os.environ["BJGAS_DATASETS"]))
    for folder in folders:
        if (folder / name).exists():
            return folder / name
    return folders[0] / name
