#!/usr/bin/env bash
# quacc (+ jobflow) for benchmarks/bench_engine.py only: tansaku does not depend on them. Idempotent.
# They go into their own venv that sees this Python's packages (--system-site-packages), with a
# constraints file holding ase, pymatgen, numpy, torch, dask and distributed at this environment's
# versions: the main environment is never touched, and the benchmark compares engines on the same
# ASE/numpy. The venv is $TANSAKU_QUACC_VENV (default ~/.cache/tansaku/quacc-venv); the benchmark finds it there.
set -euo pipefail
venv="${TANSAKU_QUACC_VENV:-$HOME/.cache/tansaku/quacc-venv}"
python="${PYTHON:-python}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import quacc, jobflow" 2>/dev/null; then
    echo "quacc already installed in $venv"; exit 0
fi
"$python" -m venv --system-site-packages "$venv"
constraints="$(mktemp)"
"$python" -m pip freeze 2>/dev/null | grep -iE '^(ase|pymatgen|pymatgen-core|numpy|scipy|torch|dask|distributed|h5py|monty|pydantic|pydantic-core)==' \
    > "$constraints" || true
"$venv/bin/python" -m pip install --quiet -c "$constraints" "quacc==1.8.2" "jobflow"
"$venv/bin/python" -c "import quacc, jobflow, ase, numpy; print('quacc', quacc.__version__, 'jobflow', jobflow.__version__, 'ase', ase.__version__, 'numpy', numpy.__version__)"
