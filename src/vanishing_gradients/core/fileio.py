"""Writes that never leave a half-written file or folder where a finished one was, one writer at a time."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .errors import StageError


@contextmanager
def _only_writer(target: Path):
    """Hold `.<name>.lock` beside target for as long as this process writes it: a second writer (another
    Snakemake or DVC run, whichever tool started it) is refused at once rather than computing into the same
    place. The kernel releases the lock when its holder dies, however it dies, so a lock is never stale."""
    lock = os.open(target.parent / f".{target.name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(lock, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StageError(f"{target}: another run is writing it (process {owner}); wait for it to finish or stop "
                             f"it, then run again") from None
        os.ftruncate(lock, 0)
        os.pwrite(lock, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(lock)  # releases the lock


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Remove what killed writers left below `folder` (hidden `.<name>.partial-*` temporaries), each only while no
    writer of its output holds the lock; the removed paths."""
    removed = []
    for partial in sorted(Path(folder).glob("**/.*.partial-*")):
        target = partial.with_name(partial.name[1:].rsplit(".partial-", 1)[0])
        try:
            with _only_writer(target):
                if partial.exists():
                    shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
                    removed.append(partial)
        except (StageError, OSError):  # being written now, or not ours to remove
            continue
    return removed


@contextmanager
def atomic_path(target: str | Path, is_dir: bool = False):
    """Yield a temporary sibling path; on success it replaces `target`, on failure it is removed. One writer of
    `target` at a time (_only_writer)."""
    target = Path(target)
    prefix = f".{target.name}.partial-"
    with ExitStack() as stack:
        try:  # fails here, before any work, when the destination is not writable
            target.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_only_writer(target))
        except OSError as exc:
            raise StageError(f"{target}: cannot write there ({exc.strerror}); nothing was computed") from None
        for stale in target.parent.glob(prefix + "*"):  # left by a writer that died: it no longer holds the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        staged = tmp if is_dir else tmp / target.name
        yield staged
        if is_dir:
            old = target.with_name(f"{prefix}old")
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                target.rename(old)
            staged.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staged, target)


def write_json(path: str | Path, obj) -> None:
    """Atomically write stable, sorted JSON (byte-identical for equal objects)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")
