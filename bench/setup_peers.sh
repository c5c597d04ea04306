#!/usr/bin/env bash
# Install the peer libraries that bellmax's benchmarks compare against, into their own venv.
#
#   bash bench/setup_peers.sh                 # every group below
#   bash bench/setup_peers.sh gymnax sb3      # only the named groups (any order, idempotent)
#   bash bench/setup_peers.sh --list          # list the groups
#
# Peers conflict with bellmax's pins (torch, gymnax < 1.0, old gymnasium, ...), so they never go
# into .venv/. They all share bench/.venv-peers/ (git-ignored): torch + SB3 and jax + gymnax 0.0.9
# + rejax resolve together there. Benchmarks run them through `_harness.run_in_peer_venv`, which
# says exactly which group to install when one is missing.
#
# Environment: PYTHON (interpreter that creates the venv, default python3),
#              BELLMAX_PEER_VENV (venv folder, default bench/.venv-peers).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${BELLMAX_PEER_VENV:-$HERE/.venv-peers}"
PYTHON="${PYTHON:-python3}"
GROUPS_ALL=(sb3 gymnax mdptoolbox casadi openspiel trajax sarsop)

describe() {
    cat <<'EOF'
groups:
  sb3         torch 2.13.0 (CPU) + stable-baselines3 2.9 + gymnasium   (deep RL: PPO, DQN)
  gymnax      jax 0.10.2 (CPU) + gymnax 0.0.9 + rejax 0.1.3             (JAX envs and deep RL)
  mdptoolbox  pymdptoolbox 4.0b3                                         (exact MDP solving)
  casadi      casadi 3.8 (IPOPT)                                         (trajectory optimisation)
  openspiel   open-spiel 2.0                                             (games, MCTS)
  trajax      google/trajax at c94a637 from GitHub, --no-deps            (iLQR, MPC; not on PyPI)
  sarsop      AdaCompNUS/sarsop at d914110 from GitHub, built with make  (POMDP point-based solver;
              C++, not on PyPI: needs git, g++ and make; bench/pomdp.py's HSVI peer)
EOF
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" || "${1:-}" == "--list" ]]; then
    describe
    exit 0
fi

requested=("$@")
if [[ ${#requested[@]} -eq 0 ]]; then
    requested=("${GROUPS_ALL[@]}")
fi
for g in "${requested[@]}"; do
    case "$g" in
        sb3 | gymnax | rejax | mdptoolbox | casadi | openspiel | open-spiel | trajax | sarsop) ;;
        *)
            echo "setup_peers.sh: unknown group '$g'." >&2
            describe >&2
            exit 2
            ;;
    esac
done

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "==> creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip install -q)

install_torch_cpu() {
    # Prefer the CPU wheel on local disk (pip's find-links, /opt/wheels here): the PyPI wheel
    # for Linux bundles CUDA and pulls several GB of nvidia-* packages. The machine's pip
    # constraints (/etc/xdg/pip/constraints.txt) cap torch at the releases on local disk.
    local wheel=""
    for dir in ${PIP_FIND_LINKS:-} /opt/wheels; do
        for f in "$dir"/torch-2.13.0+cpu-*.whl; do
            [[ -f "$f" ]] && wheel="$f" && break 2
        done
    done
    if [[ -n "$wheel" ]]; then
        "${PIP[@]}" "$wheel"
    else
        echo "    (no local CPU wheel found; installing torch==2.13.0 from the index)"
        "${PIP[@]}" "torch==2.13.0"
    fi
}

for g in "${requested[@]}"; do
    echo "==> installing peer group '$g' into $VENV"
    case "$g" in
        sb3)
            install_torch_cpu
            "${PIP[@]}" "stable-baselines3==2.9.*" gymnasium
            ;;
        gymnax | rejax)
            # rejax 0.1.3 needs gymnax < 1.0 (gymnax 1.0's step returns 6 values).
            "${PIP[@]}" "jax[cpu]==0.10.2" "jaxlib==0.10.2" "gymnax==0.0.9" "rejax==0.1.3"
            ;;
        mdptoolbox)
            "${PIP[@]}" "pymdptoolbox==4.0b3"
            ;;
        casadi)
            "${PIP[@]}" "casadi==3.8.*"
            ;;
        openspiel | open-spiel)
            "${PIP[@]}" "open-spiel==2.0.*"
            ;;
        trajax)
            # Not on PyPI; needs GitHub access (or a local clone: TRAJAX_SRC=/path/to/trajax).
            # On current JAX the bench sets `jax.tree_map = jax.tree.map` before importing it.
            # --no-deps below (its requirements pin nothing useful): what it imports first,
            # the same jax as bellmax's lock.
            "${PIP[@]}" "jax[cpu]==0.10.2" "jaxlib==0.10.2" scipy absl-py ml_collections
            "${PIP[@]}" --no-deps "${TRAJAX_SRC:-git+https://github.com/google/trajax@c94a637c5a397b3d4100153f25b4b165507b5b20}"
            ;;
        sarsop)
            # SARSOP's pomdpsol (Kurniawati, Hsu & Lee 2008), from source: not on PyPI, needs
            # GitHub access (or a local copy of that repository: SARSOP_SRC=/path/to/sarsop).
            # Built in $VENV/sarsop; bench/pomdp.py finds $VENV/sarsop/src/pomdpsol (or
            # BELLMAX_SARSOP=/path/to/pomdpsol). gcc >= 10 defaults to -fno-common, which its
            # C parser's globals need (multiple definition of `IP`, `IR`).
            dest="$VENV/sarsop"
            if [[ ! -d "$dest/src" ]]; then
                if [[ -n "${SARSOP_SRC:-}" ]]; then
                    cp -r "$SARSOP_SRC" "$dest"
                else
                    git clone -q https://github.com/AdaCompNUS/sarsop "$dest"
                    git -C "$dest" checkout -q d9141104392fd0a7b35327fdf7d40ef4b71a13ca
                fi
            fi
            make -s -C "$dest/src" -j"$(nproc)" CC="gcc -fcommon" pomdpsol
            ;;
    esac
done

echo "==> peer venv ready: $VENV"
"$VENV/bin/python" -m pip list 2>/dev/null |
    grep -i -E '^(torch|stable.baselines3|gymnasium|jax|jaxlib|gymnax|rejax|pymdptoolbox|casadi|open.spiel|trajax|numpy) ' ||
    true
