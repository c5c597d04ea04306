"""A small HTML report builder: sections of text, images, tables and a JSON summary.

    report = Report("bellmax tour")
    report.section("CartPole-v1", "A linear policy balances the pole for 500 steps.")
    report.image(fig, "Cart position and pole angle over time.")
    report.table(["policy", "episode length"], [["linear", 500], ["random", 21.4]])
    report.summary["cartpole_linear_episode_length"] = 500.0
    report.write("runs/tour")   # report.html, summary.json, fig01-....png

`report.html` is self-contained apart from the images, which are PNG files next to it
referenced by relative paths, so the folder can be moved or zipped as a whole. Every file
is written atomically (`bellmax.train.io`). Figures are rendered to PNG when they are added
(and closed), so a report holds bytes, not live Matplotlib objects.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import io
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bellmax.train.io import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["Report"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
.meta { color: #666; font-size: .9rem; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .92rem; margin-top: .3rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f3f3f3; padding: 0 .2rem; border-radius: 3px; }
.failure { border-left: 4px solid #c62828; background: #fdecea; padding: .6rem 1rem; }
.failure pre { white-space: pre-wrap; margin: .3rem 0 0 0; }
.ok { color: #2e7d32; } .bad { color: #c62828; font-weight: bold; }
nav ul { columns: 2; }
"""


@dataclasses.dataclass(frozen=True)
class _Heading:
    title: str
    text: str
    anchor: str


@dataclasses.dataclass(frozen=True)
class _Image:
    filename: str
    data: bytes
    caption: str


@dataclasses.dataclass(frozen=True)
class _Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclasses.dataclass(frozen=True)
class _Failure:
    title: str
    message: str
    anchor: str


def _slug(text: str, limit: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:limit].strip("-") or "item"


def _format_cell(value: Any) -> tuple[str, bool]:
    """HTML of one table cell and whether it is a number (right-aligned)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        return f"{value:.4g}", True
    return html.escape("" if value is None else str(value)), False


def _paragraphs(text: str) -> str:
    """Plain text to HTML paragraphs; `backticks` become <code>."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if not para.strip():
            continue
        escaped = html.escape(" ".join(para.split()))
        escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
        out.append(f"<p>{escaped}</p>")
    return "\n".join(out)


