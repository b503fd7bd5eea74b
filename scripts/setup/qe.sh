#!/usr/bin/env bash
# Install Quantum ESPRESSO (pw.x) and its pseudopotentials from Debian. Idempotent.
# Debian's pw.x is linked against Debian's Open MPI: tansaku starts it (for cores > 1) with
# /usr/bin/mpirun, never with an mpirun/mpiexec that a pip MPI wheel (mpich) may put first on PATH.
set -euo pipefail
if [ -x /usr/bin/pw.x ] && [ -e /usr/share/espresso/pseudo/Fe.pbe-spn-rrkjus_psl.0.2.1.UPF ] && [ -x /usr/bin/mpirun ]; then
    echo "Quantum ESPRESSO already installed: $(cd /tmp && echo | /usr/bin/pw.x 2>/dev/null | grep -m1 -o 'PWSCF v\.[^ ]*')"
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq quantum-espresso quantum-espresso-data openmpi-bin </dev/null
(cd /tmp && echo | /usr/bin/pw.x 2>/dev/null) | grep -m1 -o 'PWSCF v\.[^ ]*'
