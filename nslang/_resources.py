"""Find the shipped data files: the Lark grammar and the NeuroScript standard library.

The canonical files live at the top of the repository (``grammar/``, ``stdlib/``). The wheel build
copies them into the package as ``nslang/_data/grammar`` and ``nslang/_data/stdlib``
(hatchling ``force-include``). One helper serves both layouts: an installed wheel looks inside the
package; a source checkout or an editable install finds the top-level folders beside the package.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_dir", "grammar_path", "stdlib_dir"]

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory ``grammar`` or ``stdlib``: packaged copy first, then the source checkout.

    Raises:
        FileNotFoundError: neither location exists (a broken installation).
    """
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nslang data directory {name!r} not found (looked in {_PKG / '_data'} and {_PKG.parent})")


def grammar_path() -> Path:
    """Path of ``neuroscript.lark``."""
    return data_dir("grammar") / "neuroscript.lark"


def stdlib_dir() -> Path:
    """Directory of the NeuroScript standard library (``*.ns``)."""
    return data_dir("stdlib")
