#!/usr/bin/env bash
# asap3 (C++ EMT), for benchmarks/bench_emt.py only: tansaku does not depend on it. Idempotent.
# asap3 builds without MPI when its ASAP_CONFIG sets mpicompiler = mpilinker = None.
set -euo pipefail
if python -c "import asap3" 2>/dev/null; then
    echo "asap3 already installed"; exit 0
fi
config="$(mktemp -d)/asap_config.py"
printf 'mpicompiler = None\nmpilinker = None\n' > "$config"
ASAP_CONFIG="$config" python -m pip install --no-build-isolation "asap3==3.13.11"
python -c "import asap3; print('asap3', asap3.__version__)"
