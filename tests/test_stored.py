"""The train stage's store of exported modules (train/jax/stored.py): a module read back trains bit for bit as one
traced anew, a damaged one is made again, the key follows what makes a module, and the store stays bounded."""
import os
import time

import jax
import numpy as np
import pytest

from conftest import spec_for
from vanishing_gradients.train.jax import program as je
from vanishing_gradients.train.jax import stored

SGD = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}
CFG = je.Training("tanh", "sgd", 3, 32, stats_freq=1, histogram_freq=2)


@pytest.fixture
def fresh(monkeypatch):
    """No module loaded in this process yet: each run reads its store or exports."""
    monkeypatch.setattr(stored, "_loaded", {})


def _train(params, data, depths, store):
    specs = [spec_for(params, "deep_tanh", d) for d in depths]
    return je.train_replicas(CFG, specs, list(range(1, len(depths) + 1)), [SGD] * len(depths), data, detail=[0],
                             store=store)


def _never_export(*_, **__):
    raise AssertionError("exported again: the stored module was not read")


@pytest.mark.parametrize("depths", [[3, 1, 2], [2, 2]], ids=["mixed depths, narrow form", "one depth"])
def test_a_stored_module_trains_bit_for_bit_as_one_traced_anew(params, data, tmp_path, fresh, monkeypatch, depths):
    traced = _train(params, data, depths, store="")
    exported = _train(params, data, depths, store=str(tmp_path))
    assert len(list(tmp_path.glob("*.jax"))) == 1
    monkeypatch.setattr(stored, "_loaded", {})  # another process: the module comes from the disk
    monkeypatch.setattr(stored.export, "export", _never_export)
    read = _train(params, data, depths, store=str(tmp_path))
    for a, b, c in zip(jax.tree.leaves(traced), jax.tree.leaves(exported), jax.tree.leaves(read)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_a_damaged_module_is_made_again(params, data, tmp_path, fresh, monkeypatch):
    first = _train(params, data, [2, 1], store=str(tmp_path))
    (path,) = tmp_path.glob("*.jax")
    whole = path.read_bytes()
    path.write_bytes(whole[:100])  # as a killed writer might have left it, were writes not atomic
    monkeypatch.setattr(stored, "_loaded", {})
    again = _train(params, data, [2, 1], store=str(tmp_path))
    assert path.read_bytes() == whole and not list(tmp_path.glob(".partial-*"))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)


def test_the_key_follows_what_makes_a_module(monkeypatch):
    """The static arguments, the arguments' shapes and dtypes (as JAX sees them) and the package's source change it;
    the arguments' values and devices do not."""
    static = (CFG, "cpu", True, False)
    args = (np.zeros((2, 5, 4), np.float32), np.arange(4, dtype=np.int32))
    base = stored.key(static, args)
    devices = jax.devices("cpu")
    assert stored.key(static, (args[0] + 1, args[1])) == base
    assert stored.key(static, jax.device_put(args, devices[-1])) == base
    assert stored.key((CFG, "cpu", False, False), args) != base
    assert stored.key((je.Training("relu", "sgd", 3, 32), "cpu", True, False), args) != base
    assert stored.key(static, (np.zeros((2, 5, 5), np.float32), args[1])) != base
    assert stored.key(static, (args[0].astype(np.int32), args[1])) != base
    assert stored.key(static, (args[0].astype(np.float64), args[1])) == base  # JAX computes it in float32 all the same
    monkeypatch.setattr(stored, "source_digest", lambda: "an edited package")
    assert stored.key(static, args) != base


def test_the_store_keeps_the_modules_used_last_within_its_bound(params, data, tmp_path, fresh, monkeypatch):
    """Beyond MAX_BYTES the modules used least recently go; so do temporary files older than STALE_S (a killed
    writer's), not one being written now."""
    _train(params, data, [2, 2], store=str(tmp_path))
    (older,) = tmp_path.glob("*.jax")
    monkeypatch.setattr(stored, "MAX_BYTES", older.stat().st_size + 1)  # room for one module
    killed, writing = tmp_path / ".partial-killed", tmp_path / ".partial-writing"
    killed.write_bytes(b"half a module")
    writing.write_bytes(b"half a module")
    os.utime(killed, (time.time() - stored.STALE_S - 60,) * 2)
    _train(params, data, [1, 1, 1], store=str(tmp_path))
    (newer,) = tmp_path.glob("*.jax")
    assert newer != older
    assert not killed.exists() and writing.exists()
