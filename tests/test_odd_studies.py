"""A diverging model is a result, not a crash, through to the report: the metrics and the report stages finish on
study sets the default never has (one study alone, nothing swept over depth, every seed of a study diverged), and
weights that overflowed count as diverged even where the loss stayed finite."""
import json

import numpy as np
import pytest
import yaml

from conftest import ROOT, tiny
from vanishing_gradients import cli
from vanishing_gradients.core import manifests
from vanishing_gradients.core.statistics import LAYER, MODEL_STATISTICS
from vanishing_gradients.record.runs import diverged


def _pipeline(tmp, params: dict) -> dict:
    """Every stage, in-process as the pipeline tools run them, on `params`: the metrics JSON and the report."""
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    common = ["--params", str(path), "--timings", str(tmp / "timings"), "--manifests", str(tmp / "manifests")]
    data = tmp / "circles.csv"
    assert cli.main(["params", *common, "--out", str(tmp / "params.json")]) == 0
    assert cli.main(["data", *common, "--out-csv", str(data), "--out-plot", str(tmp / "circles.png")]) == 0
    for study in params["studies"]:
        assert cli.main(["train", *common, "--study", study, "--data", str(data),
                         "--out", str(tmp / "runs" / study)]) == 0
        assert cli.main(["gradients", *common, "--study", study, "--runs", str(tmp / "runs" / study),
                         "--out", str(tmp / "tables" / study)]) == 0
    assert cli.main(["metrics", *common, "--tables", str(tmp / "tables"), "--out", str(tmp / "metrics.json"),
                     "--plots", str(tmp / "plots")]) == 0
    report = tmp / "summary.html"
    assert cli.main(["report", *common, "--notebook", str(ROOT / "workflow/notebooks/summary.ipynb"),
                     "--out", str(report), "--in-params", str(tmp / "params.json"), "--in-dataset", str(data),
                     "--in-dataset-plot", str(tmp / "circles.png"), "--in-tables", str(tmp / "tables"),
                     "--in-metrics", str(tmp / "metrics.json"), "--in-plots", str(tmp / "plots"),
                     "--in-runs", str(tmp / "runs"), "--in-timings", str(tmp / "timings")]) == 0
    assert manifests.stale(tmp / "manifests") == {}  # each stage listed what it published and read
    return json.loads((tmp / "metrics.json").read_text()) | {"report": report.read_text()}


@pytest.fixture
def small(params):
    # the tiny study's epochs, seeds and frequencies (each test sets its studies): its programs of one shape are
    # compiled once in the suite (the disk cache)
    params = tiny(params, sweeps=False)
    params["configs"]["relu_exploding"] = {**params["configs"]["relu_he"],
                                           "optimizer": {"name": "sgd", "learning_rate": 1.0e+30}}
    # tanh bounds the activations: the loss may stay finite while the weights overflow
    params["configs"]["tanh_overflowing"] = {**params["configs"]["tanh_glorot"],
                                             "optimizer": {"name": "sgd", "learning_rate": 1.0e+38}}
    return params


def test_one_study_alone(small, tmp_path):
    small["studies"] = {"alone": {"configs": ["relu_he"], "depths": [2], "widths": [5]}}
    found = _pipeline(tmp_path, small)
    assert set(found["studies"]) == {"alone"} and found["trainable_depth"] == {}
    assert "No zero-mean configuration was swept over depth" in found["report"]


def test_every_seed_diverged_and_nothing_swept_over_depth(small, tmp_path):
    small["studies"] = {"alone": {"configs": ["relu_he"], "depths": [2], "widths": [5]},
                        "exploding": {"configs": ["relu_exploding"], "depths": [2], "widths": [5]},
                        "overflowing": {"configs": ["tanh_overflowing"], "depths": [2], "widths": [5]},
                        "grid": {"configs": ["tanh_glorot"], "depths": [1], "widths": [3, 5]}}
    found = _pipeline(tmp_path, small)
    assert found["studies"]["exploding"]["diverged_share"] == 1.0
    assert found["studies"]["overflowing"]["diverged_share"] == 1.0, found["studies"]["overflowing"]
    assert found["studies"]["exploding"]["success_rate"]["rate"] == 0.0
    assert found["studies"]["alone"]["diverged_share"] == 0.0
    assert found["trainable_depth"] == {}


def test_overflowed_weights_count_as_diverged():
    """Losses finite throughout, but one seed's kernel norm overflowed: that seed diverged, the other did not."""
    epochs, seeds, layers = 3, 2, 2
    history = np.full((epochs, len(MODEL_STATISTICS), seeds), 0.5, np.float32)
    final = np.full((len(MODEL_STATISTICS), seeds), 0.5, np.float32)
    stats = np.ones((epochs + 1, len(LAYER), layers, seeds), np.float32)
    assert not diverged(history, final, stats).any()
    stats[2, LAYER["kernel_l1"], 1, 0] = np.inf
    assert diverged(history, final, stats).tolist() == [True, False]
    assert diverged(history, final).tolist() == [False, False]  # the losses alone would not say


def test_a_report_without_its_inputs_is_one_line(tmp_path, capsys):
    """`vgrad report` before the stages it reads: exit status 2, one line naming what is missing, no traceback."""
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    paths = {f"--in-{name}": str(tmp_path / name) for name in ("params", "dataset", "dataset-plot", "tables",
                                                                  "metrics", "plots", "runs", "timings")}
    status = cli.main(["report", "--params", str(tmp_path / "params.yaml"), "--notebook",
                       str(ROOT / "workflow/notebooks/summary.ipynb"), "--out", str(tmp_path / "summary.html"),
                       *[item for pair in paths.items() for item in pair]])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and "inputs are missing" in err, err
    assert str(tmp_path / "metrics") in err and not (tmp_path / "summary.html").exists()


def test_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    """An OSError while writing (here a full disk) ends the stage with exit status 2 and one plain line."""
    import errno

    from vanishing_gradients.core import params as params_module

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(params_module, "write_json", full)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    status = cli.main(["params", "--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert status == 2 and err.strip() == (f"error: {tmp_path / 'p.json'}: No space left on device; nothing of this "
                                           "stage was published")


def test_the_compile_cache_is_bounded():
    import jax

    from vanishing_gradients.train.jax import program

    assert jax.config.jax_compilation_cache_max_size == program.XLA_CACHE_MAX_BYTES
