#!/usr/bin/env bash
# Stop the test cluster that start_cluster.sh started (its daemons are the only Slurm daemons here).
scontrol shutdown 2>/dev/null || true
for _ in $(seq 20); do
    pgrep -x slurmctld > /dev/null || pgrep -x slurmd > /dev/null || exit 0
    sleep 0.5
done
pkill -x slurmctld; pkill -x slurmd
exit 0
