"""The page skeleton shared by the subject and group reports: plain HTML and CSS, no JavaScript.

No script means nothing can fail at view time: the browser test checks that the page renders,
every image is embedded, and every link points at something that exists.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from taupet_bids import __version__

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #446; } h2 { margin-top: 1.6em; color: #335; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 2px 8px; text-align: right; }
th { background: #eef; } td:first-child, th:first-child { text-align: left; }
img, .svg svg { max-width: 100%; height: auto; }
.warn { background: #fff3cd; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
.ok { background: #e6f4ea; border-left: 4px solid #2e7d32; padding: 0.4em 0.8em; }
nav a { margin-right: 1em; } pre { white-space: pre-wrap; background: #f6f6f6; padding: 1em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dt { font-weight: bold; }
"""


def esc(value: object) -> str:
    """Text made safe for HTML."""
    return html.escape(str(value))


def page(title: str, body: str) -> str:
    """A complete HTML document."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{body}"
        f"<footer><p>taupet-bids {esc(__version__)}</p></footer></body></html>\n"
    )


def inline_svg(text: str, alt: str) -> str:
    """An SVG document placed in the page, labelled for screen readers."""
    return f'<div class="svg" role="img" aria-label="{esc(alt)}">{text[text.index("<svg") :]}</div>'


def figure(path: Path, alt: str) -> str:
    """A figure file embedded in the page (SVG inline, PNG as a data URI).

    Embedding keeps the report one self-contained file that can be mailed or archived. A figure
    that was not made (its node failed or was skipped) is a note, not a broken page.
    """
    if not path.exists():
        return f'<p class="warn">Figure not available: {esc(alt)} ({esc(path.name)}).</p>'
    if path.suffix == ".svg":
        return inline_svg(path.read_text(), alt)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as an HTML table (n/a for missing values)."""
    return frame.to_html(index=False, na_rep="n/a", float_format=lambda v: f"{v:.{digits}f}",
                         border=0, escape=True)  # fmt: skip


def definitions(items: dict[str, object]) -> str:
    """Key-value pairs as a definition list."""
    return (
        "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items.items()) + "</dl>"
    )


def warnings(messages: list[str]) -> str:
    """The QC flags, or a line saying there are none."""
    if not messages:
        return '<p class="ok">No QC flags.</p>'
    return "".join(f'<p class="warn">{esc(message)}</p>' for message in messages)
