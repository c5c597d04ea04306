"""DQN's Config refuses a learning_starts that leaves the run no gradient steps to take."""

import dataclasses

import pytest

from bellmax.deep import dqn


@pytest.mark.parametrize(
    ("total", "starts", "run_steps", "fix"),
    [
        (512, 1_000, 512, 1_024),  # learning would start after the end
        (1_000, 1_000, 768, 1_024),  # rounded down to whole updates of 256 steps
        (1_024, 1_024, 1_024, 1_280),  # at the end: one update's gradient steps at most
    ],
)
def test_learning_starts_at_or_beyond_the_run_is_refused(total, starts, run_steps, fix):
    cfg = dataclasses.replace(dqn.Config(), total_timesteps=total, learning_starts=starts)
    match = (
        rf"learning_starts={starts} is at or beyond the run's {run_steps} env steps .*set "
        rf"learning_starts below {run_steps} or total_timesteps to at least {fix}\."
    )
    with pytest.raises(ValueError, match=match):
        cfg.validate()
    # The suggested total makes it valid.
    dataclasses.replace(cfg, total_timesteps=fix).validate()


def test_learning_starts_below_the_run_is_accepted():
    cfg = dataclasses.replace(dqn.Config(), total_timesteps=1_024, learning_starts=1_000)
    cfg.validate()
    assert cfg.total_gradient_steps == cfg.gradient_steps  # only the last update learns
