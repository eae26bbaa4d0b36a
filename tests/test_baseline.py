"""The published baseline: the repository ships dvc.lock and the default study's metrics, so a user's change is
compared with them. In its own temporary copy (no shared state), so it runs beside the other end-to-end files."""
import json

import pytest
import yaml

from conftest import ROOT, commit, copy_repo, run, tiny, write_params

pytestmark = pytest.mark.e2e


def _without_nulls(tree):
    """A JSON tree without its null entries (as DVC reads metrics: a trainable depth none reached has no depth)."""
    if isinstance(tree, dict):
        return {k: _without_nulls(v) for k, v in tree.items() if v is not None}
    return tree


def test_published_baseline_is_what_a_change_is_compared_with(tmp_path):
    """The repository ships dvc.lock and the default study's metrics: after a parameter change and
    `dvc exp run`, `dvc metrics diff` and `dvc exp show` set the new numbers beside the published ones."""
    published = json.loads((ROOT / "results/metrics.json").read_text())
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    assert set(published["studies"]) >= {"shallow_tanh", "deep_tanh", "deep_relu"}
    assert lock["stages"]["train@depth_relu_he"]["params"]["params.yaml"]["train"]["epochs"] == 500
    repo = copy_repo(tmp_path)
    run(repo, "git", "init", "-q")
    commit(repo, "published baseline")
    # a change too small to wait for: one study, a few epochs, run up to the metrics (what is compared)
    params = tiny(yaml.safe_load((repo / "params.yaml").read_text()), sweeps=False)
    params["studies"] = {"deep_relu": params["studies"]["deep_relu"]}
    write_params(repo, params)
    run(repo, "dvc", "exp", "run", "-n", "tiny", "-S", "train.epochs=4", "metrics")
    diff = json.loads(run(repo, "dvc", "metrics", "diff", "--json").stdout)["results/metrics.json"]
    entry = diff["studies.deep_relu.accuracy_test.mean"]
    assert entry["old"] == published["studies"]["deep_relu"]["accuracy_test"]["mean"]
    assert entry["new"] != entry["old"]
    shown = json.loads(run(repo, "dvc", "exp", "show", "--json").stdout)  # the workspace, then the baseline commit
    baseline = next(entry for entry in shown if entry["rev"] != "workspace")
    assert baseline["data"]["metrics"]["results/metrics.json"]["data"] == _without_nulls(published)  # DVC drops them
    experiments = {exp["name"]: exp["data"] for entry in shown for group in (entry.get("experiments") or [])
                   for exp in group["revs"]}
    assert experiments["tiny"]["metrics"]["results/metrics.json"]["data"]["studies"]["deep_relu"][
        "accuracy_test"]["mean"] == entry["new"]
