#!/usr/bin/env bash
# Stop the test cluster that start_cluster.sh started (its daemons are the only Slurm daemons here), and
# remove the configuration it wrote: left in place, it has every Slurm command here (sinfo, and the scontrol
# that Snakemake's SLURM plugin runs at each start) wait about 10 s for a controller that is gone.
conf=/etc/slurm/slurm.conf
scontrol shutdown 2>/dev/null || true
for _ in $(seq 20); do
    pgrep -x slurmctld > /dev/null || pgrep -x slurmd > /dev/null || break
    sleep 0.5
done
pkill -x slurmctld; pkill -x slurmd
if grep -qx "# vanishing-gradients test cluster" "$conf" 2>/dev/null; then
    rm -f "$conf" /etc/slurm/gres.conf
fi
exit 0
