"""Bad parameters are rejected with a message naming the key, before anything is written."""
import copy

import pytest
import yaml

from conftest import ROOT
from vanishing_gradients import cli
from vanishing_gradients.core.params import ParamsError, load, validate


def test_repository_params_are_valid(params):
    assert validate(params) is params


def _set(params, path, value):
    node = params
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return params


def _delete(params, path):
    node = params
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return params


BAD = {
    "unknown top-level key": (lambda p: _set(p, ["trian"], {}), "trian"),
    "unknown nested key (typo)": (lambda p: _set(p, ["train", "epoch"], 5), "train.epoch"),
    "zero epochs": (lambda p: _set(p, ["train", "epochs"], 0), "train.epochs"),
    "negative epochs": (lambda p: _set(p, ["train", "epochs"], -3), "train.epochs"),
    "depth 0": (lambda p: _set(p, ["studies", "deep_tanh", "depths"], [0]), "studies.deep_tanh.depths"),
    "width 0": (lambda p: _set(p, ["studies", "deep_relu", "widths"], [0]), "studies.deep_relu.widths"),
    "depth range backwards": (lambda p: _set(p, ["studies", "breadth", "depths"], {"from": 10, "to": 1}),
                              "studies.breadth.depths"),
    "depth range with a typo": (lambda p: _set(p, ["studies", "breadth", "depths"], {"from": 1, "too": 5}),
                                "studies.breadth.depths"),
    "unknown key in a study": (lambda p: _set(p, ["studies", "breadth", "width"], [5]), "studies.breadth.width"),
    "study without configs": (lambda p: _delete(p, ["studies", "breadth", "configs"]), "configs"),
    "zero seeds in a study": (lambda p: _set(p, ["studies", "breadth", "seeds"], 0), "studies.breadth.seeds"),
    "histograms off the statistics grid": (lambda p: _set(p, ["events", "histogram_freq"], 15),
                                           "events.histogram_freq"),
    "unknown activation": (lambda p: _set(p, ["configs", "relu_he", "activation"], "swish"),
                           "configs.relu_he.activation"),
    "unknown initialiser": (lambda p: _set(p, ["configs", "relu_he", "hidden_init"], "he_magic"),
                            "configs.relu_he.hidden_init"),
    "unknown optimiser": (lambda p: _set(p, ["train", "optimizer", "name"], "rmsprop"), "train.optimizer.name"),
    "empty seed list": (lambda p: _set(p, ["train", "seeds"], []), "train.seeds"),
    "duplicate seeds": (lambda p: _set(p, ["train", "seeds"], [1, 2, 1]), "train.seeds"),
    "a seed of 2^32": (lambda p: _set(p, ["train", "seeds"], [1, 4294967296]), "train.seeds"),
    "n_train >= n_samples": (lambda p: _set(p, ["data", "n_train"], 1000), "data.n_train"),
    "learning rate zero": (lambda p: _set(p, ["train", "optimizer", "learning_rate"], 0),
                           "train.optimizer.learning_rate"),
    "learning rate a string": (lambda p: _set(p, ["train", "optimizer", "learning_rate"], "fast"),
                               "train.optimizer.learning_rate"),
    "study with unknown config": (lambda p: _set(p, ["studies", "deep_tanh", "configs"], ["nope"]),
                                  "studies.deep_tanh.configs"),
    "adam settings on an sgd config": (lambda p: _set(p, ["configs", "relu_he", "optimizer"],
                                                      {"name": "sgd", "learning_rate": 0.1, "beta_1": 0.9}),
                                       "configs.relu_he.optimizer.beta_1"),
    "missing required key": (lambda p: _delete(p, ["train", "batch_size"]), "batch_size"),
    "momentum for adam": (lambda p: _set(p, ["train", "optimizer"], {"name": "adam", "learning_rate": 0.01,
                                                                      "momentum": 0.9}), "train.optimizer.momentum"),
    "uniform init without maxval": (
        lambda p: _set(p, ["configs", "tanh_uniform", "hidden_init"], {"name": "random_uniform", "minval": 0}),
        "configs.tanh_uniform.hidden_init"),
    "a bare initialiser given settings": (
        lambda p: _set(p, ["configs", "relu_he", "hidden_init"], {"name": "he_uniform", "minval": 0}),
        "configs.relu_he.hidden_init"),
    "collapse threshold at or below one half": (lambda p: _set(p, ["events", "failure", "collapsed"], 0.5),
                                                "events.failure.collapsed"),
    "saturation threshold above 1": (lambda p: _set(p, ["events", "failure", "saturated"], 1.5),
                                     "events.failure.saturated"),
    "a negative still-learning slope": (lambda p: _set(p, ["events", "failure", "still_learning"], -0.01),
                                        "events.failure.still_learning"),
    "unknown failure kind": (lambda p: _set(p, ["events", "failure", "exploded"], 0.5), "events.failure.exploded"),
    "failure thresholds missing": (lambda p: _delete(p, ["events", "failure"]), "failure"),
    "an initialiser Keras does not have": (lambda p: _set(p, ["configs", "tanh_orthogonal", "hidden_init"],
                                                          "orthonormal"), "configs.tanh_orthogonal.hidden_init"),
    "orthogonal given settings": (lambda p: _set(p, ["configs", "tanh_orthogonal", "hidden_init"],
                                                 {"name": "orthogonal", "gain": 2.0}),
                                  "configs.tanh_orthogonal.hidden_init"),
    "depth step zero": (lambda p: _set(p, ["studies", "depth_tanh_orthogonal", "depths"],
                                       {"from": 2, "to": 40, "step": 0}), "studies.depth_tanh_orthogonal.depths"),
    "uniform init with maxval <= minval": (
        lambda p: _set(p, ["configs", "tanh_uniform", "hidden_init"],
                       {"name": "random_uniform", "minval": 1, "maxval": 0}),
        "configs.tanh_uniform.hidden_init"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_value_names_the_key(params, case):
    mutate, key = BAD[case]
    with pytest.raises(ParamsError) as err:
        validate(mutate(copy.deepcopy(params)))
    assert key in str(err.value)


def test_malformed_yaml_is_reported(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train: {epochs: 3\n  seeds: [1, 2\n")
    with pytest.raises(ParamsError, match="malformed YAML"):
        load(path)


def test_params_are_read_as_yaml_1_2_like_dvc(params, tmp_path):
    """`1e-3` is a number, as DVC reads it (YAML 1.1 would make it a string); a key given twice is an error naming
    its line (YAML 1.1 readers keep the last silently; DVC refuses it)."""
    text = (ROOT / "params.yaml").read_text().replace("learning_rate: 0.01", "learning_rate: 1e-3")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load(path)["train"]["optimizer"]["learning_rate"] == 0.001
    path.write_text(text.replace("  epochs: 500", "  epochs: 500\n  epochs: 5"))
    with pytest.raises(ParamsError, match="key 'epochs' given twice") as err:
        load(path)
    assert "line" in str(err.value)


@pytest.mark.parametrize("name", ["on", "Yes", "off", "null"])
def test_names_yaml_1_1_takes_for_booleans_are_refused(params, name):
    """`on:` is a string to DVC and to this project's reader, but True to Snakemake's and PyYAML's: refused."""
    params["studies"][name] = params["studies"].pop("deep_relu")
    with pytest.raises(ParamsError, match=f"studies.{name}: a name that YAML 1.1"):
        validate(params)


@pytest.mark.parametrize("case", ["zero epochs", "unknown nested key (typo)", "duplicate seeds"])
def test_cli_exits_non_zero_and_writes_nothing(params, tmp_path, capsys, case):
    mutate, key = BAD[case]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(mutate(params)))
    out_csv, out_png = tmp_path / "data" / "circles.csv", tmp_path / "data" / "circles.png"
    status = cli.main(["data", "--params", str(path), "--out-csv", str(out_csv), "--out-plot", str(out_png),
                       "--timings", str(tmp_path / "timings")])
    assert status == 2
    assert key in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "timings").exists()


def test_unknown_study_is_an_error(params, tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    status = cli.main(["train", "--params", str(path), "--study", "nope", "--data", str(tmp_path / "d.csv"),
                       "--out", str(tmp_path / "runs" / "nope")])
    assert status == 2 and "study 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_study_expansion(params):
    from vanishing_gradients.core.study import n_models, variants
    depth = variants(params, "depth_tanh_uniform")
    assert [v.depth for v in depth] == list(range(1, 26)) and {v.width for v in depth} == {5}
    assert depth[0].name == "tanh_uniform-d01-w05" and depth[0].seeds == tuple(range(1, 21))
    breadth = variants(params, "breadth")
    assert len(breadth) == 50 and breadth[0].seeds == tuple(range(1, 11))
    adam = variants(params, "depth_tanh_uniform_adam")[0]
    assert adam.optimizer == {"name": "adam", "learning_rate": 0.001}
    orthogonal = variants(params, "depth_tanh_orthogonal")  # {from: 2, to: 40, step: 2}
    assert [v.depth for v in orthogonal] == list(range(2, 41, 2)) and orthogonal[0].spec.hidden_init == "orthogonal"
    assert [v.width for v in variants(params, "width_relu_narrow")][::12] == [2, 3, 4]
    assert n_models(params) == 3 * 100 + 4 * 25 * 20 + 50 * 10 + 20 * 20 + 3 * 12 * 20 + 2 * 11 * 10  # 4,140


OVERSIZED = {  # what cannot run here, refused by the parameter check with the estimate and the key to change
    "a billion epochs": (lambda p: p["train"].update(epochs=1_000_000_000), "lower train.epochs"),
    "layers of 100,000 units": (lambda p: p["studies"]["deep_relu"].update(widths=[100_000]),
                                "studies.deep_relu.widths"),
    "a million seeds": (lambda p: p["studies"]["deep_relu"].update(seeds=1_000_000), "lower studies.deep_relu.seeds"),
    "100,000 depths": (lambda p: p["studies"]["deep_relu"].update(depths={"from": 1, "to": 100_000}),
                       "studies.deep_relu.depths"),
}


@pytest.mark.parametrize("case", OVERSIZED, ids=list(OVERSIZED))
def test_oversized_studies_are_refused_at_once_with_an_estimate(params, case):
    import time

    mutate, key = OVERSIZED[case]
    mutate(params)
    start = time.perf_counter()
    with pytest.raises(ParamsError) as err:
        validate(params)
    assert time.perf_counter() - start < 10
    assert key in str(err.value) and "model-epochs" in str(err.value) and "on one core" in str(err.value)


def test_a_large_feasible_study_is_accepted_and_its_estimate_printed(params, tmp_path, capsys):
    """2,000 seeds at 30 depths: 60,000 models, hours of work, but it fits: `vgrad params` says what it costs."""
    from vanishing_gradients.core import cost

    params["studies"]["deep_relu"].update(seeds=2000, depths={"from": 1, "to": 30})
    validate(params)
    estimate = cost.estimate(params, "deep_relu")
    assert (estimate.models, estimate.model_epochs) == (60_000, 30_000_000)
    assert 1 < estimate.programs <= 30  # long training of many seeds: split by depth, at most one per depth
    assert estimate.files == 60_030 and estimate.program_bytes < cost.PROGRAM_BYTES
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert cli.main(["params", "--params", str(path), "--out", str(tmp_path / "params.json")]) == 0
    assert f"deep_relu: {estimate}" in capsys.readouterr().out


def test_programs_too_large_for_memory_are_split_by_the_parameters_alone(params):
    """A group whose replicas would not fit in one program run is split into runs that do; the run size follows
    from the parameters only (never the machine), so the numbers do too. The default study is not split."""
    from vanishing_gradients.core import cost
    from vanishing_gradients.core.study import variants

    for study in params["studies"]:
        for group in cost.programs(variants(params, study), params["train"]["epochs"], 1000):
            assert cost.run_size(group, params["train"], params["events"], 500) >= sum(len(v.seeds) for v in group)
    default = variants(params, "deep_relu")
    params["train"]["epochs"] = 2_000_000  # about 70 MB of per-epoch records per replica
    size = cost.run_size(default, params["train"], params["events"], 500)
    assert 1 <= size < params["train"]["chunk"]
    per_replica = max(cost.replica_bytes(v, params["train"], params["events"], 500) for v in default)
    assert size * per_replica <= cost.PROGRAM_BYTES < (size + 1) * per_replica


def test_programs_are_the_groupings_of_least_estimated_time(params):
    """The fast engine's programs: variants of one shape in runs of consecutive depths, the grouping whose estimated
    seconds (making each program, training each padded replica) is least of all groupings of at least MIN_REPLICAS
    replicas a program, by brute force, longest first. Cheap variants share one program; costly ones are split by
    depth."""
    import itertools

    from vanishing_gradients.core import cost
    from vanishing_gradients.core.study import shape_key, variants

    todo = variants(params, "width_relu_narrow") + variants(params, "depth_tanh_orthogonal")[:9]
    for epochs in (5, 500, 50_000):
        groups = cost.programs(todo, epochs, 1000)
        assert sorted(map(id, todo)) == sorted(id(v) for g in groups for v in g)  # each variant once
        for group in groups:
            assert len({shape_key(v) for v in group}) == 1
            assert [v.depth for v in group] == sorted(v.depth for v in group)
        for key in {shape_key(v) for v in todo}:
            ours = [g for g in groups if shape_key(g[0]) == key]
            alike = [v for g in ours for v in g]
            seconds = lambda cuts: sum(cost.program_seconds(alike[i:j], epochs, 1000)
                                       for i, j in zip((0, *cuts), (*cuts, len(alike))))
            seeds = [0, *itertools.accumulate(len(v.seeds) for v in alike)]
            big = lambda cuts: all(seeds[j] - seeds[i] >= cost.MIN_REPLICAS
                                   for i, j in zip((0, *cuts), (*cuts, len(alike))))
            best = min(seconds(cuts) for n in range(len(alike))
                       for cuts in itertools.combinations(range(1, len(alike)), n) if not cuts or big(cuts))
            assert sum(cost.program_seconds(g, epochs, 1000) for g in ours) == pytest.approx(best)
            assert len(ours) == 1 or all(sum(len(v.seeds) for v in g) >= cost.MIN_REPLICAS for g in ours)
        estimated = [cost.program_seconds(g, epochs, 1000) for g in groups]
        assert estimated == sorted(estimated, reverse=True)  # longest first
    few, many = len(cost.programs(todo, 5, 1000)), len(cost.programs(todo, 50_000, 1000))
    assert few == 4 and many > few  # one per width at 5 epochs; long training splits the larger groups


def test_train_priority_leaves_out_making_what_an_earlier_study_makes(params):
    """depth_tanh_glorot's programs have depth_tanh_uniform's shapes (only the initialiser differs, an input):
    started after it, it reads them from the disk cache, so its priority counts no making; others count all."""
    from vanishing_gradients.core import cost
    from vanishing_gradients.core.study import variants

    epochs, rows = params["train"]["epochs"], params["data"]["n_samples"]
    groups = cost.programs(variants(params, "depth_tanh_glorot"), epochs, rows)
    making = sum(cost.making_seconds(max(g, key=lambda v: v.depth)) for g in groups)
    assert cost.priority_seconds(params, "depth_tanh_glorot") == pytest.approx(
        cost.estimate(params, "depth_tanh_glorot").seconds - making)
    for study in ("depth_tanh_uniform", "depth_relu_he", "depth_tanh_uniform_adam", "breadth", "deep_tanh"):
        assert cost.priority_seconds(params, study) == pytest.approx(cost.estimate(params, study).seconds), study
    assert cost.priority_seconds(params, "depth_tanh_glorot") < cost.priority_seconds(params, "depth_tanh_uniform")
