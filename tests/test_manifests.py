"""Manifests of what each stage published (core/manifests.py), the pipeline run's claim on a folder
(core/pipeline.py) and the removal of killed writers' temporaries (core/fileio.py)."""
import fcntl
import hashlib
import json
import os
import subprocess
import sys

import pytest

from vanishing_gradients.core import fileio, manifests, pipeline
from vanishing_gradients.core.errors import StageError


@pytest.fixture
def chain(tmp_path, monkeypatch):
    """Three stages in tmp_path: a writes a.txt; b reads it and writes the folder b/; c reads b/ and writes c.txt."""
    monkeypatch.chdir(tmp_path)
    os.mkdir("b")
    for name, text in (("a.txt", "a"), ("b/1.txt", "b1"), ("b/2.txt", "b2"), ("c.txt", "c")):
        with open(name, "w") as f:
            f.write(text)
    manifests.write(".manifests/a.json", "a", None, outputs=["a.txt"], inputs=[])
    manifests.write(".manifests/b@x.json", "b", "x", outputs=["b"], inputs=["a.txt"])
    manifests.write(".manifests/c.json", "c", None, outputs=["c.txt"], inputs=["b"])
    return tmp_path


def test_a_manifest_lists_every_file_with_its_checksum(chain):
    listed = json.loads((chain / ".manifests" / "b@x.json").read_text())
    assert set(listed["outputs"]) == {"b/1.txt", "b/2.txt"} and set(listed["inputs"]) == {"a.txt"}
    assert listed["outputs"]["b/1.txt"]["size"] == 2
    assert listed["outputs"]["b/1.txt"]["sha256"] == hashlib.sha256(b"b1").hexdigest()
    assert (chain / ".manifests" / "last" / "b@x.json").read_text() == (chain / ".manifests" / "b@x.json").read_text()


def test_damage_is_found_and_a_new_time_stamp_alone_is_not(chain):
    assert manifests.problems(".manifests/b@x.json") == []
    os.utime("b/1.txt", ns=(1, 1))  # as after a checkout of the same content
    assert manifests.problems(".manifests/b@x.json") == []
    with open("b/2.txt", "w") as f:
        f.write("XX")  # same size, other content
    os.remove("a.txt")
    assert manifests.problems(".manifests/b@x.json") == ["b/2.txt has changed", "a.txt is missing (an input)"]
    (chain / ".manifests" / "c.json").write_text("{")
    assert manifests.problems(".manifests/c.json") == [".manifests/c.json is unreadable"]


def test_what_was_made_from_damaged_results_is_stale_too(chain):
    assert manifests.stale(".manifests") == {}
    os.remove("b/1.txt")
    stale = {path.name: reason for path, reason in manifests.stale(".manifests").items()}
    assert stale == {"b@x.json": "b/1.txt is missing", "c.json": "b/1.txt is missing (an input)"}


def test_a_stage_that_did_not_finish_makes_what_was_made_from_it_stale(chain):
    """Snakemake deleted b's manifest to run it, and b did not finish: b's last manifest says what it made, so what was
    made from those files (c) is redone with it, rather than b being skipped as an intermediate step."""
    os.remove(".manifests/b@x.json")
    stale = {path.name: reason for path, reason in manifests.stale(".manifests").items()}
    assert stale == {"c.json": "it was made from b/1.txt, which b@x.json (did not finish) no longer vouches for"}


def test_a_run_of_the_other_tool_is_refused_and_an_ended_one_owns_nothing(tmp_path):
    lock = tmp_path / "pipeline.lock"
    pipeline.claim(lock, "dvc", os.getpid())
    pipeline.claim(lock, "dvc", os.getpid())  # its next stage
    with pytest.raises(StageError, match=f"a dvc run \\(process {os.getpid()}\\) is working in this folder"):
        pipeline.claim(lock, "snakemake", 1)
    assert pipeline.owner(lock)["tool"] == "dvc"
    lock.unlink()
    subprocess.run([sys.executable, "-c", "import os; from vanishing_gradients.core import pipeline; "
                    f"pipeline.claim({str(lock)!r}, 'dvc', os.getpid())"], check=True)
    assert json.loads(lock.read_text())["tool"] == "dvc" and pipeline.owner(lock) is None  # it has ended
    pipeline.claim(lock, "snakemake", os.getpid())  # so it owns nothing: whoever comes next claims
    assert pipeline.owner(lock)["tool"] == "snakemake"
    lock.write_text('{"tool": "dvc"}')  # not written by claim: no owner
    assert pipeline.owner(lock) is None


def test_a_temporary_is_removed_only_when_its_writer_is_gone(tmp_path):
    partial = tmp_path / "results" / "runs" / ".study.partial-abc"
    partial.mkdir(parents=True)
    (partial / "events").write_text("half")
    with open(tmp_path / "results" / "runs" / ".study.lock", "a+") as held:  # its writer still runs
        fcntl.flock(held, fcntl.LOCK_EX)
        assert fileio.remove_leftovers(tmp_path / "results") == []
    assert fileio.remove_leftovers(tmp_path / "results") == [partial]
    assert not partial.exists()
