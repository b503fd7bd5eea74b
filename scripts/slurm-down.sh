#!/usr/bin/env bash
# Stop the single-node SLURM started by scripts/slurm-up.sh: cancel jobs, then stop the daemons by the
# process ids in their pid files (TERM, KILL after 5 s).
set -u
scancel --user="$(id -un)" 2>/dev/null || true
for pf in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  if [ -s "$pf" ]; then
    pid=$(cat "$pf")
    kill "$pid" 2>/dev/null && echo "sent TERM to $pid ($pf)"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; echo "KILLed $pid"; }
  fi
done
rm -f /run/slurmd.pid /run/slurmctld.pid
