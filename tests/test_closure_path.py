"""The closure compiler and the generated-code compiler implement the same semantics: the whole golden
corpus also runs with code generation off (``NSLANG_CODEGEN=0``), so every script exercises both."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_scripts import SCRIPTS, _cases, test_script


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.relative_to(SCRIPTS).with_suffix("").as_posix())
def test_script_closure_path(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSLANG_CODEGEN", "0")
    test_script(path)
