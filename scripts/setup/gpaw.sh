#!/usr/bin/env bash
# Install GPAW (DFT, PAW method) with FFTW and libxc, plus its PAW datasets (gpaw-data). Idempotent.
# Without FFTW, GPAW falls back to numpy FFTs (about 3x slower on the test cells). Build takes ~1 min.
set -euo pipefail
GPAW_VERSION="${GPAW_VERSION:-25.7.0}"  # 26.x compiles its C sources as C++ (needs a g++ set-up)
if python -c "import gpaw, sys; from gpaw.fftw import have_fftw; sys.exit(0 if have_fftw() and gpaw.__version__ == '$GPAW_VERSION' else 1)" 2>/dev/null \
   && python -c "import gpaw_data" 2>/dev/null; then
    echo "gpaw $GPAW_VERSION with FFTW already installed"; exit 0
fi
if ! dpkg -s libxc-dev libfftw3-dev libopenblas-dev >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxc-dev libfftw3-dev libopenblas-dev </dev/null
fi
config="$(mktemp -d)/siteconfig.py"
cat > "$config" <<'CFG'
# tansaku: serial GPAW (tasks get their cores from the run context), FFTW and libxc from Debian.
mpi = False
fftw = True
libraries += ['fftw3', 'openblas']
CFG
python -m pip install -q pybind11  # build requirement (built against the installed numpy: no build isolation)
GPAW_CONFIG="$config" python -m pip install --no-build-isolation --no-cache-dir "gpaw==$GPAW_VERSION" gpaw-data
gpaw info | grep -Ei "fftw|libxc|gpaw-data|setups" || true
python -c "from gpaw.fftw import have_fftw; assert have_fftw(), 'GPAW built without FFTW'"
