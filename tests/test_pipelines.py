"""Snakemake and DVC declare the same stages with the same outputs; DVC's runs depend on the events settings
Snakemake's RUN_EVENTS keeps; the Snakefile is lint-clean."""
import subprocess
import sys

import yaml
from dvc.repo import Repo

from conftest import LOCAL_ENV, ROOT
from vanishing_gradients.params import SCHEMA


def _snakemake(*args):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=ROOT, env=LOCAL_ENV, capture_output=True,
                          text=True)


def test_same_stages_and_outputs():
    summary = _snakemake("--summary", "--cores", "1")
    assert summary.returncode == 0, summary.stderr
    rows = [line.split("\t") for line in summary.stdout.strip().splitlines()[1:]]
    snakemake_outputs = {(rule, path) for path, _, rule, *_ in rows}
    with Repo(str(ROOT)) as repo:
        dvc_outputs = {(stage.name.split("@")[0], str(out.def_path)) for stage in repo.index.stages
                       for out in stage.outs}
    assert snakemake_outputs == dvc_outputs
    assert {rule for rule, _ in snakemake_outputs} == {"params", "data", "train", "gradients", "metrics", "report"}


def test_snakemake_lint_is_clean():
    lint = _snakemake("--lint")
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_runs_depend_on_every_events_setting_but_the_success_threshold():
    """dvc.yaml lists, for training and extraction, the events settings Snakemake's RUN_EVENTS keeps: every one
    the schema knows except success_accuracy, which only the metrics read."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in ("train", "gradients"):
        listed = {key.split(".", 1)[1] for key in stages[stage]["do"]["params"] if key.startswith("events")}
        assert listed == set(SCHEMA["properties"]["events"]["properties"]) - {"success_accuracy"}, stage
