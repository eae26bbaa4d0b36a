import contextlib
import hashlib
import json
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


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core and one more (pyproject.toml caps them at 4). The end-to-end tests spend part
    of their time waiting on their pipelines' processes (start-up, locks, polling), which left a core idle; a third
    worker on two cores fills it (benchmarks/README.md)."""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(items):
    """Longest work first, so that the workers finish together: the end-to-end files (each a few minutes of
    pipeline runs), then the other files, those of most tests first; a file's tests keep their order."""
    files = {}
    for item in items:
        files.setdefault(item.path, []).append(item)
    ordered = sorted(files.values(), key=lambda tests: (not tests[0].get_closest_marker("e2e"), -len(tests)))
    items[:] = [item for tests in ordered for item in tests]


@pytest.fixture
def params():
    """The repository's params.yaml, as a fresh dict for each test to modify."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture(scope="module")
def data():
    """The circles of params.yaml's data section: {"train": (x, y), "test": (x, y)}."""
    from vanishing_gradients.core.data import arrays, make_dataset
    frame = make_dataset(yaml.safe_load((ROOT / "params.yaml").read_text())["data"])
    return {"train": arrays(frame, "train"), "test": arrays(frame, "test")}


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
    params["studies"] = {name: {k: v for k, v in studies[name].items() if k != "seeds"}  # train.seeds: `seeds`
                         for name in ("shallow_tanh", "deep_tanh", "deep_relu")}
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


# End-to-end helpers: a tiny study in a temporary copy, run by Snakemake and DVC
OUTPUT_DIRS = ("data", "results", "reports")


def run(cwd, *cmd, check=True):
    done = subprocess.run(list(cmd), cwd=cwd, env=LOCAL_ENV, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def repro(repo: Path, *targets: str) -> list[str]:
    """`dvc repro` in repo (of `targets` and what they need, or of everything); the stages it ran."""
    return re.findall(r"Running stage '([^']+)'", run(repo, "dvc", "repro", *targets).stdout)


def snapshot(repo: Path) -> dict[str, str]:
    """Hash of every file under the output folders."""
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in OUTPUT_DIRS for p in sorted((repo / d).rglob("*")) if p.is_file()}


def clear_outputs(repo: Path) -> None:
    """Delete every output, keeping the .gitignore files DVC keeps in git (and the folders holding them)."""
    for d in OUTPUT_DIRS:
        for p in sorted((repo / d).rglob("*"), reverse=True):
            if p.is_file() and p.name != ".gitignore":
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()


@contextlib.contextmanager
def kept(repo: Path, *names: str):
    """The files named (and every file under the folders named) put back afterwards as they were, bytes and time
    stamps, and any file new there removed: both tools then find the state before, with nothing to redo."""
    def files():
        return {p for name in names for p in ([repo / name] if (repo / name).is_file() else (repo / name).rglob("*"))
                if p.is_file()}
    before = {p: (p.read_bytes(), p.stat()) for p in files()}
    try:
        yield
    finally:
        for p in files() - before.keys():
            p.unlink()
        for p, (content, stat) in before.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
            os.utime(p, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def write_params(repo: Path, params: dict) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def commit(repo: Path, message: str, *options: str) -> None:
    """Everything in `repo`'s working tree committed by a test identity."""
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message, *options)


def tiny_repo(dest: Path, sweeps: bool = True) -> Path:
    """A copy of the repository with the tiny study (with or without its sweeps) as a git repo."""
    repo = copy_repo(dest)
    write_params(repo, tiny(yaml.safe_load((repo / "params.yaml").read_text()), sweeps=sweeps))
    run(repo, "git", "init", "-q")
    commit(repo, "tiny study")
    return repo


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """The tiny study's repository, shared by the end-to-end tests of a test file (one per test worker:
    pyproject.toml runs each file on one worker)."""
    return tiny_repo(tmp_path_factory.mktemp("study"))


def in_sync(repo: Path) -> None:
    """Both tools up to date, whatever the tests before left (a checkout gives files new time stamps): Snakemake
    brings its outputs up to date and DVC records them, as after a cluster run; git commits the record."""
    run(repo, sys.executable, "-m", "snakemake", "--cores", "2")
    run(repo, "dvc", "commit", "-f")
    commit(repo, "in sync", "--allow-empty")
    assert set(planned_jobs(repo)) - {"all"} == set()
    assert json.loads(run(repo, "dvc", "status", "--json").stdout) == {}


def trainers(repo: Path) -> list[int]:
    """Processes training in `repo` (`vgrad train`, whichever tool started it)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        with contextlib.suppress(psutil.Error):
            cmd = proc.info["cmdline"] or []
            if "train" in cmd[1:] and cmd[cmd.index("train") - 1].endswith(("vgrad", "vanishing_gradients")) \
                    and proc.info["cwd"] == str(repo):
                found.append(proc.pid)
    return found
