"""The deep RL configs check their fields on construction (`__post_init__`, core.checks).

A wrong type raises TypeError, a wrong value ValueError; each message names `<ALGO> Config.field`,
the bad value and what is allowed. `validate(venv)`, which `make_train` and the driver call,
checks the run as a whole (one update at least, learning within the run) and the environment.
"""

import dataclasses

import pytest

from bellmax.deep import a2c, dqn, ppo, reinforce
from bellmax.envs.vector import make_vector_env

PG = {"A2C": a2c, "PPO": ppo, "REINFORCE": reinforce}

# Checks the three policy-gradient configs share: (field, value, error, message).
PG_CASES = [
    ("learning_rate", -1e-3, ValueError, r"learning_rate must be a number > 0, got -0\.001"),
    ("learning_rate", float("nan"), ValueError, "learning_rate must be a finite number"),
    ("max_grad_norm", 0.0, ValueError, "max_grad_norm must be a number > 0"),
    ("num_envs", 0, ValueError, "num_envs must be an int >= 1, got 0"),
    ("num_steps", 2.5, TypeError, "num_steps must be an int, got float 2.5"),
    ("total_timesteps", 1e5, TypeError, r"total_timesteps must be an int.*\(write 100000\)"),
    ("gamma", 1.5, ValueError, "gamma must be a number >= 0 and <= 1, got 1.5"),
    ("vf_coef", "0.5", TypeError, "vf_coef must be a number, got str"),
    ("ent_coef", -0.1, ValueError, "ent_coef must be a number >= 0"),
    ("momentum", 1.0, ValueError, "momentum must be a number >= 0 and < 1"),
    ("log_std_init", None, TypeError, "log_std_init must be a number"),
    ("anneal_lr", 1, TypeError, "anneal_lr must be True or False"),
    ("normalize_advantages", "yes", TypeError, "normalize_advantages must be True or False"),
    ("optimizer", "adagrad", ValueError, "optimizer must be one of 'adam', 'sgd'"),
    ("optimizer", 0, TypeError, "optimizer must be a str"),
    ("activation", "sigmoid", ValueError, "activation must be one of"),
    ("hidden_sizes", (64, -1), ValueError, r"hidden_sizes\[1\] must be an int >= 1"),
    ("hidden_sizes", 64, TypeError, "hidden_sizes must be a tuple of ints"),
]

# Checks of one algorithm's own fields.
OWN_CASES = [
    ("A2C", "gae_lambda", -0.1, ValueError, "gae_lambda must be a number >= 0 and <= 1"),
    ("A2C", "shared_torso", 0, TypeError, "shared_torso must be True or False"),
    ("PPO", "gae_lambda", 1.1, ValueError, "gae_lambda must be a number >= 0 and <= 1"),
    ("PPO", "clip_eps", 0.0, ValueError, "clip_eps must be a number > 0 and < 1"),
    ("PPO", "num_epochs", 0, ValueError, "num_epochs must be an int >= 1"),
    ("PPO", "minibatch_size", 512, ValueError, "minibatch_size=512 is larger than the rollout"),
    ("PPO", "minibatch_size", 100, ValueError, "minibatch_size=100 must divide the rollout"),
    ("PPO", "clip_value", "no", TypeError, "clip_value must be True or False"),
    ("REINFORCE", "bootstrap_cut", 1, TypeError, "bootstrap_cut must be True or False"),
]

DQN_CASES = [
    ({"learning_rate": -1e-3}, ValueError, r"learning_rate must be a number > 0, got -0\.001"),
    ({"learning_rate": "fast"}, TypeError, "learning_rate must be a number, got str"),
    ({"gradient_steps": 0}, ValueError, "gradient_steps must be an int >= 1, got 0"),
    ({"buffer_size": 1e5}, TypeError, r"buffer_size must be an int.*\(write 100000\)"),
    ({"learning_starts": -1}, ValueError, "learning_starts must be an int >= 0"),
    ({"gamma": 1.5}, ValueError, "gamma must be a number >= 0 and <= 1, got 1.5"),
    ({"tau": 0.0}, ValueError, "tau must be a number > 0 and <= 1"),
    ({"final_epsilon": -0.1}, ValueError, "final_epsilon must be a number >= 0 and <= 1"),
    ({"momentum": 1.0}, ValueError, "momentum must be a number >= 0 and < 1"),
    ({"loss": "l1"}, ValueError, "loss must be one of 'huber', 'mse'"),
    ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of 'adam', 'sgd'"),
    ({"activation": "sigmoidal"}, ValueError, "activation must be one of"),
    ({"hidden_sizes": (64, 0)}, ValueError, r"hidden_sizes\[1\] must be an int >= 1"),
    ({"double_dqn": "yes"}, TypeError, "double_dqn must be True or False"),
    ({"anneal_lr": 1}, TypeError, "anneal_lr must be True or False"),
    ({"batch_size": 200, "buffer_size": 100}, ValueError, "batch_size=200 is larger than buffer"),
    ({"learning_starts": 10}, ValueError, "learning_starts=10 is smaller than batch_size=64"),
    (
        {"buffer_size": 100, "batch_size": 32, "learning_starts": 64},
        ValueError,
        "256 transitions, more than buffer_size=100",
    ),
]


