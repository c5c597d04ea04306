"""Benchmark: random-policy CartPole-v1 rollouts, in environment steps per second.

The same work for everyone: `num_envs` (256) CartPole-v1 environments, each stepped
`num_steps` (1000) times with uniformly random actions, resetting when an episode ends.

- bellmax: `jax.jit(vmap over envs of lax.scan over steps)` of `AutoReset(CartPole())`.
- Gymnasium 1.x (peer, this process): `gymnasium.make_vec("CartPole-v1", num_envs,
  vectorization_mode="vector_entry_point")`, its numpy-vectorised CartPole, stepped from Python.
- gymnax 0.0.9 (peer, `bench/.venv-peers`, group `gymnax`): the same jit/vmap/scan program
  around gymnax's CartPole-v1 (which auto-resets inside `step`).

bellmax's compile time is reported apart (`ours_compile_s`, `ours_trace_s`). Steps/s use the
fastest steady-state sample (interference from other work only ever adds time); medians are in
the record too. Each implementation also reports its mean episode length, about 22 for a random
policy: a check that everyone did the same work (bellmax and gymnax, fed the same keys, have
finished exactly the same number of episodes in every run so far). Gymnasium's vector env
resets on the step call after an episode ends, so its mean length reads one step longer
(about 23.4 against 22.3): that step still computes the physics for every env, as ours do.

    python bench/env_rollout.py              # full size, every peer that is installed
    python bench/env_rollout.py --smoke      # tiny, no peer venv (the test suite runs this)
    python bench/env_rollout.py --peer gymnax --num-envs 256 --num-steps 1000   # peer side only
"""

from __future__ import annotations

import argparse

import _harness as H

H.fair_threads()
H.cold_compiles()  # our compile seconds stand beside a peer's cold ones

BENCH = "env_rollout"
ENV_ID = "CartPole-v1"


def _jax_rollout(step_fn, reset_fn, num_envs: int, num_steps: int):
    """`jit(key -> (total reward, episodes finished) per env)` for any gymnax-style env."""
    import jax
    import jax.numpy as jnp

    def one_env(key):
        key_reset, key_loop = jax.random.split(key)
        _, state = reset_fn(key_reset)

        def body(carry, _):
            state, key, total, episodes = carry
            key, key_act, key_step = jax.random.split(key, 3)
            action = jax.random.randint(key_act, (), 0, 2)
            state, reward, done = step_fn(key_step, state, action)
            return (state, key, total + reward, episodes + done.astype(jnp.int32)), None

        init = (state, key_loop, jnp.float32(0.0), jnp.int32(0))
        (_, _, total, episodes), _ = jax.lax.scan(body, init, None, length=num_steps)
        return total, episodes

    def rollout(key):
        return jax.vmap(one_env)(jax.random.split(key, num_envs))

    return jax.jit(rollout)


def _measure_jax(rollout, num_envs: int, num_steps: int, repeat: int, seed: int) -> dict:
    import jax
    import numpy as np

    key = jax.random.PRNGKey(seed)
    timing = H.time_jax(rollout, key, repeat=repeat, warmup=1)
    _, episodes = rollout(key)
    episodes = int(np.asarray(episodes).sum())
    steps = num_envs * num_steps
    return {
        "steps_per_s": steps / timing.run.min,
        "episodes": episodes,
        "mean_episode_length": steps / max(episodes, 1),
        **timing.to_dict(),
    }


def measure_bellmax(num_envs: int, num_steps: int, repeat: int, seed: int) -> dict:
    """bellmax's CartPole-v1 under AutoReset, jit(vmap(scan))."""
    from bellmax.envs.cartpole import CartPole
    from bellmax.envs.wrappers import AutoReset

    env = AutoReset(CartPole())
    params = env.default_params

    def step_fn(key, state, action):
        _, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
        return state, reward, terminated | truncated

    rollout = _jax_rollout(step_fn, lambda key: env.reset(key, params), num_envs, num_steps)
    return _measure_jax(rollout, num_envs, num_steps, repeat, seed)


def measure_gymnax(num_envs: int, num_steps: int, repeat: int, seed: int) -> dict:
    """gymnax 0.0.9's CartPole-v1 (auto-resets in `step`), the same jit(vmap(scan)).

    Runs in the peer venv: imports gymnax, never bellmax.
    """
    import gymnax

    env, params = gymnax.make(ENV_ID)

    def step_fn(key, state, action):
        _, state, reward, done, _ = env.step(key, state, action, params)
        return state, reward, done

    rollout = _jax_rollout(step_fn, lambda key: env.reset(key, params), num_envs, num_steps)
    out = _measure_jax(rollout, num_envs, num_steps, repeat, seed)
    out["version"] = H.package_version("gymnax")
    out["jax_version"] = H.package_version("jax")
    return out


