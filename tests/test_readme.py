"""The README's quick starts run verbatim, and its test command is the one CI runs."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def _run(code: str, cwd: Path) -> str:
    out = io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(old)
    return out.getvalue()


def test_sync_pos_quick_start_runs_verbatim(tmp_path: Path) -> None:
    block = next(b for b in _python_blocks() if "Router" in b)
    assert len(block.strip().splitlines()) <= 15
    output = _run(block, tmp_path)
    assert output.strip().splitlines()[-1] == "nice 4,500 KRW"
    assert (tmp_path / "pos-journal.sqlite3").exists()


def test_async_backend_quick_start_runs_verbatim(tmp_path: Path) -> None:
    block = next(b for b in _python_blocks() if "asyncio.run(main())" in b)
    output = _run(block, tmp_path)
    assert "naverpay" in output.strip().splitlines()[-1]
    assert "kakaopay/kakaopay" in output


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"^python -m pytest.*$", README.read_text(encoding="utf-8"), re.MULTILINE)
    assert commands == ["python -m pytest -q"]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "grep -m1 -E '^python -m pytest' README.md" in ci


@pytest.mark.parametrize("name", ["tosspayments", "nicepay", "kakaopay", "naverpay", "portone"])
def test_readme_links_every_adapter(name: str) -> None:
    assert f"adapters/{name}/README.md" in README.read_text(encoding="utf-8")
    assert (README.parent / "adapters" / name / "README.md").exists()
