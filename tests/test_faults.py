"""Faults: a killed training job, damaged event files and an unwritable destination never yield
silently wrong or half-written results."""
import glob
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import LOCAL_ENV, copy_repo, planned_jobs, tiny, trainers
from vanishing_gradients import cli
from vanishing_gradients.core import manifests


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


VARIANT = "tanh_uniform-d05-w05"  # the deep_tanh study's one variant


@pytest.fixture
def study(tmp_path, params):
    """A params file (3 epochs, 2 seeds), the dataset, and one finished deep_tanh run."""
    params = tiny(params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = ["--params", str(tmp_path / "params.yaml")]
    assert cli.main(["data", *args, "--out-csv", str(tmp_path / "circles.csv"),
                     "--out-plot", str(tmp_path / "circles.png")]) == 0
    assert cli.main(["train", *args, "--study", "deep_tanh", "--data", str(tmp_path / "circles.csv"),
                     "--out", str(tmp_path / "runs" / "deep_tanh")]) == 0
    return tmp_path, args, params


def _extract(study_dir, args):
    return cli.main(["gradients", *args, "--study", "deep_tanh", "--runs", str(study_dir / "runs/deep_tanh"),
                     "--out", str(study_dir / "tables/deep_tanh")])


@pytest.mark.parametrize("run", ["seed_1", "seed_2", "."])
@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_damaged_event_file_fails_extraction_naming_the_file(study, capsys, damage, run):
    """Damage the detail seed's, a plain seed's or the variant's (mean over seeds) event file."""
    study_dir, args, _ = study
    folder = study_dir / "runs/deep_tanh" / VARIANT / run
    event_file = Path(glob.glob(str(folder / "events.out.tfevents.*"))[0])
    data = event_file.read_bytes()
    if damage == "truncated":
        event_file.write_bytes(data[: len(data) * 2 // 3])
    else:
        cut = len(data) // 2
        event_file.write_bytes(data[:cut] + b"\x00not a record\x00" * 20 + data[cut + 300:])
    assert _extract(study_dir, args) == 2
    message = capsys.readouterr().err
    assert str(folder.resolve()).removesuffix("/.") in message and "incomplete or corrupted event file" in message
    assert not (study_dir / "tables").exists()


def test_intact_event_files_extract(study):
    study_dir, args, _ = study
    assert _extract(study_dir, args) == 0
    for table in ("variants", "seeds", "detail", "histograms"):
        assert (study_dir / f"tables/deep_tanh/{table}.parquet").exists()


def test_unwritable_destination_fails_before_training(study, capsys):
    study_dir, args, _ = study
    (study_dir / "blocker").write_text("a file where a folder should be")
    start = time.time()
    status = cli.main(["train", *args, "--study", "deep_relu", "--data", str(study_dir / "circles.csv"),
                       "--out", str(study_dir / "blocker" / "deep_relu")])
    assert status == 2 and "cannot write there" in capsys.readouterr().err
    assert time.time() - start < 5  # refused up front, not after training


def test_killed_training_leaves_the_previous_result_and_reruns_cleanly(study, capsys):
    """A second trainer of the same study while one runs (another tool's, say) is refused at once; the running one,
    killed, leaves the finished run untouched; the next run clears its leftover and completes."""
    study_dir, args, params = study
    finished = study_dir / "runs" / "deep_tanh"
    before = _tree_hash(finished)
    params["train"].update(engine="keras", epochs=400)  # slow enough to be killed mid-way
    slow = study_dir / "slow.yaml"
    slow.write_text(yaml.safe_dump(params))
    cmd = [sys.executable, "-m", "vanishing_gradients", "train", "--params", str(slow), "--study",
           "deep_tanh", "--data", str(study_dir / "circles.csv"), "--out", str(finished)]
    job = subprocess.Popen(cmd, env=LOCAL_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    partial = study_dir / "runs"
    assert "models x 400 epochs" in job.stdout.readline()  # training has started, into a hidden temporary
    second = cli.main(["train", *args, "--study", "deep_tanh", "--data", str(study_dir / "circles.csv"),
                       "--out", str(finished)])
    assert second == 2 and f"another run is writing it (process {job.pid})" in capsys.readouterr().err
    time.sleep(3.0)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert _tree_hash(finished) == before  # the finished run is untouched
    assert glob.glob(str(partial / ".deep_tanh.partial-*"))  # the partial one is only a hidden temporary
    assert _extract(study_dir, args) == 0  # and extraction never sees it
    # the next run clears the leftover and completes
    assert cli.main(["train", *args, "--study", "deep_tanh", "--data", str(study_dir / "circles.csv"),
                     "--out", str(finished)]) == 0
    assert not glob.glob(str(partial / ".deep_tanh.partial-*"))


def readme_recovery_commands() -> str:
    """The README's recovery block, word for word."""
    from conftest import ROOT
    text = (ROOT / "README.md").read_text()
    return re.search(r"<!-- recovery-commands:.*?-->\n```bash\n(.*?)```", text, re.S).group(1)


def test_killed_pipeline_reruns_only_what_is_missing(tmp_path, params):
    """SIGKILL Snakemake alone (not its jobs) during training: its trainers stop by themselves, and the README's
    recovery commands redo only the unfinished jobs."""
    repo = copy_repo(tmp_path)
    # long enough that a trainer is still making or running its program when Snakemake is killed
    params = tiny(params, epochs=1000, seeds=[1], sweeps=False)
    params["events"].update(stats_freq=100, histogram_freq=500)  # what this checks needs no statistics per epoch
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    runs = repo / "results" / "runs"
    job = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=repo, env=LOCAL_ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while not (runs.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in runs.iterdir())
                   and glob.glob(str(runs / ".*.partial-*"))):
            assert time.time() < deadline and job.poll() is None, "never saw one run finished and one in progress"
            time.sleep(0.2)
    except AssertionError:
        os.killpg(job.pid, signal.SIGKILL)  # Snakemake and its jobs: none left training after a failed test
        raise
    assert trainers(repo), "no trainer running"
    os.kill(job.pid, signal.SIGKILL)  # Snakemake alone: its jobs are left to themselves
    job.wait()
    deadline = time.time() + 30
    while trainers(repo):  # each stops once it sees Snakemake gone (VGRAD_LAUNCHER, core/pipeline.py)
        assert time.time() < deadline, "trainers kept running after Snakemake was killed"
        time.sleep(0.2)
    finished = {p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")}
    # the stages done before the kill (data always: training reads it; params when Snakemake chose it before the
    # train jobs, which have priority) are kept
    done = {rule for rule in ("data", "params") if manifests.path(repo / ".manifests", rule).exists()}
    counts = planned_jobs(repo)
    assert "data" in done and not done & counts.keys(), (done, counts)
    assert counts["train"] == 3 - len(finished), counts  # only the unfinished studies
    # a killed Snakemake leaves its lock and the jobs it was running marked incomplete: the README says how
    rerun = subprocess.run(["bash", "-c", readme_recovery_commands()], cwd=repo, env=LOCAL_ENV,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads((repo / "results" / "metrics.json").read_text())["studies"].keys() == set(params["studies"])
