"""Small HTML pieces of the run report: sections, facts, tables, figures, escaped text."""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Container, Sequence
from typing import Any

from tweakops.redact import redact

NUMERIC_COLUMNS = {"#", "accuracy", "duration s", "restarts"}


def section(title: str, body: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{body}</section>"


def facts(pairs: Sequence[tuple[str, str]]) -> str:
    """Label/value pairs as a definition list; the values are HTML already."""
    items = "".join(f"<dt>{esc(label)}</dt><dd>{value}</dd>" for label, value in pairs)
    return f'<dl class="facts">{items}</dl>'


def table(header: Sequence[str], rows: Sequence[str], numeric: Container[str] = ()) -> str:
    head = "".join(
        f'<th class="num">{esc(h)}</th>' if h in numeric else f"<th>{esc(h)}</th>" for h in header
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def cell(column: str, text: Any, css: str = "") -> str:
    """A table cell; the columns of numbers are right-aligned."""
    classes = " ".join(c for c in (css, "num" if column in NUMERIC_COLUMNS else "") if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{esc(text)}</td>"


def figure(element_id: str, png: bytes, alt: str) -> str:
    """A PNG inline as a data: URI, with its own width and height from the PNG header."""
    width, height = struct.unpack(">II", png[16:24])
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img id="{element_id}" src="data:image/png;base64,{data}" '
        f'width="{width}" height="{height}" alt="{esc(alt)}"></figure>'
    )


def link(url: str) -> str:
    shown = esc(url)
    if url.startswith(("http://", "https://")):
        return f'<a href="{shown}">{shown}</a>'
    return shown


def esc(value: Any) -> str:
    """Any value as HTML text, with the password (or token) of a URL hidden."""
    return html.escape(redact(str(value)))
