"""Both engines, through the train stage's CLI, write the same event files with the same tags and steps."""
import contextlib
import io
import json

import numpy as np
import pytest
import yaml

from vanishing_gradients import cli
from vanishing_gradients.core.statistics import ANATOMY_STATISTICS
from vanishing_gradients.record.events import read_events

STUDY = "sweep"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-variant study (relu_he at depths 1 and 2), 3 epochs, seeds 1 and 2, trained by each engine:
    each engine's output folder, and what its train stage printed."""
    from conftest import ROOT
    tmp = tmp_path_factory.mktemp("engines")
    data = tmp / "circles.csv"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(epochs=3, seeds=[1, 2])
    params["events"].update(stats_freq=1, histogram_freq=2, detail_seeds=1)
    params["studies"] = {STUDY: {"configs": ["relu_he"], "depths": [1, 2], "widths": [5]}}
    out, printed = {}, {}
    for engine in ("keras", "jax"):
        params["train"]["engine"] = engine
        path = tmp / f"{engine}.yaml"
        path.write_text(yaml.safe_dump(params))
        if not data.exists():
            assert cli.main(["data", "--params", str(path), "--out-csv", str(data), "--out-plot",
                             str(tmp / "circles.png")]) == 0
        out[engine], printed[engine] = tmp / engine, io.StringIO()
        with contextlib.redirect_stdout(printed[engine]):
            assert cli.main(["train", "--params", str(path), "--study", STUDY, "--data", str(data),
                             "--out", str(out[engine]), "--timings", str(tmp / f"timings_{engine}")]) == 0
    return out, {engine: text.getvalue() for engine, text in printed.items()}


@pytest.fixture(scope="module")
def runs(trained):
    return trained[0]


def test_training_shows_progress(trained):
    """Both engines say first what the study will cost; the reference engine reports each model as it finishes (a
    full-size model.fit is slow); the fast engine each compiled program; both each variant."""
    printed = trained[1]
    assert all("estimate: 2 variants, 4 models, 12 model-epochs in 1 programs;" in text for text in printed.values())
    for variant in ("relu_he-d01-w05", "relu_he-d02-w05"):
        for k, seed in enumerate((1, 2)):
            assert f"{variant} seed {seed} ({k + 1}/2) in " in printed["keras"]
        assert all(f"{variant} at " in printed[engine] for engine in printed)
    assert "program 1: 2 variants, 4 replicas" in printed["jax"]


def test_training_records_where_its_time_went(runs):
    """The stage's timing splits its wall time: the reference engine's fits, the fast engine's program making
    and running, and both engines' writing of event files; the parts never add up to more than the whole."""
    for engine, parts in (("keras", {"fit", "write"}), ("jax", {"compile", "programs", "write"})):
        timing = json.loads((runs[engine].parent / f"timings_{engine}" / f"train_{STUDY}.json").read_text())
        assert set(timing["parts_s"]) == parts and min(timing["parts_s"].values()) >= 0
        assert sum(timing["parts_s"].values()) <= timing["wall_s"] + 0.01  # each part rounded to 1 ms
        assert timing["parts_s"][next(iter(parts - {"write", "compile"}))] > 0


def _keys(table):
    return set(map(tuple, table[["statistic", "layer", "epoch"]].drop_duplicates().to_numpy()))


@pytest.mark.parametrize("run", ["relu_he-d02-w05", "relu_he-d02-w05/seed_1", "relu_he-d02-w05/seed_2",
                                 "relu_he-d01-w05/seed_1"])
