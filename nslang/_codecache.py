"""The on-disk cache of compiled procedure bodies (issue 16 item 3; part of the compiler).

Python's ``compile`` of a generated body costs 0.3 to 1 ms; a cached run reuses the code object the
previous run compiled. An entry is keyed by the SHA-256 of the Python version, this module's format
version and the generated source itself (which the compiler derives from the AST, the limits and the
procedures known when it compiled), so a changed script, limit or compiler writes a new entry and
never reuses a stale one. Entries are ``marshal`` data in ``<user cache dir>/nslang/code``, a private
directory (0700, files 0600) like the parse cache, written atomically; an entry that does not load as
a code object is ignored (and overwritten). ``NSLANG_NO_CACHE=1`` (``nslang run --no-cache``) skips
the cache. Entries are not pruned (as the parse cache's).
"""

from __future__ import annotations

import marshal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from types import CodeType

__all__ = ["load", "store"]

_VERSION = b"nslang-code-1\0"
_dirs: list[str | None] = []


def _root() -> str | None:
    """The cache directory, created private once per process; None when it cannot be used."""
    if not _dirs:
        from ._private_paths import private_dir, user_cache_dir

        try:
            _dirs.append(private_dir(os.path.join(user_cache_dir(), "code"), parents=1))
        except Exception:  # noqa: BLE001 - no usable cache directory: compile every time
            _dirs.append(None)
    return _dirs[0]


def _key(src: str, name: str) -> str:
    try:  # the built-in module avoids loading OpenSSL through hashlib
        from _sha256 import sha256
    except ImportError:  # pragma: no cover
        from hashlib import sha256
    h = sha256(_VERSION + repr(sys.version_info).encode() + b"\0")
    h.update(name.encode("utf-8", "surrogatepass") + b"\0")
    h.update(src.encode("utf-8", "surrogatepass"))
    digest: str = h.hexdigest()
    return digest


def load(src: str, name: str) -> tuple[str | None, CodeType | None]:
    """``(key, code)``: the cached code object of ``src`` compiled as ``<nslang name>``, or None (key
    None when the cache is off)."""
    if os.environ.get("NSLANG_NO_CACHE"):
        return None, None
    root = _root()
    if root is None:
        return None, None
    key = _key(src, name)
    try:
        with open(os.path.join(root, key), "rb") as f:
            code = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return key, None
    return key, code if type(code) is type(_key.__code__) else None


def store(key: str, code: CodeType) -> None:
    """Write ``code`` under ``key`` (atomically; a failure only means no cache)."""
    root = _root()
    if root is None:
        return
    from ._private_paths import create_private

    tmp = os.path.join(root, f".{key}.{os.getpid()}.tmp")
    try:
        with create_private(tmp) as f:
            f.write(marshal.dumps(code))
        os.replace(tmp, os.path.join(root, key))
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
