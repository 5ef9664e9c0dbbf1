"""What every benchmark's command line does with its figures: print the table, and store
the report as JSON where ``--json PATH`` asks."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["command", "store_json"]

R = TypeVar("R", bound=Mapping[str, Any])


def store_json(report: Mapping[str, Any], path: str | None) -> int:
    """Write ``report`` to ``path`` as indented JSON (nothing when ``path`` is None); the
    command's exit status."""
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def command(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    quick: str,
    run: Callable[..., R],
    table: Callable[[R], str],
) -> int:
    """The whole command line of a benchmark that takes only ``--quick`` (``quick`` says
    what it does) and ``--json PATH``: ``run(quick=...)``, print ``table`` of the report,
    store the report."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    report = run(quick=args.quick)
    print(table(report))
    return store_json(report, args.json)