def measure_gymnasium(num_envs: int, num_steps: int, repeat: int, seed: int) -> dict:
    """Gymnasium's numpy-vectorised CartPole-v1 (next-step auto-reset), stepped from Python.

    Random actions are drawn per step with numpy, as bellmax draws them per step in jax.
    """
    import gymnasium as gym
    import numpy as np

    envs = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")
    rng = np.random.default_rng(seed)
    episodes = [0]

    def run():
        envs.reset(seed=seed)
        finished = 0
        for _ in range(num_steps):
            action = rng.integers(0, 2, size=num_envs)
            _, _, terminated, truncated, _ = envs.step(action)
            finished += int(np.count_nonzero(terminated | truncated))
        episodes[0] = finished

    timing = H.time_it(run, repeat=repeat, warmup=1)
    envs.close()
    steps = num_envs * num_steps
    return {
        "steps_per_s": steps / timing.min,
        "episodes": episodes[0],
        "mean_episode_length": steps / max(episodes[0], 1),
        "version": H.package_version("gymnasium"),
        **timing.to_dict("run_"),
    }


def _record(ours: dict, peer: dict, peer_name: str, sizes: dict, quick: bool) -> dict:
    ours_fields = {f"ours_{k}": v for k, v in ours.items() if k != "steps_per_s"}
    if H.is_skipped(peer):
        peer_value, peer_fields = None, {"peer_skipped": peer["reason"]}
    else:
        peer_value = peer["steps_per_s"]
        peer_fields = {f"peer_{k}": v for k, v in peer.items() if k != "steps_per_s"}
    return H.result(
        BENCH,
        ours["steps_per_s"],
        peer_value,
        "steps/s",
        case=f"{ENV_ID} random policy, {sizes['num_envs']} envs x {sizes['num_steps']} steps",
        peer_name=peer_name,
        quick=quick,
        **sizes,
        **ours_fields,
        **peer_fields,
    )


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--num-envs", type=int, default=None, help="parallel envs (default 256)")
    p.add_argument("--num-steps", type=int, default=None, help="steps per env (default 1000)")
    p.add_argument("--repeat", type=int, default=None, help="timed samples per implementation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peer", choices=["gymnax"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    quick = args.quick or args.smoke
    num_envs = args.num_envs or (16 if quick else 256)
    num_steps = args.num_steps or (100 if quick else 1000)
    repeat = args.repeat or (2 if quick else 10)
    for name, value in (("--num-envs", num_envs), ("--num-steps", num_steps), ("--repeat", repeat)):
        if value < 1:
            p.error(f"{name} must be >= 1, got {value}")

    if args.peer == "gymnax":  # peer side, inside bench/.venv-peers
        H.print_json(measure_gymnax(num_envs, num_steps, repeat, args.seed))
        return 0

    sizes = {"num_envs": num_envs, "num_steps": num_steps}
    H.log(f"{BENCH}: bellmax, {num_envs} envs x {num_steps} steps")
    ours = measure_bellmax(num_envs, num_steps, repeat, args.seed)
    H.log(f"{BENCH}: gymnasium vector env")
    gym_res = measure_gymnasium(num_envs, num_steps, repeat, args.seed)  # as many samples
    H.emit(_record(ours, gym_res, "gymnasium (numpy vector env)", sizes, quick), args.results_dir)

    if args.smoke or args.no_venv_peers:
        gymnax_res = H.skipped("peer-venv peers skipped (--smoke / --no-venv-peers)")
    else:
        H.log(f"{BENCH}: gymnax 0.0.9 in the peer venv")
        gymnax_res = H.run_in_peer_venv(
            __file__,
            [
                "--peer",
                "gymnax",
                "--num-envs",
                num_envs,
                "--num-steps",
                num_steps,
                "--repeat",
                repeat,
                "--seed",
                args.seed,
            ],
            group="gymnax",
            modules=["gymnax", "jax"],
        )
        if H.is_skipped(gymnax_res):
            H.log(f"{BENCH}: gymnax skipped: {gymnax_res['reason']}")
    H.emit(_record(ours, gymnax_res, "gymnax 0.0.9", sizes, quick), args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
