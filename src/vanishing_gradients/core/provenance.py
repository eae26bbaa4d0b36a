"""Where results came from: package versions, git commit, and how long each stage took."""
from __future__ import annotations

import platform
import resource
import socket
import subprocess
import time
from contextlib import contextmanager, suppress
from importlib import metadata

from .fileio import write_json

PACKAGES = ["vanishing-gradients", "jax", "jaxlib", "tensorflow-cpu", "tensorflow", "keras", "tensorboard", "numpy",
            "scipy", "scikit-learn", "pandas", "matplotlib", "snakemake", "dvc", "papermill", "nbconvert"]


def versions() -> dict[str, str]:
    """Installed versions of the packages the results depend on (absent ones left out)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        with suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def git_commit() -> str:
    """HEAD's commit, with '+dirty' when the work tree differs from it; 'unknown' outside git."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def say(stage: str, message: str) -> None:
    """A progress line in the stage's log: time, stage, message."""
    print(f"[{time.strftime('%H:%M:%S')} {stage}] {message}", flush=True)


def cpu_seconds() -> float:
    """CPU seconds (user and system) of this process and of its children that have ended (the report's kernel)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def timed(stage: str, path, **extra):
    """Record a stage's wall time and CPU time (and `extra`, updatable by the caller) in JSON at `path`. Jobs run
    side by side share the cores, so their wall times overlap; their CPU times add up to the machine's work."""
    start, cpu_start = time.time(), cpu_seconds()
    timing = {"stage": stage, "host": socket.gethostname(), **extra}
    yield timing
    timing["wall_s"] = round(time.time() - start, 3)
    timing["cpu_s"] = round(cpu_seconds() - cpu_start, 3)
    timing["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if path is not None:
        write_json(path, timing)
