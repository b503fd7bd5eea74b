#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine with Python 3.11, as root:
# system packages (Chromium for the report test, SLURM + munge, Quantum ESPRESSO, GPAW's libraries),
# the CPU build of torch, tansaku with its extras, then each scripts/setup/*.sh (GPAW build, MPI,
# a single-node SLURM on localhost, ...). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore DEBIAN_FRONTEND=noninteractive

apt_packages=(chromium slurm-wlm munge quantum-espresso libxc-dev libfftw3-dev)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-tests: apt-get install ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[ml,hpc,test]"

for script in scripts/setup/*.sh; do
  [ -e "$script" ] || continue
  echo "setup-tests: $script"
  bash "$script"
done
