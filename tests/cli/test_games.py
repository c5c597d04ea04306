"""`bellmax play tictactoe` and `bellmax tictactoe arena`: a scripted terminal game, clear
answers to illegal input, arena JSON, bad options."""

from __future__ import annotations

import io
import json

import pytest

from bellmax.cli.games import parse_agent, play_terminal, render_board
from bellmax.cli.main import main
from bellmax.games import make_agent


def _scripted(moves):
    it = iter(moves)

    def read(prompt):
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return read


def test_terminal_game_against_perfect_answers_bad_input_and_never_lets_the_human_win():
    out: list[str] = []
    # Centre, then junk, an occupied cell, out of range; then keep playing first free cells.
    # '²' passes str.isdigit() and failed int(): the game ended with an error instead of
    # asking again
    moves = ["5", "x", "5", "0", "10", "²", "٣"] + [str(i) for i in range(1, 10)] * 2
    winner = play_terminal(
        make_agent("perfect", seed=0), human_first=True, read=_scripted(moves), write=out.append
    )
    text = "\n".join(out)
    assert "'x' is not a cell" in text and "'0' is not a cell" in text and "'10'" in text
    assert "'²' is not a cell" in text and "'٣' is not a cell" in text
    assert "Cell 5 is taken by X" in text
    assert winner in (0, -1)  # the perfect player never loses
    assert ("Draw." in text) or ("The agent wins." in text)


def test_agent_moves_first_when_the_human_is_o():
    out: list[str] = []
    play_terminal(
        make_agent("random", seed=1),
        human_first=False,
        read=_scripted([str(i) for i in range(1, 10)] * 3),
        write=out.append,
    )
    assert out[0].startswith("You are O") and out[1].startswith("The agent plays")


def test_play_command_reads_stdin_and_reports_eof(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("5\n"))
    assert main(["play", "tictactoe", "--agent", "perfect", "--first"]) == 1
    assert "Input ended" in capsys.readouterr().err


def test_render_board_numbers_empty_cells():
    assert render_board([1, 0, -1, 0, 0, 0, 0, 0, 0]).splitlines()[0] == " X | 2 | O"


def test_arena_json(capsys):
    assert (
        main(["tictactoe", "arena", "--x", "perfect", "--o", "random", "--games", "30", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["games"] == 30 and out["o_wins"] == 0
    assert out["x_wins"] + out["draws"] == 30 and out["games_per_second"] > 0


def test_parse_agent():
    assert parse_agent("td:episodes=2000,alpha=0.5") == ("td", {"episodes": 2000, "alpha": 0.5})
    assert parse_agent("perfect") == ("perfect", {})
    # imitate's `checkpoint:PATH` form gets the arena's own form in the message
    with pytest.raises(ValueError, match=r"KIND:checkpoint=PATH, e\.g\. td:checkpoint=a/b\.npz"):
        parse_agent("checkpoint:a/b.npz")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tictactoe", "arena", "--x", "perfekt"], "perfekt"),
        (["tictactoe", "arena", "--x", "td:episodes"], "KEY=VALUE"),
        (["tictactoe", "arena", "--x", "perfect:depth=3"], "does not take"),
        (["tictactoe", "arena", "--games", "0"], "--games"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
