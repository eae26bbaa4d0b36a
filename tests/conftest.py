import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# What subprocesses (snakemake, dvc, vgrad) run in: this virtual environment's commands first
SUBPROCESS_ENV = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
# ...and, for local runs, a Slurm configuration naming no cluster: see the file for why
LOCAL_ENV = {**SUBPROCESS_ENV, "SLURM_CONF": str(ROOT / "tests" / "slurm" / "no_cluster.conf")}


@pytest.fixture
def params():
    """The repository's params.yaml, as a fresh dict for each test to modify."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def spec_for(params: dict, study: str, depth: int | None = None):
    """The model of a one-variant study (or of its config at another depth)."""
    from vanishing_gradients.core.models import ModelSpec
    from vanishing_gradients.core.study import variants
    spec = variants(params, study)[0].spec
    return spec if depth is None else ModelSpec(depth, spec.width, spec.activation, spec.hidden_init, spec.output_init)


def tiny(params: dict, epochs: int = 3, seeds=(1, 2), sweeps: bool = True) -> dict:
    """A few epochs and seeds, the headline studies and (with `sweeps`) one small sweep of each kind."""
    params["train"]["epochs"] = epochs
    params["train"]["seeds"] = list(seeds)
    params["events"].update(stats_freq=1, histogram_freq=2)
    studies = params["studies"]
    params["studies"] = {name: studies[name] for name in ("shallow_tanh", "deep_tanh", "deep_relu")}
    if sweeps:
        params["studies"]["depth_relu_he"] = {**studies["depth_relu_he"], "depths": {"from": 1, "to": 3}}
        params["studies"]["breadth"] = {**studies["breadth"], "depths": [1, 2], "widths": [5, 7], "seeds": 2}
    return params


def copy_repo(dest: Path) -> Path:
    """A copy of the repository's tracked and new files (no results, no venv), as a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def planned_jobs(repo: Path) -> dict[str, int]:
    """Jobs per rule that `snakemake -n` plans in repo (its summary table, without the total)."""
    dry = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "-n", "--quiet", "rules"], cwd=repo,
                         env=LOCAL_ENV, capture_output=True, text=True, check=True).stdout
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", dry, re.M) if rule != "total"}
