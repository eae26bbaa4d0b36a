"""Under either tool: a failed or killed job leaves the previous results as they were, damaged results are
rebuilt by a plain run, one pipeline run at a time works in a folder, and no study name reaches a shell. On the
tiny study without its sweeps, in a temporary copy these tests share."""
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import LOCAL_ENV, in_sync, planned_jobs, run, snapshot, tiny_repo, trainers, write_params
from vanishing_gradients.core import manifests

pytestmark = pytest.mark.e2e
TOOLS = {"snakemake": [sys.executable, "-m", "snakemake", "--cores", "1"], "dvc": ["dvc", "repro"]}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The tiny study without its sweeps (three studies): what these tests check needs stages and studies, not
    depths, and each of their runs is two studies cheaper."""
    return tiny_repo(tmp_path_factory.mktemp("recovery"), sweeps=False)


def published(repo: Path) -> dict[str, str]:
    """snapshot() of what a run publishes: without the hidden temporaries a killed writer leaves behind."""
    return {name: digest for name, digest in snapshot(repo).items()
            if not any(part.startswith(".") and part != ".gitignore" for part in Path(name).parts)}


def vouched(repo: Path, leftovers: bool = False) -> None:
    """Every stage's manifest still vouches for its results, and (unless `leftovers`) no temporary is left."""
    assert len(list((repo / ".manifests").glob("*.json"))) == 2 + 2 * 3 + 2  # params, data, 3 studies, metrics, report
    with contextlib.chdir(repo):  # manifests name files relative to the pipeline's folder
        assert manifests.stale(".manifests") == {}
    assert leftovers or not list(repo.glob("*/**/.*.partial-*"))


def _output(repo: Path, done) -> str:
    return done.stdout + done.stderr + "".join(p.read_text() for p in (repo / "logs").rglob("*.log"))


@pytest.mark.parametrize("tool", TOOLS)
def test_a_failed_stage_keeps_the_previous_results(repo, tool):
    """The metrics stage fails (another writer holds its output) after Snakemake has deleted the job's declared
    output: results/metrics.json, the plots, the tables and the runs are byte-identical; the next run completes."""
    in_sync(repo)
    before = published(repo)
    forced = {"snakemake": [*TOOLS["snakemake"], "--forcerun", "metrics"],
              "dvc": ["dvc", "repro", "-f", "-s", "metrics"]}
    with open(repo / "results" / ".metrics.json.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = run(repo, *forced[tool], check=False)
    assert done.returncode != 0 and "another run is writing it" in _output(repo, done)
    assert published(repo) == before
    run(repo, *TOOLS[tool])
    assert published(repo)["results/metrics.json"] == before["results/metrics.json"]
    vouched(repo)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_killed_trainer_keeps_the_previous_results(repo, tool):
    """SIGKILL a trainer while it writes: the study's previous run and everything else are byte-identical (what it
    was writing is a hidden temporary); the next run completes. Snakemake's removes the temporary; under DVC, which
    has nothing to redo, it stays until that study is trained again (test_faults.py) or Snakemake runs."""
    in_sync(repo)
    before = published(repo)
    forced = {"snakemake": [*TOOLS["snakemake"], "--forcerun=train"],
              "dvc": ["dvc", "repro", "-f", "-s", "train@deep_tanh"]}
    job = subprocess.Popen(forced[tool], cwd=repo, env=LOCAL_ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((repo / "results" / "runs").glob(".*.partial-*")):  # a trainer is writing
        assert time.time() < deadline and job.poll() is None, "never saw a trainer writing"
        time.sleep(0.02)
    for pid in trainers(repo):
        os.kill(pid, signal.SIGKILL)
    assert job.wait(timeout=120) != 0
    assert published(repo) == before
    run(repo, *TOOLS[tool])
    vouched(repo, leftovers=tool == "dvc")


@pytest.mark.parametrize("tool", TOOLS)
def test_damaged_results_are_rebuilt_by_a_plain_run(repo, tool):
    """One event file of a study deleted and another truncated: the next plain run rebuilds that study (and what is
    made from it), nothing else."""
    in_sync(repo)
    deleted, truncated = sorted((repo / "results" / "runs" / "deep_relu").rglob("events.out.tfevents.*"))[:2]
    deleted.unlink()
    truncated.write_bytes(truncated.read_bytes()[:100])
    if tool == "snakemake":
        assert planned_jobs(repo) == {"train": 1, "gradients": 1, "metrics": 1, "report": 1, "all": 1}
    else:
        assert "train@deep_relu" in json.loads(run(repo, "dvc", "status", "--json").stdout)
    run(repo, *TOOLS[tool])
    assert list(deleted.parent.glob("events.out.tfevents.*"))
    vouched(repo)


def test_snakemake_and_dvc_started_together_one_refuses(repo):
    """Both started at once with work to do (a new success threshold: the metrics and the report): one refuses at
    once, naming the other, and ran no stage; the other completes; no temporary is left and every manifest vouches
    for its results."""
    in_sync(repo)
    good = (repo / "params.yaml").read_text()
    params = yaml.safe_load(good)
    params["events"]["success_accuracy"] = 0.55
    write_params(repo, params)
    try:
        jobs = {tool: subprocess.Popen(cmd, cwd=repo, env=LOCAL_ENV, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True) for tool, cmd in TOOLS.items()}
        outputs = {tool: job.communicate(timeout=600)[0] for tool, job in jobs.items()}
        status = {tool: job.returncode for tool, job in jobs.items()}
        assert sorted(status.values())[0] == 0 and sorted(status.values())[1] != 0, (status, outputs)
        loser = next(tool for tool, code in status.items() if code != 0)
        winner = next(tool for tool in TOOLS if tool != loser)
        assert f"a {winner} run (process {jobs[winner].pid}" in outputs[loser], outputs[loser]
        if loser == "dvc":
            assert outputs["dvc"].count("Running stage") == 1, outputs["dvc"]  # refused at its first stage
        else:
            assert "Finished jobid" not in outputs["snakemake"], outputs["snakemake"]  # refused before any job
        vouched(repo)
    finally:
        (repo / "params.yaml").write_text(good)


def test_a_study_name_never_reaches_a_shell(repo):
    """A study named like a shell command is refused by name under both tools, and nothing runs it (DVC hands
    the name over through DVC_STAGE; Snakemake validates params.yaml before any job)."""
    good = (repo / "params.yaml").read_text()
    params = yaml.safe_load(good)
    hostile = "x; touch INJECTED; echo"
    params["studies"][hostile] = params["studies"]["deep_relu"]
    write_params(repo, params)
    try:
        for cmd in (["dvc", "repro", "-s", f"train@{hostile}"], [*TOOLS["snakemake"], "-n"]):
            done = run(repo, *cmd, check=False)
            assert done.returncode != 0 and "studies" in done.stdout + done.stderr, done.stdout + done.stderr
            assert not (repo / "INJECTED").exists()
    finally:
        (repo / "params.yaml").write_text(good)
