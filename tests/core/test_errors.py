"""Error helpers: close matches and the exception hierarchy."""

import pytest

from bellmax.core.errors import BellmaxError, InvalidMDPError, UnknownNameError, unknown_name


def test_unknown_name_suggests_close_matches():
    e = unknown_name("algorithm", "dqm", ["dqn", "ppo", "a2c"])
    assert isinstance(e, UnknownNameError) and isinstance(e, KeyError) and isinstance(e, ValueError)
    assert str(e) == "unknown algorithm 'dqm'. Did you mean: 'dqn'?"


def test_unknown_name_falls_back_to_substrings_then_the_full_list():
    assert "'CartPole-v1'" in str(unknown_name("env", "cartpole", ["CartPole-v1", "Pendulum-v1"]))
    msg = str(unknown_name("env", "zzz", ["b", "a"], hint="See --list."))
    assert msg == "unknown env 'zzz'. Known: a, b. See --list."
    # a hint that lists the names itself is not doubled by "Known:"
    msg = str(
        unknown_name("agent", "zzz", ["ucb", "greedy"], hint="Agents: ucb, greedy.", listed=True)
    )
    assert msg == "unknown agent 'zzz'. Agents: ucb, greedy."
    msg = str(
        unknown_name("agent", "ucbb", ["ucb", "greedy"], hint="Agents: ucb, greedy.", listed=True)
    )
    assert msg == "unknown agent 'ucbb'. Did you mean: 'ucb'? Agents: ucb, greedy."


def test_a_common_alias_suggests_the_name_it_means():
    # `bellmax sweep ppo --grid lr=...` suggested 'anneal_lr' (the closest spelling)
    from bellmax.core.errors import NAME_ALIASES, alias_for

    fields = ["learning_rate", "anneal_lr", "gamma", "num_envs"]
    msg = str(unknown_name("Config field", "lr", fields, hint="FIELD is a Config field."))
    assert (
        msg == "unknown Config field 'lr'. Did you mean: 'learning_rate'? FIELD is a Config field."
    )
    assert (
        alias_for("--n-envs", fields) == "num_envs" and alias_for("LR", fields) == "learning_rate"
    )
    assert alias_for("clip_range", fields) is None  # its field is not among the known names
    assert "anneal_lr" in str(unknown_name("Config field", "aneal_lr", fields))  # no alias
    assert all(k == k.lower().replace("-", "_") for k in NAME_ALIASES)


def test_the_commands_option_spellings_are_aliases_of_their_fields():
    # one mapping (OPTION_NAMES), read both ways: the CLI option for a field, and the field
    # for a name written as that option (`--set total_steps=...`)
    from bellmax.cli import main as cli
    from bellmax.core.errors import NAME_ALIASES, OPTION_NAMES

    assert cli.OPTION_NAMES is OPTION_NAMES and OPTION_NAMES["total_timesteps"] == "total_steps"
    assert all(NAME_ALIASES[option] == field for field, option in OPTION_NAMES.items())
    assert cli.option_for("total_timesteps") == "--total-steps"
    assert str(unknown_name("Config field", "total_steps", ["total_timesteps", "total"])) == (
        "unknown Config field 'total_steps'. Did you mean: 'total_timesteps'?"
    )


def test_hierarchy():
    assert issubclass(InvalidMDPError, ValueError) and issubclass(InvalidMDPError, BellmaxError)
    with pytest.raises(ValueError):
        raise InvalidMDPError("x")
