#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the tests: munged, slurmctld and slurmd on localhost,
# one partition `debug`, one (declared) GPU so GPU requests schedule, no accounting storage.
# Usage: start_cluster.sh DIR   (state and logs in DIR)
# The configuration goes to /etc/slurm, where job steps look for it; a configuration there that this
# script did not write is left alone, and the script fails instead.
set -euo pipefail
dir=$(realpath "$1"); host=$(hostname -s)
conf=/etc/slurm/slurm.conf marker="# vanishing-gradients test cluster"
if [ -e "$conf" ] && ! grep -qx "$marker" "$conf"; then
    echo "$conf exists and is not the test cluster's: not touching it" >&2
    exit 1
fi
mkdir -p "$dir"/{state,slurmd,log} /etc/slurm
cat > "$conf" <<CONF
$marker
ClusterName=vgtest
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmdSpoolDir=$dir/slurmd
StateSaveLocation=$dir/state
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
GresTypes=gpu
NodeName=$host CPUs=$(nproc) RealMemory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 )) Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=$host Name=gpu Count=1 File=/dev/null" > /etc/slurm/gres.conf
if ! pgrep -x munged > /dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    [ -s /etc/munge/munge.key ] || (umask 077 && dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null)
    munged --force
fi
slurmctld
slurmd
for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -q idle; then echo "Slurm up (state and logs in $dir)"; exit 0; fi
    sleep 1
done
echo "Slurm did not come up; logs in $dir/log" >&2
exit 1
