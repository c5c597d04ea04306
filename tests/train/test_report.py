"""The report builder: HTML with relative images, tables, strict summary.json."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from bellmax.train.report import Report


def _figure():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1.5), layout="constrained")
    fig.subplots().plot([0, 1, 2], [0, 1, 4])
    return fig


def test_write_produces_html_summary_and_pngs(tmp_path):
    rep = Report("My <report>")
    rep.section("Intro", "First paragraph with `code`.\n\nSecond & last.")
    rep.image(_figure(), "A parabola", name="parabola")
    rep.table(["name", "value", "flag"], [["a", 1.23456789, True], ["b", np.int32(3), False]])
    rep.summary["value"] = np.float32(0.5)
    html_path = rep.write(tmp_path / "out")

    assert html_path == tmp_path / "out" / "report.html"
    page = html_path.read_text()
    assert "<title>My &lt;report&gt;</title>" in page
    assert "<code>code</code>" in page and "Second &amp; last." in page
    assert page.count("<p>") >= 2
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert srcs == ["fig01-parabola.png"]
    assert (tmp_path / "out" / srcs[0]).read_bytes()[:4] == b"\x89PNG"
    assert "1.235" in page and ">3<" in page and ">yes<" in page and ">no<" in page
    assert "A parabola" in page

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary == {"value": 0.5, "failed_sections": []}
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")] == []


def test_image_from_existing_file_is_copied(tmp_path):
    src = tmp_path / "pic.png"
    src.write_bytes(b"\x89PNG fake")
    rep = Report("r")
    rep.image(src, "copied")
    rep.image(_figure(), "")
    rep.write(tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == ["fig01-copied.png", "fig02-figure.png"]
    assert (tmp_path / "out" / "fig01-copied.png").read_bytes() == b"\x89PNG fake"


def test_failures_are_shown_and_listed(tmp_path):
    rep = Report("r")
    rep.section("Good", "fine")
    rep.failure("Bad part", "ValueError: <broken>")
    rep.write(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert 'class="failure"' in page and "ValueError: &lt;broken&gt;" in page
    assert "1 part(s) failed" in page
    assert json.loads((tmp_path / "summary.json").read_text())["failed_sections"] == ["Bad part"]
    assert rep.failures == [("Bad part", "ValueError: <broken>")]


def test_duplicate_section_titles_get_distinct_anchors():
    rep = Report("r").section("Same").section("Same")
    ids = re.findall(r'<h2 id="([^"]+)"', rep.to_html())
    assert len(ids) == 2 and len(set(ids)) == 2


def test_nan_in_summary_refused_before_writing(tmp_path):
    rep = Report("r")
    rep.summary["loss"] = math.nan
    with pytest.raises(ValueError, match=r"loss.*not a finite number"):
        rep.write(tmp_path / "out")
    assert not (tmp_path / "out" / "report.html").exists()
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.table(["a", "b"], [[1]]), ValueError, "row 0 has 1 cells.*2 columns"),
        (lambda r: r.table("ab", []), TypeError, "sequence of column names"),
        (lambda r: r.table([], []), ValueError, "at least one column"),
        (lambda r: r.table(["a"], ["x"]), TypeError, "row 0 is a string"),
        (lambda r: r.image(42, "x"), TypeError, "Figure or an image path"),
        (lambda r: r.image("missing.png", "x"), ValueError, "does not exist"),
        (lambda r: r.image("notes.txt", "x"), ValueError, "suffix '.txt'"),
        (lambda r: r.section(""), ValueError, "non-empty title"),
        (lambda r: r.section("t", 3), TypeError, "must be a str"),
    ],
)
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call(Report("r"))


def test_bad_title_and_out_dir(tmp_path):
    with pytest.raises(ValueError, match="non-empty title"):
        Report("  ")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        Report("r").write(tmp_path / "file")
    rep = Report("r")
    rep.summary[3] = 1
    with pytest.raises(TypeError, match="summary keys must be strings"):
        rep.write(tmp_path / "o")
