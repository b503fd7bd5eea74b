#!/usr/bin/env bash
# Start a single-node SLURM "cluster" on localhost for tansaku's tests and CI (Debian, run as root,
# no systemd). Installs slurm-wlm and munge if missing. Idempotent: when the local cluster already
# answers (`sinfo` shows the node), it only prints it. Stop it with scripts/slurm-down.sh.
#
#   bash scripts/slurm-up.sh            # node with all CPUs of this machine, partition "debug"
#   SLURM_CPUS=2 bash scripts/slurm-up.sh
#
# Adapted from the reference scripts in the development environment (shared/hpc/slurm-up.sh):
# - no accounting database: `sacct` does not work; use `squeue` and `scontrol -o show job`;
# - the host name differs from the node name, hence `slurmd -N localhost`;
# - RealMemory is set because dask-jobqueue always passes `--mem`; DefMemPerCPU keeps a job without
#   --mem from taking the whole node memory (CR_Core_Memory would then run one job at a time).
set -euo pipefail
T0=$(date +%s.%N)

if command -v sinfo >/dev/null && [ -s /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null \
   && sinfo -h -n localhost -o %T 2>/dev/null | grep -Eq 'idle|mix|alloc'; then
  sinfo
  echo "slurm already up"
  exit 0
fi

# 1. packages (no-op if installed; ~11 s on a fresh machine after apt-get update)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# 2. munge (the Debian package creates /etc/munge/munge.key; make one if it is missing)
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
[ -s /etc/munge/munge.key ] || { mungekey --create --force; chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key; }
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged        # daemonizes; pid in /run/munge/munged.pid
fi
for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done

# 3. configuration: one node (localhost) with this machine's CPUs and memory less 1 GiB
CPUS=${SLURM_CPUS:-$(nproc)}
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
MEM=$(( MEM - 1024 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SlurmdTimeout=30
MinJobAge=600
DefMemPerCPU=1024
KillWait=10
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

# 4. daemons (both daemonize and write the pid files above)
/usr/sbin/slurmctld -i            # -i: ignore old state from a previous run
/usr/sbin/slurmd -N localhost     # -N: the node name differs from `hostname`

# 5. wait until the node is idle (fail loudly otherwise)
st=""
for _ in $(seq 150); do
  st=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
  [ "$st" = "idle" ] && break
  sleep 0.2
done
sinfo
if [ "$st" != "idle" ]; then
  echo "slurm-up: node not idle after 30 s (state: '${st}'); see /var/log/slurm/" >&2
  exit 1
fi
T1=$(date +%s.%N)
awk -v a="$T0" -v b="$T1" 'BEGIN { printf "slurm up in %.1f s\n", b - a }'
