"""Both engines, through the train stage's CLI, write the same files with the same tags."""
import json

import pandas as pd
import pytest
import yaml

from vanishing_gradients import cli
from vanishing_gradients.events import read_events


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """deep_relu, 3 epochs, seeds 1 and 2, trained by each engine: {engine: run folder}."""
    from conftest import ROOT
    tmp = tmp_path_factory.mktemp("engines")
    data = tmp / "circles.csv"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(epochs=3, seeds=[1, 2])
    out = {}
    for engine in ("keras", "jax"):
        params["train"]["engine"] = engine
        path = tmp / f"{engine}.yaml"
        path.write_text(yaml.safe_dump(params))
        if not data.exists():
            assert cli.main(["data", "--params", str(path), "--out-csv", str(data), "--out-plot",
                             str(tmp / "circles.png")]) == 0
        out[engine] = tmp / engine
        assert cli.main(["train", "--params", str(path), "--experiment", "deep_relu", "--data", str(data),
                         "--out", str(out[engine]), "--timings", str(tmp / "timings")]) == 0
    return out


def _keys(table, columns):
    return set(map(tuple, table[columns].drop_duplicates().to_numpy()))


def test_same_files_tags_and_steps(runs):
    keras_dir, jax_dir = runs["keras"], runs["jax"]
    for seed in (1, 2):
        k_scalars, k_hist = read_events(keras_dir / f"seed_{seed}")
        j_scalars, j_hist = read_events(jax_dir / f"seed_{seed}")
        assert _keys(k_scalars, ["statistic", "layer", "epoch"]) == _keys(j_scalars, ["statistic", "layer", "epoch"])
        assert _keys(k_hist, ["statistic", "layer", "epoch"]) == _keys(j_hist, ["statistic", "layer", "epoch"])
        assert (k_hist.groupby(["statistic", "layer", "epoch"]).size() == 30).all()
        for name in ("history.csv", "final.json"):
            assert (keras_dir / f"seed_{seed}" / name).exists() and (jax_dir / f"seed_{seed}" / name).exists()
        assert list(pd.read_csv(keras_dir / f"seed_{seed}/history.csv").columns) == \
            list(pd.read_csv(jax_dir / f"seed_{seed}/history.csv").columns)
        assert json.loads((keras_dir / f"seed_{seed}/final.json").read_text()).keys() == \
            json.loads((jax_dir / f"seed_{seed}/final.json").read_text()).keys()


def test_run_records_engine_and_device(runs):
    for engine, run_dir in runs.items():
        run = json.loads((run_dir / "run.json").read_text())
        assert run["engine"] == engine and run["device"].startswith("cpu")
        assert run["layers"] == ["hidden_1", "hidden_2", "hidden_3", "hidden_4", "hidden_5", "output"]


def test_runs_carry_hparams_for_tensorboard(runs):
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.plugins.hparams import metadata
    for engine, run_dir in runs.items():
        acc = ea.EventAccumulator(str(run_dir / "seed_2"), size_guidance={ea.TENSORS: 0})
        acc.Reload()
        info = metadata.parse_session_start_info_plugin_data(
            acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content)
        values = {k: v.string_value or v.number_value for k, v in info.hparams.items()}
        assert info.group_name == "deep_relu/seed_2"
        assert values["engine"] == engine and values["depth"] == 5 and values["seed"] == 2
        assert values["activation"] == "relu" and values["optimizer_learning_rate"] == 0.01