@pytest.mark.parametrize("algo", sorted(PG))
@pytest.mark.parametrize(("field", "value", "error", "match"), PG_CASES)
def test_policy_gradient_config_checks_its_fields_on_construction(algo, field, value, error, match):
    with pytest.raises(error, match=rf"^{algo} Config\.{match}"):
        dataclasses.replace(PG[algo].Config(), **{field: value})


@pytest.mark.parametrize(("algo", "field", "value", "error", "match"), OWN_CASES)
def test_algorithm_specific_fields_are_checked_on_construction(algo, field, value, error, match):
    with pytest.raises(error, match=rf"^{algo} Config\.{match}"):
        dataclasses.replace(PG[algo].Config(), **{field: value})


@pytest.mark.parametrize(("changes", "error", "match"), DQN_CASES)
def test_dqn_config_checks_its_fields_on_construction(changes, error, match):
    with pytest.raises(error, match=rf"^DQN Config[.:] ?.*{match}"):
        dataclasses.replace(dqn.Config(), **changes)


@pytest.mark.parametrize(
    ("module", "changes", "match"),
    [
        (a2c, {"total_timesteps": 100}, "A2C Config.total_timesteps=100 is less than one rollout"),
        (ppo, {"total_timesteps": 100}, "PPO Config.total_timesteps=100 is less than one rollout"),
        (reinforce, {"total_timesteps": 100}, "REINFORCE Config.total_timesteps=100 is less than"),
        (dqn, {"total_timesteps": 100}, "DQN Config.total_timesteps=100 is less than one update"),
        (dqn, {"total_timesteps": 512}, "DQN Config.learning_starts=1000 is at or beyond the run"),
    ],
)
def test_validate_refuses_a_run_without_learning(module, changes, match):
    config = dataclasses.replace(module.Config(), **changes)  # fine for its schedules alone
    with pytest.raises(ValueError, match=match):
        config.validate()
    with pytest.raises(ValueError, match=match):
        module.make_train(config, "CartPole-v1")


@pytest.mark.parametrize("module", [a2c, ppo, reinforce, dqn])
def test_valid_configs_are_hashable_and_validate_checks_the_environment(module):
    config = module.Config()
    assert hash(config) == hash(module.Config()) and config == module.Config()
    config.validate()
    config.validate(make_vector_env("CartPole-v1", num_envs=config.num_envs))
    with pytest.raises(ValueError, match="num_envs"):
        config.validate(make_vector_env("CartPole-v1", num_envs=config.num_envs + 1))


def test_hidden_sizes_given_as_a_list_become_a_tuple():
    # a config rebuilt from run.json (JSON keeps lists) crashed the driver after training,
    # unhashable, where it caches programs by config
    from bellmax.deep import sac, td3

    for module in (a2c, ppo, reinforce, dqn, sac, td3):
        config = module.Config(hidden_sizes=[32, 32])
        assert config.hidden_sizes == (32, 32) and hash(config) == hash(
            module.Config(hidden_sizes=(32, 32))
        )


def test_presets_are_valid_configs():
    for preset in ppo.PRESETS.values():
        assert dataclasses.replace(preset) == preset


@pytest.mark.parametrize("algo", ["ppo", "a2c", "reinforce", "dqn", "sac", "td3"])
def test_a_budget_past_the_int32_step_counters_is_refused(algo):
    # The training programs count env steps in int32: at 3e9 steps the counter wrapped to
    # negative values past 2**31, and DQN, SAC and TD3 then stopped learning and went back
    # to random exploration for the rest of the run, with no word (metrics.csv's env_steps
    # went negative). 2**31 - 1 is the largest budget taken.
    import importlib

    module = importlib.import_module(f"bellmax.deep.{algo}")
    with pytest.raises(ValueError, match=r"total_timesteps must be at most 2\*\*31 - 1 = "):
        module.Config(total_timesteps=3_000_000_000)
    assert module.Config(total_timesteps=2**31 - 1).total_timesteps == 2**31 - 1
