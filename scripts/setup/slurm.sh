#!/usr/bin/env bash
# Test set-up step: a single-node SLURM on localhost for the batch-job tests (tests/test_slurm.py,
# tests/test_submit.py, tests/test_jobqueue.py). Idempotent; needs root.
set -euo pipefail
bash "$(dirname "$0")/../slurm-up.sh"
