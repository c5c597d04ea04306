"""The registry: make, parameter overrides, and its errors."""

import subprocess
import sys

import pytest

import bellmax
from bellmax.core import UnknownNameError
from bellmax.envs import registry


def test_make_returns_env_and_params_with_overrides():
    env, params = bellmax.make("CartPole-v1", masspole=0.2)
    assert env.name == "CartPole-v1" and params.masspole == 0.2
    assert params.polemass_length == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("env_id", "cls", "field", "value"),
    [
        (
            "MaximizationBias-v0",
            "bellmax.envs.maximization_bias:MaximizationBias",
            "mean_reward",
            -0.2,
        ),
        ("RandomWalk-v0", "bellmax.envs.random_walk:RandomWalk", "left_reward", -1.0),
        ("GamblersProblem-v0", "bellmax.envs.gambler:GamblersProblem", "p_h", 0.25),
        ("Pendulum-v1", "bellmax.envs.pendulum:Pendulum", "g", 9.81),
    ],
)
def test_make_builds_the_registered_class_with_overrides(env_id, cls, field, value):
    env, params = bellmax.make(env_id, **{field: value})
    assert type(env) is registry.spec(env_id).load()
    assert registry.spec(env_id).entry_point == cls and env.name == env_id
    assert getattr(params, field) == value


def test_resolve_env_gives_one_named_result_for_a_bellmax_id():
    made = registry.resolve_env("Pendulum-v1")
    assert not made.is_host and made.host is None
    assert made.env.name == "Pendulum-v1" and made.params == made.env.default_params
    # the old union-typed resolve still answers (env, params) for bellmax ids
    env, params = registry.resolve("Pendulum-v1")
    assert env == made.env and params == made.params


def test_unknown_id_lists_close_matches():
    with pytest.raises(
        UnknownNameError, match=r"unknown environment id 'Cartpole-v1'.*'CartPole-v1'"
    ):
        bellmax.make("Cartpole-v1")
    with pytest.raises(UnknownNameError, match=r"'Pendulum-v1'"):
        bellmax.make("pendulum")
    # still a ValueError and a KeyError for callers that catch those
    with pytest.raises(ValueError):
        bellmax.make("NoSuchThing-v0")


def test_make_points_a_gymnasium_id_to_where_it_runs():
    # bellmax.make is pure-JAX only: a Gymnasium id is not "unknown", it runs elsewhere
    with pytest.raises(UnknownNameError) as info:
        bellmax.make("gymnasium:CartPole-v1")
    text = str(info.value)
    assert "make_train(config, 'gymnasium:CartPole-v1')" in text
    assert "bellmax train ALGO --env gymnasium:CartPole-v1" in text
    assert "make_host_vector_env('gymnasium:CartPole-v1')" in text
    assert "bellmax.make('CartPole-v1')" in text  # bellmax's own twin
    assert "Did you mean" not in text


def test_unknown_id_far_from_every_id_lists_bellmax_ids_not_guesses():
    with pytest.raises(UnknownNameError) as info:
        bellmax.make("Zzz-v9")
    text = str(info.value)
    assert "Did you mean" not in text and "bellmax ids: Blackjack-v0, CartPole-v1" in text


def test_a_gymnax_id_is_matched_against_gymnax_ids_only():
    # the gymnax bridge passes gymnax's names (the registry never imports gymnax)
    names = ["Acrobot-v1", "CartPole-v1", "MountainCar-v0", "Pendulum-v1", "Catch-bsuite"]
    text = str(registry.unknown_env_error("gymnax:Cartpole-v1", gymnax_ids=names))
    # a close id alone, as for bellmax's ids (every gymnax id after it was noise)
    assert text == (
        "unknown gymnax environment 'gymnax:Cartpole-v1'. Did you mean: 'gymnax:CartPole-v1'?"
    ), text
    text = str(registry.unknown_env_error("gymnax:Zzz", gymnax_ids=names))
    assert "Did you mean" not in text and "gymnax's ids: gymnax:Acrobot-v1" in text
    text = str(registry.unknown_env_error("gymnax:GridWorld4x4-v0", gymnax_ids=names))
    assert "Did you mean: 'GridWorld4x4-v0'?" in text  # bellmax's own id: drop the prefix


def test_unknown_param_lists_valid_names():
    with pytest.raises(
        UnknownNameError, match=r"unknown parameter of CartPoleParams 'mass_cart'.*'masscart'"
    ):
        bellmax.make("CartPole-v1", mass_cart=2.0)


def test_register_twice_is_an_error():
    s = registry.spec("CartPole-v1")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(s)
    registry.register(s, overwrite=True)  # allowed when asked for


def test_every_entry_has_a_description_and_entry_point():
    ids = registry.registered()
    assert "CartPole-v1" in ids and len(ids) == len(set(ids))
    for env_id in ids:
        s = registry.spec(env_id)
        assert s.description and ":" in s.entry_point


def test_listing_does_not_import_env_modules_or_gymnasium():
    code = (
        "import sys, bellmax; bellmax.registered(); "
        "assert 'gymnasium' not in sys.modules; "
        "assert 'bellmax.envs.jacks' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