def test_same_runs_tags_and_steps(runs, run):
    k_scalars, k_hist = read_events(runs["keras"] / run)
    j_scalars, j_hist = read_events(runs["jax"] / run)
    assert _keys(k_scalars) == _keys(j_scalars)
    assert _keys(k_hist) == _keys(j_hist)
    assert (k_hist.groupby(["statistic", "layer", "epoch"]).size() == 30).all()
    if run.endswith("/seed_1") or run.endswith("/seed_2"):  # every seed: its anatomy at the first and last epoch
        anatomy = j_scalars[j_scalars["statistic"].isin(list(ANATOMY_STATISTICS))]
        assert set(anatomy["epoch"]) == {0, 3} and set(anatomy["statistic"]) == set(ANATOMY_STATISTICS)
        assert ("grad_mean_abs", "output", 0) in _keys(anatomy) and ("units_dead", "output", 0) not in _keys(anatomy)
    if run.endswith("seed_2"):  # not a detail seed: final metrics and anatomy only
        assert set(j_scalars["statistic"]) == {"final_loss_train", "final_accuracy_train", "final_loss_test",
                                                "final_accuracy_test", "epochs_to_target", "loss_slope",
                                                "diverged"} | set(ANATOMY_STATISTICS)
        assert k_hist.empty
    else:
        if run.endswith("seed_1"):  # a detail seed: histograms at epochs 0 and 2 (histogram_freq 2)
            assert {("grad_val", "hidden_1", 0), ("kernel", "output", 2)} <= _keys(j_hist)
        else:  # the variant's mean over seeds: no histograms
            assert j_hist.empty
        assert ("dead_share", "hidden_1", 0) in _keys(j_scalars) and ("dead_share", "output", 0) not in _keys(j_scalars)
        assert ("update_ratio", "hidden_1", 0) not in _keys(j_scalars)


def test_both_engines_measure_alike(runs):
    """Different initial weights (each engine draws its own), the same statistics in the same ranges."""
    for run in ("relu_he-d02-w05", "relu_he-d02-w05/seed_1"):
        k, j = (read_events(runs[e] / run)[0].set_index(["statistic", "layer", "epoch"])["value"] for e in runs)
        k, j = (s[s.index.get_level_values("statistic") != "epochs_to_target"] for s in (k, j))  # NaN: not reached
        assert np.isfinite(k).all() and np.isfinite(j).all()
        for stat in ("accuracy_test", "dead_share", "saturated_share"):
            assert ((0 <= k.loc[stat]) & (k.loc[stat] <= 1)).all() and ((0 <= j.loc[stat]) & (j.loc[stat] <= 1)).all()


def test_run_records_engine_and_device(runs):
    for engine, run_dir in runs.items():
        run = json.loads((run_dir / "run.json").read_text())
        assert run["engine"] == engine and run["device"].startswith("cpu")
        assert run["variants"] == ["relu_he-d01-w05", "relu_he-d02-w05"] and run["n_models"] == 4


def test_device_says_when_the_gpu_kernels_train(monkeypatch):
    """train.device's description, recorded in run.json and the report, names the GPU kernels when they train, and
    a CPU once ('cpu', not 'cpu: cpu')."""
    import jax

    from vanishing_gradients.train.jax import groups as jax_train
    from vanishing_gradients.train.jax import program as jax_engine
    assert jax_train.jax_device("cpu")[1] == "cpu"
    gpu = type("Device", (), {"platform": "gpu", "device_kind": "NVIDIA H100 80GB HBM3"})()
    monkeypatch.setattr(jax, "devices", lambda *backend: [gpu])
    for kernels, described in ((False, "gpu: NVIDIA H100 80GB HBM3"),
                               (True, "gpu: NVIDIA H100 80GB HBM3 with the GPU kernels (VGRAD_GPU_KERNELS=1)")):
        monkeypatch.setattr(jax_engine, "GPU_KERNELS", kernels)
        assert jax_train.jax_device("gpu") == (gpu, described)


def test_runs_carry_hparams_for_tensorboard(runs):
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import metadata
    for engine, run_dir in runs.items():
        for run, group in [("relu_he-d02-w05/seed_2", f"{STUDY}/relu_he-d02-w05/seed_2"),
                           ("relu_he-d02-w05", f"{STUDY}/relu_he-d02-w05")]:
            acc = ea.EventAccumulator(str(run_dir / run), size_guidance={ea.TENSORS: 0})
            acc.Reload()
            info = metadata.parse_session_start_info_plugin_data(
                acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content)
            values = {k: v.string_value or v.number_value for k, v in info.hparams.items()}
            assert info.group_name == group
            assert values["engine"] == engine and values["depth"] == 2 and values["config"] == "relu_he"
            assert values["activation"] == "relu" and values["optimizer_learning_rate"] == 0.01
