"""What the distributions declare and hold: licence, URLs, classifiers, pins, the sdist."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from payfallback.settings import ADAPTERS_URL

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = sorted(p.parent for p in (ROOT / "adapters").glob("*/pyproject.toml"))
PYTHONS = ("3.11", "3.12", "3.13")


def _project(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


CORE = _project(ROOT / "pyproject.toml")


def test_the_licence_file_is_the_declared_apache_2_0() -> None:
    assert CORE["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_project_urls_point_at_the_repository_that_lists_the_adapters() -> None:
    urls = CORE["urls"]
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(urls)
    assert ADAPTERS_URL.startswith(urls["Repository"] + "#")
    assert all(url.startswith("https://") for url in urls.values())


@pytest.mark.parametrize("path", [ROOT, *ADAPTERS], ids=lambda p: p.name)
def test_classifiers_name_every_supported_python(path: Path) -> None:
    project = _project(path / "pyproject.toml")
    assert project["requires-python"] == ">=3.11"
    for version in PYTHONS:
        assert f"Programming Language :: Python :: {version}" in project["classifiers"]


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda p: p.name)
def test_adapters_pin_a_compatible_core_range(path: Path) -> None:
    project = _project(path / "pyproject.toml")
    core = [d for d in project["dependencies"] if d.split(">")[0].split("<")[0] == "payfallback"]
    assert core == ["payfallback>=0.1,<0.2"]
    major_minor = ".".join(CORE["version"].split(".")[:2])
    assert major_minor == "0.1", "move the adapters' core range with the core's version"


def test_tzdata_only_where_the_system_has_no_zone_database() -> None:
    tzdata = [d for d in CORE["dependencies"] if d.startswith("tzdata")]
    assert tzdata == ["tzdata>=2023.3; sys_platform == 'win32'"]


@pytest.mark.skipif(sys.platform == "win32", reason="the zone database of Linux and macOS")
def test_asia_seoul_resolves_without_the_tzdata_package() -> None:
    # The breaker's peak hours and the simulator's clock are Asia/Seoul; here the system's
    # zone database answers, with the tzdata package made unimportable.
    code = (
        "import sys; sys.modules['tzdata'] = None\n"
        "from payfallback import BreakerPolicy\n"
        "from zoneinfo import ZoneInfo\n"
        "from datetime import datetime, UTC\n"
        "BreakerPolicy.default()\n"
        "print(datetime(2022, 10, 15, 9, tzinfo=UTC).astimezone(ZoneInfo('Asia/Seoul')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2022-10-15 18:00:00+09:00"


def test_import_payfallback_does_not_import_the_command_line() -> None:
    heavy = ("typer", "rich", "matplotlib", "pydantic_settings", "payfallback.cli")
    code = (
        "import sys\nimport payfallback\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_core_works_without_the_cli_extra(tmp_path: Path) -> None:
    # A core install has neither typer nor rich (nor click, which httpx's own command line
    # needs): hide them, then charge through the Router and ask for the command line.
    code = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('typer', 'rich', 'click', 'pygments'):\n"
        "            raise ImportError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "import httpx\n"
        "from pydantic import SecretStr\n"
        "from payfallback import Instrument, Money, Order, Router\n"
        "from payfallback.testing import FakeBank, FakeProvider, mock_transport\n"
        "client = httpx.Client(transport=mock_transport(FakeBank('toss')))\n"
        "with Router([FakeProvider('toss')], client=client,\n"
        "            journal='sqlite:///' + sys.argv[1]) as router:\n"
        "    order = Order(order_id='pkg-1', amount=Money(amount=1000), name='coffee')\n"
        "    card = Instrument(provider='toss', billing_key=SecretStr('bk-ok-toss'))\n"
        "    payment = router.charge(order, [card])\n"
        "print(payment.status, sorted(m for m in ('typer', 'rich', 'click') if m in sys.modules))\n"
        "try:\n"
        "    import payfallback.cli\n"
        "except SystemExit as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "journal.db")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    paid, cli = done.stdout.strip().splitlines()
    assert paid == "paid []"
    assert "pip install 'payfallback[cli]'" in cli


def test_the_core_sdist_holds_the_core_only(tmp_path: Path) -> None:
    # hatchling's PEP 517 hook, in a fresh process, as a build frontend would call it.
    code = "import sys\nfrom hatchling.build import build_sdist\nprint(build_sdist(sys.argv[1]))\n"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    archive = tmp_path / done.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        names = [name.split("/", 1)[1] for name in tar.getnames() if "/" in name]
    top = {name.split("/")[0] for name in names}
    assert {"payfallback", "LICENSE", "README.md", "pyproject.toml", "PKG-INFO"} <= top
    assert top <= {
        "payfallback",
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "PKG-INFO",
        ".gitignore",
    }
    assert "payfallback/py.typed" in names
    assert "payfallback/simulate/scenarios/kakao-fire-2022.toml" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_sniffio_comes_with_the_core_so_async_requests_never_search_for_it() -> None:
    # anyio and httpx look for sniffio on every async request; without it each request
    # scans sys.path for it several times (a failed import is not cached).
    requires = importlib.metadata.requires("payfallback") or []
    assert any(r.split(">")[0].split(";")[0].strip() == "sniffio" for r in requires)
    code = (
        "import asyncio, sys\n"
        "searched = []\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sniffio':\n"
        "            searched.append(name)\n"
        "sys.meta_path.insert(0, Watch())\n"
        "import httpx\n"
        "async def answer(reader, writer):\n"
        "    while True:\n"
        "        head = await reader.readuntil(b'\\r\\n\\r\\n')\n"
        "        writer.write(b'HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok')\n"
        "        await writer.drain()\n"
        "async def main():\n"
        "    server = await asyncio.start_server(answer, '127.0.0.1', 0)\n"
        "    port = server.sockets[0].getsockname()[1]\n"
        "    async with httpx.AsyncClient(trust_env=False) as client:\n"
        "        for _ in range(20):\n"
        "            await client.get(f'http://127.0.0.1:{port}/')\n"
        "    server.close()\n"
        "asyncio.run(main())\n"
        "print(len(searched), 'sniffio' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "True"]  # found once, then taken from sys.modules
