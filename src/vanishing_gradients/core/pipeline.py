"""One pipeline run at a time in a folder, whichever tool runs it; a job stops when the run that launched it is gone.

Snakemake refuses a second Snakemake and DVC a second DVC, but neither knows the other: started together, both
would compute the same results. So a run names itself in one small file, `pipeline.lock` beside the manifests: the
tool and its process (with the process's start time, so that a reused process number is not mistaken for it).
Snakemake claims it when it starts work (the Snakefile's `onstart`), DVC with its first stage command; a run of
the other tool is then refused at once with the owner named. An owner whose process has ended owns nothing, so
the file is never stale. Each job learns its run from VGRAD_LAUNCHER=<tool>:<pid>, which both tools' commands set.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from .errors import StageError

LAUNCHER = "VGRAD_LAUNCHER"  # <tool>:<pid> of the pipeline run that started this command


def lock_path(manifests: str | Path) -> Path:
    """The file naming the pipeline run working in this folder, beside the manifests (core/manifests.py)."""
    return Path(manifests) / "pipeline.lock"


def _start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), or None if it has ended (a zombie, ended
    but not yet reaped, counts as ended). Without /proc: "?" while the process table has it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else fields[19]
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
    except OSError:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # it exists, under another user
        return "?"
    return "?"


def launcher() -> tuple[str, int] | None:
    """(tool, pid) of the run that launched this command, from VGRAD_LAUNCHER; None when run by hand."""
    tool, _, pid = os.environ.get(LAUNCHER, "").partition(":")
    return (tool, int(pid)) if tool and pid.isdigit() else None


def _alive(owner: dict) -> bool:
    if not {"tool", "pid", "start", "host"} <= owner.keys() or not isinstance(owner["pid"], int):
        return False  # not written by claim(): no owner
    if owner["host"] != socket.gethostname():
        return True  # a process on another machine (a cluster node): assume it runs
    start = _start_time(owner["pid"])
    return start is not None and start == owner["start"]


def _read(f) -> dict | None:
    """The owner a lock file names, if its process still runs."""
    f.seek(0)
    try:
        owner = json.loads(f.read())
    except ValueError:
        return None
    return owner if isinstance(owner, dict) and _alive(owner) else None


def owner(lock: str | Path) -> dict | None:
    """{tool, pid, start, host} of the pipeline run working in the folder of `lock`, or None."""
    try:
        with open(lock) as f:
            return _read(f)
    except OSError:
        return None


def claim(lock: str | Path, tool: str, pid: int) -> None:
    """Make the run (tool, pid) the folder's pipeline run, or refuse if another tool's run is working in it."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # claims are made one at a time; held for microseconds
        owner = _read(f)
        if owner is not None:
            if owner["tool"] != tool:
                raise StageError(f"a {owner['tool']} run (process {owner['pid']}) is working in this folder; wait "
                                 f"for it to finish or stop it, then run again (nothing was changed)")
            return  # this run, or another run of the same tool, which that tool keeps out itself
        f.truncate(0)
        json.dump({"tool": tool, "pid": pid, "start": _start_time(pid), "host": socket.gethostname()}, f)


def die_with_launcher() -> None:
    """Stop as soon as the launching run's process is gone, so that a killed Snakemake or DVC leaves no job running
    on to publish a result the next run cannot trust. What it was writing stays a hidden temporary that the next
    writer removes (core/fileio.py)."""
    found = launcher()
    if found is None:
        return
    _, pid = found

    def watch():
        while _start_time(pid) is not None:
            time.sleep(0.5)
        print(f"error: the run that started this job (process {pid}) is gone: stopping", file=sys.stderr, flush=True)
        os._exit(3)
    threading.Thread(target=watch, daemon=True).start()
