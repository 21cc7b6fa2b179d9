"""Find the shipped data files: the Lark grammar and the NeuroScript standard library.

The canonical files live at the top of the repository (``grammar/``, ``stdlib/``). The wheel build
copies them into the package as ``nslang/_data/grammar`` and ``nslang/_data/stdlib``
(hatchling ``force-include``). One helper serves both layouts: an installed wheel looks inside the
package; a source checkout or an editable install finds the top-level folders beside the package.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing stays off the start-up path (issue 16 item 3)
if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

__all__ = ["data_dir", "grammar_file", "grammar_path", "stdlib_dir"]

_PKG = os.path.dirname(os.path.realpath(__file__))


def _data_dir(name: str) -> str:
    for candidate in (os.path.join(_PKG, "_data", name), os.path.join(os.path.dirname(_PKG), name)):
        if os.path.isdir(candidate):
            return candidate
    raise FileNotFoundError(f"nslang data directory {name!r} not found (looked in "
                            f"{os.path.join(_PKG, '_data')} and {os.path.dirname(_PKG)})")


def data_dir(name: str) -> Path:
    """The directory ``grammar`` or ``stdlib``: packaged copy first, then the source checkout.

    Raises:
        FileNotFoundError: neither location exists (a broken installation).
    """
    from pathlib import Path

    return Path(_data_dir(name))


def grammar_file() -> str:
    """Path of ``neuroscript.lark`` as a ``str`` (for the parse cache's key: no pathlib at start-up)."""
    return os.path.join(_data_dir("grammar"), "neuroscript.lark")


def grammar_path() -> Path:
    """Path of ``neuroscript.lark``."""
    from pathlib import Path

    return Path(grammar_file())


def stdlib_dir() -> Path:
    """Directory of the NeuroScript standard library (``*.ns``)."""
    return data_dir("stdlib")
