"""Writes that never leave a half-written file or folder where a finished one was."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import StageError


@contextmanager
def atomic_path(target: str | Path, is_dir: bool = False):
    """Yield a temporary sibling path; on success it replaces `target`, on failure it is removed."""
    target = Path(target)
    prefix = f".{target.name}.partial-"
    try:  # fails here, before any work, when the destination is not writable
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(prefix + "*"):  # left by a run that was killed
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    except OSError as exc:
        raise StageError(f"{target}: cannot write there ({exc.strerror}); nothing was computed") from None
    staged = tmp if is_dir else tmp / target.name
    try:
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, obj) -> None:
    """Atomically write stable, sorted JSON (byte-identical for equal objects)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")
