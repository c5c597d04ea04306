"""The human expert driven by scripted input: labels saved as given, an interrupt keeps them."""

from __future__ import annotations

import io

import numpy as np
import pytest

from bellmax.envs import spaces
from bellmax.imitation import (
    BCConfig,
    ImitationConfig,
    cartpole_picture,
    human_expert,
    imitate,
    label,
    load_dataset,
)

OBS = np.array([[0.0, 0.1, 0.05, 0.0], [1.2, 0.0, -0.1, 0.3], [-2.4, 0.0, 0.0, 0.0]], np.float32)


def test_labels_skips_and_retries(tmp_path):
    out = io.StringIO()
    expert = human_expert(
        spaces.Discrete(2),
        env_id="gymnasium:CartPole-v1",
        stdin=io.StringIO("1\n7\nleft\ns\n0\n"),
        stdout=out,
        save_to=tmp_path / "h.npz",
    )
    a, given = label(expert, OBS, spaces.Discrete(2))
    assert given.tolist() == [True, False, True] and a[given].tolist() == [1, 0]
    text = out.getvalue()
    assert "'7' is not an action" in text and "'left' is not an action" in text
    assert "0 push left, 1 push right; s skip, q quit" in text
    assert "theta +0.050 rad" in text  # the numbers, and the picture below them
    saved, meta = load_dataset(tmp_path / "h.npz")
    assert saved.actions.tolist() == [1, 0] and meta == {"expert": "human"}
    np.testing.assert_array_equal(saved.obs, OBS[[0, 2]])


def test_an_interrupt_keeps_every_label_given(tmp_path):
    expert = human_expert(
        spaces.Discrete(2), stdin=io.StringIO("1\n0\nq\n"), stdout=io.StringIO(),
        save_to=tmp_path / "h.npz",
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        label(expert, OBS, spaces.Discrete(2))
    assert load_dataset(tmp_path / "h.npz")[0].actions.tolist() == [1, 0]


def test_a_run_with_the_human_expert_stops_at_the_end_of_input(tmp_path):
    # The "person" answers left, right, left, ...; input ends after 30 labels, like a Ctrl-C.
    answers = io.StringIO("".join("1\n" if i % 2 else "0\n" for i in range(30)))
    expert = human_expert(spaces.Discrete(2), stdin=answers, stdout=io.StringIO(),
                          save_to=tmp_path / "human.npz")  # fmt: skip
    config = ImitationConfig(algorithm="bc", labels=500, labels_per_round=20, rounds=5,
                             eval_episodes=1, bc=BCConfig(steps=10))  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        imitate("gymnasium:CartPole-v1", expert, config, dataset_path=tmp_path / "d.npz")
    assert len(load_dataset(tmp_path / "human.npz")[0]) == 30  # every answer given
    assert len(load_dataset(tmp_path / "d.npz")[0]) == 30  # and the run's dataset has them


def test_the_picture_shows_cart_and_pole():
    pic = cartpole_picture(OBS[2]).splitlines()
    assert pic[1].strip() == "|" and pic[2][2] == "#"  # at the left end of the track, upright
    assert "\\" in cartpole_picture(OBS[1]) and "/" in cartpole_picture(OBS[0])


def test_continuous_actions_are_refused():
    with pytest.raises(ValueError, match="labels discrete actions"):
        human_expert(spaces.Box(-1.0, 1.0, (1,)))
