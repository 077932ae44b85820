"""Where the data shipped beside the package lives.

In a source checkout (or an editable install) `states/` and `migrations_db/` sit at
the repository's top level; a built wheel carries them inside the package under
`_data/` (see pyproject.toml). Everything else asks this module, never guesses.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
#: The config file commands read when none is named (here so the CLI can start without pydantic).
DEFAULT_CONFIG_NAME = "migrator.toml"


@cache
def data_root() -> Path:
    bundled = _PACKAGE_DIR / "_data"
    if (bundled / "states").is_dir():
        return bundled
    checkout = _PACKAGE_DIR.parent
    if (checkout / "states").is_dir():
        return checkout
    raise RuntimeError(f"migrator data files not found under {bundled} or {checkout}; reinstall migrator")


def states_dir() -> Path:
    return data_root() / "states"


def migrations_dir() -> Path:
    return data_root() / "migrations_db"
