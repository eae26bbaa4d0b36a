"""The train stage's CPU programs kept on disk as exported modules (jax.export), so that a job making a program
this code has made before skips tracing and lowering it.

JAX's own disk cache (program.py) keeps compiled programs, but finds one by its lowered module's hash: every job
still traces and lowers `_training` first, most of the time it takes to make a program whose compiled code is
cached. Here the module itself is kept, found by what makes it: the package's source, JAX's version, the static
arguments and the arguments' shapes. Any edit to the package starts afresh; code that patches the package at run
time must not use the store (program.train_replicas's `store`). A module read back is compiled (or read from JAX's
cache) to the same code as one traced anew: the numbers are the same bit for bit (tests/test_stored.py).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from functools import cache
from pathlib import Path

import jax
import numpy as np
from jax import export

MAX_BYTES = 1 << 28  # beyond this, the modules least recently used are deleted
STALE_S = 3600  # a temporary file this old was left by a killed writer (writing one takes well under a second)
PACKAGE = Path(__file__).resolve().parents[2]  # src/vanishing_gradients
_loaded: dict[tuple, jax.stages.Wrapped] = {}  # (key, XLA options) -> the jitted call of its module, in this process


@cache
def source_digest() -> str:
    """A hash of every source file of the package (what a program is traced from)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file()):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def key(static: tuple, args: tuple) -> str:
    """What a program's module depends on: the package's source, JAX and numpy, the static arguments and the
    arguments' tree, shapes and dtypes (not their values, nor the device they are on)."""
    leaves, tree = jax.tree.flatten(args)
    parts = [source_digest(), jax.__version__, np.__version__, str(jax.config.jax_enable_x64),
             str(jax.config.jax_default_matmul_precision), repr(static), str(tree),
             *(str(jax.typeof(leaf)) for leaf in leaves)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _read(path: Path) -> export.Exported | None:
    try:
        exported = export.deserialize(bytearray(path.read_bytes()))
    except Exception:  # absent, or left damaged by a killed writer: made again
        return None
    with contextlib.suppress(FileNotFoundError):  # another job may have just dropped it from the store
        os.utime(path)  # recently used
    return exported


def _write(path: Path, exported: export.Exported) -> None:
    """Atomically (jobs side by side may write the same key), then the least recently used beyond MAX_BYTES go, and
    so do the temporary files that killed writers left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".partial-", delete=False) as tmp:
        tmp.write(exported.serialize())
    os.replace(tmp.name, path)
    total = 0
    for _, size, old in sorted(_stats(path.parent), reverse=True):  # the most recently used first
        total += size
        if total > MAX_BYTES:
            old.unlink(missing_ok=True)
    for written, _, partial in _stats(path.parent, ".partial-*"):
        if time.time() - written > STALE_S:
            partial.unlink(missing_ok=True)


def _stats(folder: Path, pattern: str = "*.jax") -> list[tuple[float, int, Path]]:
    """(last use, size, path) of each stored module (or other files matching `pattern`); one another job deleted
    meanwhile is left out."""
    found = []
    for path in folder.glob(pattern):
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            found.append((stat.st_mtime, stat.st_size, path))
    return found


def program(jitted: jax.stages.Wrapped, static: tuple, args: tuple, options: dict | None,
            folder: str) -> jax.stages.Wrapped:
    """The jitted call, compiled for the CPU with XLA `options`, of `jitted`'s module for `static` arguments and
    arguments shaped as `args`: read from `folder` when it holds one, else exported there now."""
    name = key(static, args)
    if (name, repr(options)) not in _loaded:
        path = Path(folder) / f"{name}.jax"
        exported = _read(path)
        if exported is None:
            exported = export.export(jitted, platforms=["cpu"])(*static, *args)
            _write(path, exported)
        _loaded[name, repr(options)] = jax.jit(exported.call, compiler_options=options)
    return _loaded[name, repr(options)]
