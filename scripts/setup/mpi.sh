#!/usr/bin/env bash
# MPI for the mpi executor and its test: mpi4py with the self-contained MPICH wheel (its mpiexec is
# installed next to the Python executable; no root, no system MPI needed). Idempotent.
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
if python -c "import mpi4py, mpi4py.MPI" 2>/dev/null && [ -x "$(dirname "$(python -c 'import sys; print(sys.executable)')")/mpiexec" ]; then
  echo "mpi.sh: mpi4py and mpiexec present"
  exit 0
fi
python -m pip install -q mpich "mpi4py>=3.1"
python -c "import mpi4py.MPI as M; print('mpi.sh:', M.Get_library_version().splitlines()[0])"
