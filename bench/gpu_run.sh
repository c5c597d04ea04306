#!/usr/bin/env bash
# One GPU timing of the deep RL and MCTS benches (issue 14: "where a GPU machine is available,
# run the deep RL and MCTS benches on it once and record the result beside the CPU one").
#
# Runs bellmax's side of bench/scaling.py (PPO env steps/s against seeds vmapped, MCTS games/s
# against simulations), bench/tictactoe.py (MCTS at 1000 simulations, AlphaZero time to
# perfect play), bench/deep_cartpole.py (process start to CartPole-v1 solved, PPO and DQN) and
# bench/deep_pendulum.py (SAC and TD3 on Pendulum-v1, one seed and 16 vmapped),
# each under its own time limit, with the peers skipped (--no-venv-peers: the CPU records in
# bench/results/ hold the peer numbers). Every record carries machine.jax_backend and
# machine.jax_devices. Results and logs go to $WORK (results/ and one log per part); all of it
# is packed into $OUT/gpu_run.tar.gz after each part, so a part cut off by its limit still
# leaves the others. bench/results/gpu/ keeps what a run on the lent H200 recorded.
#
#   bash bench/gpu_run.sh                   # on a machine whose jax sees a GPU
#   PARTS="deep_pendulum" bash bench/gpu_run.sh   # some parts only (names as in `part` below)
#   OUT=/tmp/g PYTHON=.venv/bin/python SMOKE=1 bash bench/gpu_run.sh   # a quick dry run on CPU
#
# On the lent machine the image's python3 (its own jax with CUDA) is used; bellmax's pure-Python
# dependencies that the image lacks travel as wheels in .whl/ (see bench/README.md).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/bellmax-gpu-out}
WORK=${WORK:-/tmp/bellmax-gpu-run}
R=$WORK/results
mkdir -p "$R" "$OUT"
PY=${PYTHON:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export BELLMAX_CACHE_DIR=${BELLMAX_CACHE_DIR:-/tmp/bellmax-gpu-cache}
SMOKE=${SMOKE:-}

(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
    --format=csv 2>&1 || true) >"$WORK/machine.txt"
"$PY" -c "import jax, flax, optax, mctx, bellmax; print('jax', jax.__version__, \
'flax', flax.__version__, jax.default_backend(), jax.devices())" >>"$WORK/machine.txt" 2>&1
status=$?
cat "$WORK/machine.txt"
[ $status -eq 0 ] || exit 1

pack() { tar -czf "$OUT/gpu_run.tar.gz" -C "$WORK" . 2>/dev/null; }
PARTS=${PARTS:-scaling_ppo scaling_mcts tictactoe deep_cartpole deep_pendulum}
part() {  # part NAME SECONDS command...: run one bench under a limit, log it, pack
    local name=$1 limit=$2 t0=$SECONDS
    shift 2
    case " $PARTS " in *" $name "*) ;; *) return 0 ;; esac
    timeout "$limit" "$@" >"$WORK/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$WORK/parts.txt"
    [ $rc -eq 0 ] || tail -n 5 "$WORK/$name.log" | cut -c1-300
    pack
}
common=(--no-venv-peers --results-dir "$R" --quiet-timeout 5)
if [ -n "$SMOKE" ]; then common+=(--smoke); fi

part scaling_ppo 200 "$PY" bench/scaling.py --only ppo "${common[@]}"
part scaling_mcts 100 "$PY" bench/scaling.py --only mcts "${common[@]}"
part tictactoe 90 "$PY" bench/tictactoe.py "${common[@]}"
part deep_cartpole 110 "$PY" bench/deep_cartpole.py --e2e-seeds 1 --no-warm16 "${common[@]}"
part deep_pendulum 240 "$PY" bench/deep_pendulum.py "${common[@]}"

# A short table (the device tool returns the end of the output).
"$PY" - "$R" <<'PYEOF'
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl")):
    for line in f.read_text().splitlines():
        r = json.loads(line)
        ours = r.get("ours")
        shown = "-" if ours is None else f"{ours:.4g}"
        print(f"{r['bench'][:30]:30s} {shown:>9} {r.get('unit', ''):10s} {r.get('case', '')[:80]}")
PYEOF
