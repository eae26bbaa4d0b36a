"""The pipeline on a real one-node Slurm cluster through Snakemake's SLURM executor, run with the
README's own cluster commands; a job cancelled once is resubmitted; DVC records the results."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SUBPROCESS_ENV, copy_repo, tiny

pytestmark = pytest.mark.e2e
SCRIPTS = ROOT / "tests" / "slurm"


def _cluster_up() -> bool:
    """Whether a Slurm cluster answers here; without a configuration sinfo would retry for a minute first."""
    if not Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).exists():
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return done.returncode == 0 and "idle" in done.stdout


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running Slurm: the one already up, or a one-node cluster started for these tests."""
    if not (shutil.which("slurmctld") and shutil.which("slurmd") and shutil.which("munged")):
        pytest.skip("Slurm is not installed here (Debian: apt-get install slurm-wlm munge)")
    if shutil.which("sinfo") and _cluster_up():
        yield None
        return
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(SCRIPTS / "start_cluster.sh"), str(state)], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.skip(f"could not start a Slurm cluster: {started.stderr.strip()[-500:]}")
    yield state
    subprocess.run(["bash", str(SCRIPTS / "stop_cluster.sh")], capture_output=True)


def readme_cluster_commands() -> str:
    """The README's cluster block, word for word."""
    text = (ROOT / "README.md").read_text()
    return re.search(r"<!-- cluster-commands:.*?-->\n```bash\n(.*?)```", text, re.S).group(1)


def run(repo, *cmd, **kw):
    done = subprocess.run(list(cmd), cwd=repo, env=SUBPROCESS_ENV, capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_slurm_run_matches_local_survives_a_cancel_and_is_committed_to_dvc(slurm, tmp_path):
    repo = copy_repo(tmp_path)
    params = tiny(yaml.safe_load((repo / "params.yaml").read_text()), sweeps=False)
    params["studies"] = {"deep_tanh": params["studies"]["deep_tanh"]}  # one job of each stage on the cluster
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    run(repo, "git", "init", "-q")
    run(repo, sys.executable, "-m", "snakemake", "--cores", "2", "metrics")  # what the cluster's run is held to
    local = json.loads((repo / "results/metrics.json").read_text())
    shutil.rmtree(repo / "results")

    job = subprocess.Popen(["bash", "-c", readme_cluster_commands()], cwd=repo, env=SUBPROCESS_ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cancelled, deadline = None, time.time() + 120
    while cancelled is None and time.time() < deadline and job.poll() is None:
        queue = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True).stdout.split("\n")
        training = [line.split()[0] for line in queue if "train" in line]
        if training:
            cancelled = training[0]
            subprocess.run(["scancel", cancelled], check=True)
        time.sleep(0.3)
    output, _ = job.communicate(timeout=600)
    assert job.returncode == 0, output[-4000:]
    assert cancelled is not None, "no training job was seen in the queue"
    assert "submitted with SLURM jobid" in output and "Trying to restart job" in output
    assert json.loads((repo / "results/metrics.json").read_text()) == local

    run(repo, "dvc", "commit", "-f")  # results computed by Snakemake, recorded by DVC
    assert "Data and pipelines are up to date" in run(repo, "dvc", "status").stdout
