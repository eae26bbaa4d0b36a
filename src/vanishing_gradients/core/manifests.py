"""Manifests: what each stage last published, and from what, file by file with sizes, times and checksums.

Snakemake deletes a job's declared outputs before it starts the job, so a failed job would lose the previous
results. Its rules therefore declare these small manifests as their outputs; the results themselves are replaced
by the stage only when it succeeds (core/fileio.py). A manifest also tells when its results, or what they were
made from, were damaged since (a file deleted, truncated or overwritten): the Snakefile then withdraws it, and
with it every manifest of what was made from the damaged files, so that the next run rebuilds what is needed
(workflow/rules/common.smk). Every stage writes its manifest under DVC too, so either tool can take over.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import suppress
from pathlib import Path

from .fileio import write_json


def path(folder: str | Path, stage: str, study: str | None = None) -> Path:
    """Where the manifest of `stage` (of one study, for the per-study stages) is kept: named as DVC names the stage."""
    return Path(folder) / (f"{stage}@{study}.json" if study is not None else f"{stage}.json")


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(path: Path) -> list[Path]:
    """The files a path consists of: itself, or every file below the folder (sorted), hidden ones (a writer's
    lock or temporary, core/fileio.py) left out."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def manifest(paths: list[str | Path]) -> dict[str, dict]:
    """{file: {size, mtime_ns, sha256}} for every file of the paths, named as given (relative to the run's folder)."""
    entries = {}
    for path in paths:
        for file in _files(Path(path)):
            stat = file.stat()
            entries[str(file)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(file)}
    return entries


def _last(manifest_path: Path) -> Path:
    """A copy of the manifest that Snakemake does not know of, kept when Snakemake deletes the manifest itself."""
    return manifest_path.parent / "last" / manifest_path.name


def write(target: str | Path, stage: str, study: str | None, outputs: list, inputs: list) -> None:
    """Write the manifest of what `stage` has just published (after its outputs are in place) and of what it read."""
    content = {"stage": stage, "study": study, "outputs": manifest(outputs), "inputs": manifest(inputs)}
    write_json(_last(Path(target)), content)
    write_json(target, content)


def _read(manifest_path: Path) -> tuple[dict, dict]:
    listed = json.loads(manifest_path.read_text())
    return dict(listed["outputs"]), dict(listed["inputs"])


def _differences(files: dict[str, dict]) -> list[str]:
    found = []
    for name, expected in files.items():
        try:
            stat = os.stat(name)
        except OSError:
            found.append(f"{name} is missing")
            continue
        if stat.st_size != expected["size"] or (stat.st_mtime_ns != expected["mtime_ns"]
                                                and _sha256(Path(name)) != expected["sha256"]):
            found.append(f"{name} has changed")
    return found


def problems(manifest_path: str | Path) -> list[str]:
    """How the files a manifest lists differ from it now, outputs first: missing, or different in size or content
    (a file whose time stamp alone changed, as after `dvc checkout`, is hashed and passes if its content is the
    same). Empty when the manifest still vouches for its stage's results."""
    try:
        outputs, inputs = _read(Path(manifest_path))
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{manifest_path} is unreadable"]
    return _differences(outputs) + [f"{found} (an input)" for found in _differences(inputs)]


def stale(folder: str | Path) -> dict[Path, str]:
    """The manifests in `folder` that no longer vouch for their results, each with the reason: its files were
    damaged (problems()), or it was made from files that are being remade: the outputs of a stage whose manifest
    is gone (Snakemake deleted it to run the stage, which did not finish) or of another stale manifest."""
    folder = Path(folder)
    present = sorted(folder.glob("*.json"))
    remade: dict[str, str] = {}  # file -> the manifest that no longer vouches for it
    for last in sorted((folder / "last").glob("*.json")):
        if not (folder / last.name).exists():
            try:
                remade |= dict.fromkeys(_read(last)[0], f"{last.name} (did not finish)")
            except (OSError, ValueError, KeyError, TypeError):
                continue
    found = {}
    for listed in present:
        damage = problems(listed)
        if damage:
            found[listed] = damage[0] + (f" (and {len(damage) - 1} more)" if len(damage) > 1 else "")
    while True:  # what was made from remade files is remade too
        for listed in found:
            with suppress(OSError, ValueError, KeyError, TypeError):
                remade |= dict.fromkeys(_read(listed)[0], listed.name)
        more = {}
        for listed in present:
            if listed not in found:
                with suppress(OSError, ValueError, KeyError, TypeError):
                    inputs = sorted(set(_read(listed)[1]) & remade.keys())
                    if inputs:
                        more[listed] = f"it was made from {inputs[0]}, which {remade[inputs[0]]} no longer vouches for"
        if not more:
            return found
        found |= more
