"""A griffe extension for the docs site: the reST bits of our docstrings, as Markdown.

The code's docstrings use Sphinx roles (``:class:`~payfallback.Router```), ``::`` before
literal blocks and reST simple tables. mkdocstrings renders Markdown, so roles become code
spans, ``::`` a colon, and a simple table a preformatted block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|data|mod|attr|exc|obj):`([^`]+)`")
_RULE = re.compile(r"^\s*=+(\s+=+)+\s*$")


def _role(match: re.Match[str]) -> str:
    target = match.group(1).strip()
    titled = re.fullmatch(r"(.+?)\s*<(.+)>", target)
    if titled:
        return f"`{titled.group(1)}`"
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


def to_markdown(text: str) -> str:
    """Roles to code spans, ``::`` to ``:``, simple tables to a ``text`` block."""
    out: list[str] = []
    rules = 0
    for line in _ROLE.sub(_role, text).splitlines():
        if _RULE.match(line):
            if rules == 0:
                out.append("```text")
            out.append(line)
            rules += 1
            if rules == 3:
                out.append("```")
                rules = 0
            continue
        if rules == 0 and line.rstrip().endswith("::"):
            stripped = line.rstrip()[:-2].rstrip()
            out.append(f"{stripped}:" if stripped else "")
            continue
        out.append(line)
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
