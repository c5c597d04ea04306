"""`--help` reads well in a terminal: no trailing spaces, no mis-indented blocks, no stray
blank lines, and each option's help one paragraph (drawn in boxes and in plain text)."""

from __future__ import annotations

import dataclasses
import itertools
import re

import pytest
import tyro._fmtlib
import tyro._settings

from bellmax.cli.main import COMMANDS, main, tidy_help
from bellmax.deep import ALGORITHMS

HELPS = [
    [],
    *([name] for name in COMMANDS),
    *(["train", algo] for algo in ALGORITHMS),
]


def _help(capsys, argv: list[str]) -> str:
    assert main([*argv, "--help"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def _rows(text: str) -> list[tuple[int, str]]:
    """(section, content) for each line: section 0 is the text before the first section of
    options (drawn as a box, or in plain text as a title over a rule), 1, 2, ... the
    sections; content is without the box's borders."""
    rows = []
    section = 0
    lines = text.splitlines()
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.startswith("╭") or re.fullmatch(r" ?-{10,}", nxt):
            section += 1
            continue
        if section == 0:
            rows.append((0, line))
        elif line.startswith("│"):
            rows.append((section, line[1:-1].rstrip()))
        elif line.startswith(" ") and not re.fullmatch(r" ?-{10,}", line):
            rows.append((section, line))
    return rows


def _check(text: str, argv: list[str]) -> None:
    where = f"bellmax {' '.join(argv)} --help"
    lines = text.splitlines()
    assert text.endswith("\n") and not text.endswith("\n\n"), where
    for line in lines:
        assert line == line.rstrip(), f"{where}: trailing spaces in {line!r}"
    for a, b in itertools.pairwise(lines):
        assert a.strip() or b.strip(), f"{where}: two blank lines in a row"
    rows = _rows(text)
    head = [c for s, c in rows if s == 0]
    assert head[0].startswith("usage: bellmax"), where
    for line in head:
        assert line == line.lstrip(), f"{where}: indented line outside a section: {line!r}"
    # In a section, a row that starts (after the border's space) with `-`, `•` or a word
    # begins an entry (an option, a subcommand, a positional argument); its help goes on
    # in the rows indented under it, all at the help's column, with no blank row (one
    # paragraph).
    sections = sorted({s for s, _ in rows if s})
    for s in sections:
        section = [c for t, c in rows if t == s]
        base = min(len(c) - len(c.lstrip()) for c in section if c.strip())
        body = [c[base:] for c in section]
        indents = set()
        for row in body:
            assert row.strip(), f"{where}: a blank row in section {s}"
            starts_entry = not row.startswith(" ") or row.lstrip().startswith("•")
            if not starts_entry:
                indents.add(len(row) - len(row.lstrip()))
        assert len(indents) <= 1, f"{where}: help rows at several indentations {indents}"
    if argv[:1] == ["train"] and len(argv) == 2:
        options = [c.split()[0] for s, c in rows if s and c.lstrip().startswith("--")]
        assert "--config" in options, where
        from bellmax.deep import get_algorithm

        config_cls = get_algorithm(argv[1]).Config
        for f in dataclasses.fields(config_cls):  # every bool field has both forms
            if f.type in (bool, "bool"):
                flag = "--" + f.name.replace("_", "-")
                assert f"{flag}," in options, f"{where}: {flag} / --no-{flag[2:]}"


@pytest.mark.parametrize("argv", HELPS, ids=lambda a: " ".join(a) or "bellmax")
@pytest.mark.parametrize("boxes", [True, False], ids=["boxes", "plain"])
def test_help_reads_well(argv, boxes, capsys, monkeypatch):
    monkeypatch.setitem(tyro._settings._experimental_options, "utf8_boxes", boxes)
    monkeypatch.setattr(tyro._fmtlib, "_FORCE_UTF8_BOXES", boxes)  # as on a UTF-8 terminal
    text = _help(capsys, argv)
    if boxes:
        assert "╭─" in text
    else:
        assert "╭" not in text and "│" not in text
    _check(text, argv)


@pytest.mark.parametrize("argv", HELPS, ids=lambda a: " ".join(a) or "bellmax")
def test_help_breaks_lines_only_at_the_terminal_width(argv, capsys, monkeypatch):
    # tyro kept every line break of an (indented) field docstring, so help broke mid-sentence
    # where the source wrapped ("truncated there (or" / "earlier, at ..."): on a terminal
    # wide enough, an option's help is one row (beside the option, or under a long one)
    monkeypatch.setenv("COLUMNS", "400")
    rows = _rows(_help(capsys, argv))
    entries: list[list[str]] = []
    for s in sorted({s for s, _ in rows if s}):
        section = [c for t, c in rows if t == s and c.strip()]
        base = min(len(c) - len(c.lstrip()) for c in section)
        for row in (c[base:] for c in section):
            if not row.startswith(" ") or row.lstrip().startswith("•"):
                entries.append([row])
            elif entries:
                entries[-1].append(row)
    where = f"bellmax {' '.join(argv)} --help"
    for first, *more in entries:
        if more:
            beside = re.search(r"\S {2,}\S", first) is not None  # help after the option
            assert len(more) == (0 if beside else 1), f"{where}: help broken: {[first, *more]}"


def test_bool_help_names_both_forms_and_the_default(capsys):
    text = _help(capsys, ["train", "ppo"])
    flat = " ".join(text.replace("│", " ").split())
    assert "--anneal-lr, --no-anneal-lr Anneal the learning rate linearly to 0 over the run." in (
        flat
    )
    assert "(default: --anneal-lr)" in flat and "(default: --no-clip-value)" in flat
    assert "(default: True)" not in flat and "{None}" not in flat
    text = _help(capsys, ["train", "reinforce"])
    flat = " ".join(text.replace("│", " ").split())
    assert "(--no-bootstrap-cut: leave them out)" in flat


def test_command_list_shows_each_summary_only(capsys):
    text = _help(capsys, [])
    flat = " ".join(text.replace("│", " ").split())
    assert "• train Train a deep RL agent" in flat
    assert "--CONFIG-FIELD" not in flat  # the train docstring's second paragraph
    text = _help(capsys, ["train"])
    assert "`bellmax train ALGO --env ENV_ID" in text  # the whole description, unindented


def test_tidy_help():
    assert tidy_help("a  \n\n\n  b \n\n") == "a\n\n  b\n"
    assert tidy_help("\n\na") == "a\n"


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("argv", HELPS, ids=lambda a: " ".join(a) or "bellmax")
def test_help_shows_defaults_in_words_not_python_values(argv, capsys):
    # `--hidden-sizes {None}|{[INT [INT ...]]} ... (default: None)` where None meant "the
    # algorithm's/env's default"; `--no-reuse-actors ... (default: True)` read as if the flag
    # were on; `--grid [STR [STR ...]] ... (default: )`
    flat = _flat(_help(capsys, argv))
    for token in ("{None}", "(default: None)", "(default: True)", "(default: )"):
        assert token not in flat, f"bellmax {' '.join(argv)} --help shows {token}"


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (
            ["imitate"],
            [
                "--labels INT Label budget: expert-labelled observations at most. (default: "
                "500; TicTacToe-v0 3000)",
                "--hidden-sizes INT [INT ...] The learner's hidden layer widths (e.g. "
                "--hidden-sizes 32 32). (default: 64 64; TicTacToe-v0 128 128)",
                "(default: none, every round; TicTacToe-v0 0)",
                "--horizon INT mpc: planning horizon in steps (as `bellmax control`'s). (default: "
                "25 balance, 60 cart-pole swing-up, 40 pendulum)",
                "--out DIR",
            ],
        ),
        (["gps"], ["--policy {linear,mdgps} linear:", "--out DIR"]),
        (
            ["mbrl"],
            [
                "--no-trajectory-sampling Guard: plan on TS-inf particles of the ensemble "
                "(--no-trajectory-sampling: the mean). (default: trajectory sampling on)",
                "--out DIR",
            ],
        ),
        (
            ["sweep"],
            [
                "--grid FIELD=VALUES [FIELD=VALUES ...]",
                "--set FIELD=VALUE [FIELD=VALUE ...]",
                "--total-steps INT Environment steps per trial, rounded down to whole updates "
                "(the table's env_steps says how many). (default: the algorithm's Config's)",
                "--address ADDRESS",
                "(default: $RAY_ADDRESS if set, else a new local Ray instance)",
                "a fresh process per group, Tune's default). (default: actors reused)",
            ],
        ),
        (
            ["train", "sac"],
            [
                "--target-entropy FLOAT Entropy (nats)",
                "(default: -act_dim continuous, target_entropy_scale * log n discrete)",
                # tyro takes the option alone as no widths: said, since it trains
                "--hidden-sizes [INT [INT ...]] Hidden layer widths of the actor and of each "
                "critic (e.g. --hidden-sizes 64 64; --hidden-sizes alone: no hidden layer, a "
                "linear network). (default: 64 64)",
            ],
        ),
        (["evaluate"], ["--video FILE", "(default: no video)"]),
    ],
    ids=["imitate", "gps", "mbrl", "sweep", "train sac", "evaluate"],
)
def test_help_shows_plain_metavars_and_the_real_defaults(argv, shown, capsys):
    flat = _flat(_help(capsys, argv))
    for text in shown:
        assert text in flat, f"bellmax {' '.join(argv)} --help: {text!r}"


def test_one_paragraph_help_keeps_each_fields_settings():
    # the rebuilt class dropped kw_only (a registered command's kw_only config with a
    # required field after a defaulted one failed to build, for every later command too)
    from bellmax.cli.main import one_paragraph_help

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Args:
        x: int = 1
        """An option whose docstring
        wraps."""
        y: int
        """Required."""

    new = one_paragraph_help(Args)
    assert new.__bellmax_config__ is Args and issubclass(new, Args)
    assert new(y=2).x == 1 and all(f.kw_only for f in dataclasses.fields(new))
