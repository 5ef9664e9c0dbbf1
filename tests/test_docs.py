"""The documentation site builds in strict mode, offline, and says what it promises.

``mkdocs build --strict`` fails on a broken link, a page missing from the nav, or an API
reference (``::: payfallback.x``) that no longer resolves, so a rename in the code fails
this test instead of leaving a hole in the site. The build runs in a child interpreter with
an audit hook that records every name lookup and connection it attempts: nothing may
leave the machine (no plugin that fetches fonts, inventories or social cards).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import payfallback.errors

ROOT = Path(__file__).resolve().parent.parent

# Runs mkdocs' own command line, with every socket and urllib event to a host other than
# loopback recorded and printed as JSON on the last line of stdout.
_BUILD = r"""
import json, sys

LOOPBACK = {"127.0.0.1", "::1", "localhost", None, ""}
outbound = []

def host_of(event, args):
    if event == "socket.connect":
        address = args[1]
        return address[0] if isinstance(address, tuple) else None
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0]
        return host.decode() if isinstance(host, bytes) else host
    if event == "urllib.Request":
        return args[0]
    return None

def hook(event, args):
    if event.startswith(("socket.", "urllib.")):
        host = host_of(event, args)
        if host not in LOOPBACK:
            outbound.append(f"{event} {host}")

sys.addaudithook(hook)
from mkdocs.__main__ import cli

try:
    cli(["build", "--strict", "--config-file", "mkdocs.yml", "--site-dir", sys.argv[1]])
    code = 0
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
print(json.dumps(outbound))
sys.exit(code)
"""


def test_site_builds_strict_and_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "WARNING" not in done.stderr, done.stderr[-4000:]
    outbound = json.loads(done.stdout.strip().splitlines()[-1])
    assert outbound == [], f"the docs build reached for the network: {outbound}"

    # The API reference was rendered from the code, not left as a directive.
    errors_page = (site / "reference" / "errors" / "index.html").read_text(encoding="utf-8")
    for name in payfallback.errors.__all__:
        assert f'id="payfallback.errors.{name}"' in errors_page, name
    assert ":func:" not in errors_page  # reST roles shown as code (docs/griffe_rst.py)
    router_page = (site / "reference" / "router" / "index.html").read_text(encoding="utf-8")
    assert 'id="payfallback.Router.recover"' in router_page
    assert 'id="payfallback.AsyncRouter.charge"' in router_page
    for page in ("troubleshooting", "pos-howto", "money-safety", "events", "changelog"):
        assert (site / page / "index.html").is_file(), page
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in changelog
    assert "--8&lt;--" not in changelog  # the snippet was included, not printed
    # No page loads anything from another host when it is opened: no web fonts.
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" not in index
    assert "fonts.gstatic.com" not in index


def test_troubleshooting_covers_every_error_type() -> None:
    text = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (\w+)$", text, flags=re.MULTILINE))
    assert set(payfallback.errors.__all__) <= headings, set(payfallback.errors.__all__) - headings
    unknown = text.split("## OutcomeUnknown", 1)[1].split("\n## ", 1)[0]
    # What staff say at the till, in Korean and in English.
    assert "### What staff say at the till" in unknown
    assert re.search(r"[\uac00-\ud7a3]", unknown), "no Korean in the till script"
    assert "charged twice" in unknown