class Report:
    """Collects sections, images and tables, then writes `report.html` and `summary.json`.

    Args:
      title: the page title.

    Attributes:
      summary: a dict of headline numbers, written to `summary.json` (must be finite and
        JSON-serialisable; NumPy/JAX scalars are converted).
    """

    def __init__(self, title: str):
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"Report needs a non-empty title string, got {title!r}.")
        self.title = title
        self.summary: dict[str, Any] = {}
        self._blocks: list[_Heading | _Image | _Table | _Failure] = []
        self._anchors: set[str] = set()

    # ------------------------------------------------------------------ building
    def _anchor(self, title: str) -> str:
        base = _slug(title)
        anchor, n = base, 2
        while anchor in self._anchors:
            anchor, n = f"{base}-{n}", n + 1
        self._anchors.add(anchor)
        return anchor

    def section(self, title: str, text: str = "") -> Report:
        """Start a section: a heading and plain-text paragraphs (blank lines separate them).

        Returns:
          The report, so calls can be chained.
        """
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"a section needs a non-empty title string, got {title!r}.")
        if not isinstance(text, str):
            raise TypeError(f"section text must be a str, got {type(text).__name__}.")
        self._blocks.append(_Heading(title, text, self._anchor(title)))
        return self

    def image(
        self, path_or_fig: Any, caption: str = "", *, name: str | None = None, dpi: int = 110
    ) -> Report:
        """Add an image: a Matplotlib figure (rendered to PNG now, then closed) or a file.

        Args:
          path_or_fig: a `matplotlib.figure.Figure`, or the path of an existing image file
            (PNG, JPEG, GIF or SVG), copied next to the report on `write`.
          caption: text shown under the image.
          name: file name stem in the output folder (default: from the caption).
          dpi: resolution for figures.

        Returns:
          The report.
        """
        index = sum(isinstance(b, _Image) for b in self._blocks) + 1
        stem = _slug(name if name else (caption or "figure"))
        if hasattr(path_or_fig, "savefig"):
            buf = io.BytesIO()
            # Figures with a layout engine (constrained/tight) are already trimmed.
            has_layout = getattr(path_or_fig, "get_layout_engine", lambda: None)() is not None
            path_or_fig.savefig(
                buf, format="png", dpi=dpi, bbox_inches=None if has_layout else "tight"
            )
            data, suffix = buf.getvalue(), ".png"
            _close_figure(path_or_fig)
        elif isinstance(path_or_fig, str | os.PathLike):
            src = Path(path_or_fig)
            suffix = src.suffix.lower()
            if suffix not in _IMAGE_SUFFIXES:
                raise ValueError(
                    f"image {str(src)!r} has suffix {suffix!r}; use one of "
                    f"{', '.join(_IMAGE_SUFFIXES)} or pass a matplotlib Figure."
                )
            if not src.is_file():
                raise ValueError(
                    f"image file {str(src)!r} does not exist; save it first or pass the "
                    "matplotlib Figure itself."
                )
            data = src.read_bytes()
        else:
            raise TypeError(
                f"Report.image needs a matplotlib Figure or an image path, got "
                f"{type(path_or_fig).__name__}."
            )
        filename = f"fig{index:02d}-{stem}{suffix}"
        self._blocks.append(_Image(filename, data, caption))
        return self

    def table(self, header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> Report:
        """Add a table. Floats are shown with 4 significant digits, booleans as yes/no.

        Args:
          header: column names.
          rows: one sequence per row, each as long as `header`.

        Returns:
          The report.
        """
        if isinstance(header, str):
            raise TypeError("table header must be a sequence of column names, not one string.")
        head = tuple(str(h) for h in header)
        if not head:
            raise ValueError("a table needs at least one column in its header.")
        body = []
        for i, row in enumerate(rows):
            if isinstance(row, str):
                raise TypeError(f"table row {i} is a string; each row must be a sequence of cells.")
            row = tuple(row)
            if len(row) != len(head):
                raise ValueError(
                    f"table row {i} has {len(row)} cells but the header has {len(head)} "
                    f"columns ({', '.join(head)}); give every row one cell per column."
                )
            body.append(row)
        self._blocks.append(_Table(head, tuple(body)))
        return self

    def failure(self, title: str, message: str) -> Report:
        """Record that a part of the report failed: shown in red, listed in `summary.json`."""
        self._blocks.append(_Failure(title, message, self._anchor(title)))
        return self

    @property
    def failures(self) -> list[tuple[str, str]]:
        """`(title, message)` of every recorded failure."""
        return [(b.title, b.message) for b in self._blocks if isinstance(b, _Failure)]

    # ------------------------------------------------------------------ output
    def to_html(self) -> str:
        """The report page as one HTML string (images referenced by relative file name)."""
        esc = html.escape
        stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(self.title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{esc(self.title)}</h1>",
        ]
        failures = self.failures
        status = (
            f'<span class="bad">{len(failures)} part(s) failed</span>'
            if failures
            else '<span class="ok">all parts ran</span>'
        )
        parts.append(f'<p class="meta">Generated {esc(stamp)} · {status}</p>')
        toc = [b for b in self._blocks if isinstance(b, _Heading | _Failure)]
        if len(toc) > 1:
            items = "".join(
                f'<li><a href="#{b.anchor}">{esc(b.title)}</a>'
                + (' <span class="bad">(failed)</span>' if isinstance(b, _Failure) else "")
                + "</li>"
                for b in toc
            )
            parts.append(f"<nav><ul>{items}</ul></nav>")
        for b in self._blocks:
            if isinstance(b, _Heading):
                parts.append(f'<h2 id="{b.anchor}">{esc(b.title)}</h2>')
                if b.text:
                    parts.append(_paragraphs(b.text))
            elif isinstance(b, _Image):
                cap = f"<figcaption>{esc(b.caption)}</figcaption>" if b.caption else ""
                alt = esc(b.caption or b.filename, quote=True)
                src = esc(b.filename, quote=True)
                parts.append(f'<figure><img src="{src}" alt="{alt}">{cap}</figure>')
            elif isinstance(b, _Table):
                head = "".join(f"<th>{esc(h)}</th>" for h in b.header)
                rows = []
                for row in b.rows:
                    cells = []
                    for v in row:
                        text, numeric = _format_cell(v)
                        cells.append(
                            f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"
                        )
                    rows.append("<tr>" + "".join(cells) + "</tr>")
                parts.append(
                    f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
                )
            else:
                parts.append(
                    f'<h2 id="{b.anchor}">{esc(b.title)}</h2><div class="failure">'
                    f"<strong>This part failed.</strong><pre>{esc(b.message)}</pre></div>"
                )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def summary_dict(self) -> dict[str, Any]:
        """What `summary.json` holds: `summary` plus `failed_sections` (a list of titles)."""
        return {**self.summary, "failed_sections": [t for t, _ in self.failures]}

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write `report.html`, `summary.json` and the images into `out_dir` (created).

        The summary is checked first, so a NaN in it raises before any file is touched.
        Images left from an earlier report in the same folder are not removed.

        Returns:
          The path of `report.html`.
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"report output {str(out)!r} is a file; give a folder path.")
        summary = self.summary_dict()
        for key in summary:
            if not isinstance(key, str):
                raise TypeError(f"summary keys must be strings, got {key!r}; use str(key).")
        out.mkdir(parents=True, exist_ok=True)
        # Validate the summary (NaN, non-serialisable values) before writing anything.
        atomic_write_json(out / "summary.json", summary)
        for b in self._blocks:
            if isinstance(b, _Image):
                atomic_write_bytes(out / b.filename, b.data)
        path = atomic_write_text(out / "report.html", self.to_html())
        return path


def _close_figure(fig: Any) -> None:
    """Close a pyplot-managed figure (free its memory); plain Figures need nothing."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)
