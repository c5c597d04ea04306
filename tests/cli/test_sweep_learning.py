"""Learning check of `bellmax sweep` (a learning module: its pass depends on trained numbers).

The issue's sweep: PPO on CartPole-v1, 4 learning rates x 2 seeds = 8 trials on the local
backend, as ONE compiled program (ppo.update is traced once, with the learning rate a
tracer), and the best configuration's mean final evaluation return over its 2 seeds reaches
475 of 500. 30k env steps per trial (rl-zoo's PPO settings, the bellmax defaults, need
~50-100k for every seed; 3 of these 4 learning rates reach 500 on both seeds at 30k here).
"""

from __future__ import annotations

import json

from bellmax.cli.main import main
from bellmax.deep import ppo
from bellmax.train import sweep as sw


def test_ppo_cartpole_sweep_compiles_once_and_solves(monkeypatch, capsys):
    traces = []
    real = ppo.update

    def counted(state, config, venv):
        traces.append(type(config.learning_rate).__name__)
        return real(state, config, venv)

    monkeypatch.setattr(ppo, "update", counted)
    monkeypatch.setattr(sw, "_PROGRAMS", {})
    argv = ["sweep", "ppo", "--env", "CartPole-v1", "--grid",
            "learning_rate=3e-4,1e-3,3e-3,1e-2", "--seeds", "2", "--backend", "local",
            "--total-steps", "30000", "--json"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(traces) == 1 and "Tracer" in traces[0]
    assert res["programs"] == 1 and len(res["trials"]) == 8
    assert {t["seed"] for t in res["trials"]} == {0, 1}
    assert res["best"]["mean_final_eval_return"] >= 475, res["trials"]
