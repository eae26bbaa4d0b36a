"""The fast engine against the reference: same initial weights and batch order give Keras's numbers."""
import subprocess
import sys

import jax
import numpy as np
import pytest
from tensorboard.plugins.histogram.summary_v2 import histogram_pb
from tensorboard.util import tensor_util

from conftest import spec_for
from vanishing_gradients.train.jax import initializers as ji
from vanishing_gradients.train.jax import model as jm
from vanishing_gradients.train.jax import program as je
from vanishing_gradients.train.jax import statistics as jst
from vanishing_gradients.train.keras import build_keras_model, keras_optimizer

EPOCHS = 5
SGD = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}
# the chunked runs' program, shared by the tests of chunks (one compile, then the disk cache)
CHUNKED = je.Training("relu", "sgd", 3, 32, stats_freq=1, histogram_freq=1)
ADAM = {"name": "adam", "learning_rate": 0.01}


def _keras_reference(spec, optimizer, data, perms, seed=3):
    """model.fit one epoch at a time on rows in the given order (shuffle off): weights and history."""
    pytest.importorskip("tensorflow", reason="the Keras reference needs TensorFlow (absent on the GPU machine)")
    from vanishing_gradients.train.keras import keras
    keras.utils.set_random_seed(seed)
    model = build_keras_model(spec)
    init = [w.numpy() for w in model.weights]
    model.compile(optimizer=keras_optimizer(optimizer), loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
    (x, y), test = data["train"], data["test"]
    history = []
    for perm in perms:
        h = model.fit(x[perm], y[perm], batch_size=32, epochs=1, shuffle=False, validation_data=test, verbose=0)
        history.append([h.history[k][0] for k in ("loss", "accuracy", "val_loss", "val_accuracy")])
    return init, [w.numpy() for w in model.weights], np.array(history), model


def _as_replica(weights):
    """Keras weights [kernel, bias, ...] as the engine's one-replica parameters."""
    return [(np.asarray(k)[..., None], np.asarray(b)[..., None]) for k, b in zip(weights[::2], weights[1::2])]


@pytest.mark.parametrize("experiment, optimizer", [("shallow_tanh", SGD), ("deep_tanh", SGD), ("deep_relu", SGD),
                                                   ("deep_tanh", ADAM)], ids=["shallow_tanh", "deep_tanh",
                                                                              "deep_relu", "deep_tanh_adam"])
def test_matches_keras_fit(params, data, experiment, optimizer):
    _assert_matches_keras(spec_for(params, experiment), optimizer, data)


def test_an_activation_added_to_the_table_trains_alike_on_both_engines(params, data, monkeypatch):
    """One entry in core/extensions.py's ACTIVATIONS is all a new activation needs: a toy softsign added at run
    time is a valid params.yaml activation, the theory computes with it, and both engines train it to the same
    numbers, as they do the built-in ones."""
    from vanishing_gradients.analysis import theory
    from vanishing_gradients.core import extensions
    from vanishing_gradients.core.models import ModelSpec
    from vanishing_gradients.core.params import validate

    softsign = extensions.Activation(lambda xp, z: z / (1 + xp.abs(z)), lambda a: (1 - abs(a)) ** 2, "softsign")
    monkeypatch.setitem(extensions.ACTIVATIONS, "softsign", softsign)
    params["configs"]["softsign_glorot"] = {"activation": "softsign", "hidden_init": "glorot_uniform",
                                            "output_init": "glorot_uniform"}
    validate(params)
    assert 0 < theory.propagate("softsign", "glorot_uniform", 3, 5, 0.3)["chi"][-1] < 1
    _assert_matches_keras(ModelSpec(3, 5, "softsign", "glorot_uniform", "glorot_uniform"), SGD, data)


def _assert_matches_keras(spec, optimizer, data):
    """Keras's model.fit and the fast engine from the same weights and row orders: losses within 1e-5, accuracies
    equal (but where a prediction sits on the threshold), weights within 1e-4 after EPOCHS epochs."""
    perms = np.stack([np.random.default_rng(e).permutation(500) for e in range(EPOCHS)])
    init, keras_weights, keras_history, model = _keras_reference(spec, optimizer, data, perms)
    cfg = je.Training(spec.activation, optimizer["name"], EPOCHS, 32)
    out = je.train_replicas(cfg, [spec], [0], [optimizer], data, params=_as_replica(init), perms=perms[:, None, :])
    history = out["history"][:, :, 0]  # (epochs, [loss, acc, val_loss, val_acc])
    np.testing.assert_allclose(history[:, [0, 2]], keras_history[:, [0, 2]], rtol=1e-5)
    # accuracies as counts of correct rows (both sets have 500): equal, not merely close
    correct = lambda h: np.round(h[:, [1, 3]] * 500).astype(int)
    mismatched = np.flatnonzero(correct(history) != correct(keras_history))
    if mismatched.size:  # allowed only where a prediction sits on the threshold
        probs = model.predict(np.concatenate([data["train"][0], data["test"][0]]), verbose=0)
        assert np.min(np.abs(probs - 0.5)) < 1e-5, (mismatched, history, keras_history)
    for (kernel, bias), k_kernel, k_bias in zip(out["params"], keras_weights[::2], keras_weights[1::2]):
        np.testing.assert_allclose(kernel[..., 0], k_kernel, atol=1e-4)
        np.testing.assert_allclose(bias[..., 0], k_bias, atol=1e-4)


def _train(spec, seeds, optimizers, data, epochs=EPOCHS, detail=(0,)):
    specs = spec if isinstance(spec, list) else [spec] * len(seeds)
    optimizers = optimizers if isinstance(optimizers, list) else [optimizers] * len(seeds)
    return je.train_replicas(je.Training(specs[0].activation, "sgd", epochs, 32, stats_freq=1, histogram_freq=1),
                             specs, seeds, optimizers, data, detail=detail)


def test_replica_in_a_batch_of_64_matches_it_alone(params, data):
    spec = spec_for(params, "deep_relu")
    batch = _train(spec, list(range(64)), SGD, data)
    alone = _train(spec, [17], SGD, data)
    for (w64, b64), (w1, b1) in zip(batch["params"], alone["params"]):
        np.testing.assert_allclose(w64[..., 17], w1[..., 0], atol=1e-6)
        np.testing.assert_allclose(b64[..., 17], b1[..., 0], atol=1e-6)
    np.testing.assert_allclose(batch["history"][..., 17], alone["history"][..., 0], atol=1e-6)


def test_replicas_of_other_depths_share_a_program(params, data):
    """A depth-2 replica padded among deeper ones trains as it does alone: padding layers pass values and
    gradients through untouched, and its statistics and histograms are its own."""
    depths = [4, 2, 1, 3]
    mixed = _train([spec_for(params, "deep_relu", d) for d in depths], [5, 6, 7, 8], SGD, data, detail=(1, 2))
    alone = _train(spec_for(params, "deep_relu", 2), [6], SGD, data, detail=(0,))
    for layer in (0, 1, -1):  # hidden_1, hidden_2, output
        np.testing.assert_allclose(mixed["params"][layer][0][..., 1], alone["params"][layer][0][..., 0], atol=1e-6)
        np.testing.assert_allclose(mixed["layer_stats"][:, :, layer, 1], alone["layer_stats"][:, :, layer, 0],
                                   rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(mixed["hist_counts"][:, layer, :, 0], alone["hist_counts"][:, layer, :, 0])
    assert np.all(np.isnan(mixed["layer_stats"][:, :, 2:4, 1]))  # hidden_3, hidden_4: not in a depth-2 model
    np.testing.assert_allclose(mixed["history"][..., 1], alone["history"][..., 0], atol=1e-6)
    assert not np.any(mixed["params"][3][0][..., 1])  # its padding layer never moves


def test_chunks_of_other_depths_are_padded_alike(params, data):
    """A chunk holding only depth-1 replicas is padded to the deepest of all chunks, as one program would be."""
    specs = [spec_for(params, "deep_relu", d) for d in (1, 1, 3, 2)]
    # the next test's program: one detail replica in each run of 2, depths padded to 3
    whole = je.train_replicas(CHUNKED, specs, [1, 2, 3, 4], [SGD] * 4, data, detail=[0, 2])
    chunked = je.train_replicas(CHUNKED, specs, [1, 2, 3, 4], [SGD] * 4, data, detail=[0, 2], chunk=2)
    np.testing.assert_allclose(chunked["history"], whole["history"], atol=1e-6)
    np.testing.assert_allclose(chunked["layer_stats"], whole["layer_stats"], rtol=1e-5, atol=1e-7)


def test_runs_go_side_by_side_on_the_cpu_cores(params, data, monkeypatch):
    """A group split into runs (chunk) spreads them over one CPU device per core; the numbers are those of
    the same runs one after another, and a short last run is filled up so that one program serves all."""
    if len(jax.devices("cpu")) < 2:
        pytest.skip("one CPU device: a single core, or JAX started before the engine set its flags")
    specs = [spec_for(params, "deep_relu", d) for d in (1, 2, 3, 2, 1)]
    run = lambda: je.train_replicas(CHUNKED, specs, [1, 2, 3, 4, 5], [SGD] * 5, data, detail=[0, 3, 4], chunk=2)
    program = je.compiled("cpu", True, specs[0].width)
    program.clear_cache()
    side_by_side = run()
    assert program._cache_size() == min(3, len(jax.devices("cpu")))  # one program per device its 3 runs used
    monkeypatch.setattr(je, "_devices", lambda: jax.devices("cpu")[:1])
    one_by_one = run()
    assert side_by_side["history"].shape[-1] == 5 and side_by_side["hist_counts"].shape[-2] == 3
    for key in ("history", "layer_stats", "final", "hist_counts", "hist_ranges"):
        np.testing.assert_array_equal(side_by_side[key], one_by_one[key])


def test_statistics_at_initialisation_match_the_reference_engine(params, data):
    """The in-program statistics of epoch 0 equal the Keras engine's StatisticsRecorder on the same weights."""
    pytest.importorskip("tensorflow", reason="the Keras reference needs TensorFlow")
    from vanishing_gradients.train.keras import StatisticsRecorder, keras
    for study in ("deep_tanh", "deep_relu"):
        spec = spec_for(params, study)
        keras.utils.set_random_seed(4)
        model = build_keras_model(spec)
        model.compile(optimizer="sgd", loss=keras.losses.BinaryCrossentropy())
        recorder = StatisticsRecorder(None, *data["test"], 32, 1, {"stats_freq": 1, "histogram_freq": 1}, True)
        recorder.set_model(model)
        recorder.on_train_begin()
        reference = recorder.arrays()
        # _train's program (test_replica_in_a_batch_of_64_matches_it_alone's for ReLU): one compiled program less
        cfg = je.Training(spec.activation, "sgd", EPOCHS, 32, stats_freq=1, histogram_freq=1)
        ours = je.train_replicas(cfg, [spec], [0], [SGD], data, detail=[0],
                                 params=_as_replica([w.numpy() for w in model.weights]))
        np.testing.assert_allclose(ours["layer_stats"][0, ..., 0], reference["layer_stats"][0], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(ours["hist_counts"][0, ..., 0, :], reference["hist_counts"][0])
        np.testing.assert_allclose(ours["hist_ranges"][0, ..., 0, :], reference["hist_ranges"][0], rtol=1e-5)


def test_same_parameters_twice_are_bit_identical(params, data):
    spec = spec_for(params, "deep_tanh")
    a, b = _train(spec, [1, 2, 3], SGD, data), _train(spec, [1, 2, 3], SGD, data)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("study, depths", [("deep_tanh", [3, 1, 2, 3]), ("deep_relu", [3, 3, 3, 3])],
                         ids=["mixed depths, narrow form", "one depth"])
def test_lighter_optimisation_trains_alike_to_the_last_bits(params, data, monkeypatch, study, depths):
    """CPU programs are compiled with LLVM's optimisation level 1 (program.CPU_OPTIONS): what they train and measure
    is XLA's default level 3's to the last bits (a few weights of these tiny programs one unit of the last place
    apart; seven programs of the default study trained bit for bit alike, benchmarks/README.md), accuracies equal."""
    assert je.CPU_OPTIONS["xla_backend_optimization_level"] == je.NARROW_OPTIONS["xla_backend_optimization_level"] == 1
    specs = [spec_for(params, study, d) for d in depths]
    light = _train(specs, [1, 2, 3, 4], SGD, data, epochs=3)
    for key, options in (("cpu", je.CPU_OPTIONS), ("cpu-narrow", je.NARROW_OPTIONS)):
        default = {**options, "xla_backend_optimization_level": 3}
        monkeypatch.setitem(je._COMPILED, key, jax.jit(je._training, static_argnums=(0, 1, 2, 3),
                                                       compiler_options=default))
    full = _train(specs, [1, 2, 3, 4], SGD, data, epochs=3)
    for a, b in zip(jax.tree.leaves(light["params"]), jax.tree.leaves(full["params"])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(light["history"][:, [1, 3]], full["history"][:, [1, 3]])  # accuracies
    np.testing.assert_allclose(light["history"], full["history"], rtol=1e-6)
    for key in ("layer_stats", "anatomy", "final"):
        np.testing.assert_allclose(light[key], full[key], rtol=1e-5, atol=1e-9)


def test_a_diverging_replica_leaves_the_others_alone(params, data):
    """Replica 1 diverges (NaN); replicas 0 and 2 train bit for bit as in the same program where none does."""
    spec = spec_for(params, "deep_relu")
    settings = [SGD, {**SGD, "learning_rate": 1e30}, SGD]
    out = _train(spec, [1, 2, 3], settings, data)
    assert np.isnan(out["final"][0, 1]) and np.all(np.isfinite(out["final"][:, [0, 2]]))
    healthy = _train(spec, [1, 2, 3], SGD, data)
    for key in ("final", "history", "layer_stats", "anatomy"):
        np.testing.assert_array_equal(out[key][..., [0, 2]], healthy[key][..., [0, 2]], err_msg=key)


def test_initialisers_follow_keras_limits(params):
    he = ji.init_params([spec_for(params, "deep_relu")] * 50, range(50))
    for (kernel, bias), limit in zip(he, [np.sqrt(6 / 2)] + [np.sqrt(6 / 5)] * 4 + [np.sqrt(6 / 6)]):
        assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit and not np.any(bias)
    uniform = np.concatenate([np.ravel(k) for k, _ in ji.init_params([spec_for(params, "deep_tanh")] * 50, range(50))])
    assert uniform.min() >= 0 and uniform.max() <= 1 and uniform.min() < 0.01 and uniform.max() > 0.99


@pytest.mark.parametrize("study", ["deep_relu", "depth_tanh_glorot", "depth_tanh_orthogonal"])
def test_initial_weights_have_keras_distribution(params, study):
    """Per layer, the kernels the engine draws for 80 seeds and those Keras draws for 80 seeds pass a
    two-sample Kolmogorov-Smirnov test (He and Glorot uniform, orthogonal; the engines' seeds differ, their laws
    not)."""
    pytest.importorskip("tensorflow", reason="the Keras reference needs TensorFlow")
    from scipy.stats import ks_2samp

    from vanishing_gradients.train.keras import keras
    spec = spec_for(params, study, depth=5)
    ours = ji.init_params([spec] * 80, range(80))
    # The reference model's own initialisers and kernel shapes, drawn afresh per seed as building the model after
    # keras.utils.set_random_seed would, without building 80 models: bit for bit the built model's kernels
    layers = build_keras_model(spec).layers
    theirs = []
    for seed in range(80):
        keras.utils.set_random_seed(seed)
        theirs.append([np.asarray(layer.kernel_initializer.clone()(layer.kernel.shape)) for layer in layers])
    keras.utils.set_random_seed(0)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(theirs[0], build_keras_model(spec).weights[::2]))
    for layer, (kernel, _) in enumerate(ours):
        keras_kernels = np.concatenate([np.ravel(model[layer]) for model in theirs])
        assert ks_2samp(np.ravel(kernel), keras_kernels).pvalue > 1e-3, f"layer {layer}"


def test_orthogonal_kernels_are_orthogonal_with_keras_orientation(params):
    """keras.initializers.Orthogonal: a 5 x 5 kernel is orthogonal, the 2 x 5 input kernel has orthonormal rows,
    and the 5 x 1 output kernel (here Glorot) is left alone; in a mixed group only orthogonal replicas are."""
    spec = spec_for(params, "depth_tanh_orthogonal", depth=3)
    glorot = spec_for(params, "depth_tanh_glorot", depth=3)
    layers = ji.init_params([spec] * 20 + [glorot] * 5, range(25))
    for kernel, _ in layers[:-1]:
        k = np.moveaxis(np.asarray(kernel), -1, 0)  # (replicas, fan_in, fan_out)
        gram = k[:20] @ np.swapaxes(k[:20], 1, 2)  # rows orthonormal: fan_in <= fan_out here
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(k.shape[1]), gram.shape), atol=1e-5)
        assert not np.allclose(k[20:] @ np.swapaxes(k[20:], 1, 2), np.eye(k.shape[1]), atol=1e-2)
    assert np.abs(np.asarray(layers[-1][0])).max() <= np.sqrt(6 / 6)


def test_in_program_histograms_equal_tensorboards():
    values = np.random.default_rng(0).normal(size=(400, 7)).astype(np.float32)  # (n, K)
    values[:, 3] = 0.25  # one replica with a single value
    counts, ranges = jax.jit(jst.histogram)(values)
    for k in range(values.shape[1]):
        expected = tensor_util.make_ndarray(histogram_pb("x", values[:, k].astype(np.float64)).value[0].tensor)
        np.testing.assert_array_equal(np.asarray(counts)[k], expected[:, 2])
        np.testing.assert_allclose(np.asarray(ranges)[k], [expected[0, 0], expected[-1, 1]], rtol=1e-6)


def test_engine_and_event_files_need_no_tensorflow(params, data, tmp_path):
    """Train a study, write and read back its events in a fresh interpreter: TensorFlow and Keras never load."""
    code = f"""
import collections, sys, yaml
from vanishing_gradients.train.jax import groups as jax_train
from vanishing_gradients.record import events
from vanishing_gradients.record import runs as run_events
from vanishing_gradients.core import study
from vanishing_gradients.core.data import arrays, make_dataset
p = yaml.safe_load(open({str(tmp_path / "p.yaml")!r}))
frame = make_dataset(p["data"])
data = {{"train": arrays(frame, "train"), "test": arrays(frame, "test")}}
device, _ = jax_train.jax_device("cpu")
variants = study.variants(p, "deep_relu")
parts = collections.defaultdict(float)
for variant, out in jax_train.train_groups(variants, p["train"], p["events"], data, device, print, parts):
    run_events.write_variant({str(tmp_path / "run")!r}, variant, out, p["train"], p["events"])
scalars, histograms = events.read_events({str(tmp_path / "run" / "seed_1")!r})
assert len(scalars) and len(histograms)
assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "TensorFlow was imported"
assert parts["compile"] > 0 and parts["programs"] > 0  # a fresh process makes its program: JAX timed it
"""
    import yaml
    params["train"].update(epochs=2, seeds=[1])
    params["events"].update(stats_freq=1, histogram_freq=1)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([sys.executable, "-c", code], check=True)


def test_validation_gradients_match_the_reference_engine(params, data):
    """Per-batch kernel gradients on the validation data, as the Keras engine computes them with TensorFlow."""
    pytest.importorskip("tensorflow", reason="the Keras reference needs TensorFlow")
    from vanishing_gradients.train.keras import keras, validation_gradients
    spec = spec_for(params, "deep_relu")
    keras.utils.set_random_seed(2)
    model = build_keras_model(spec)
    model.compile(optimizer="sgd", loss=keras.losses.BinaryCrossentropy())
    reference = validation_gradients(model, *data["test"], batch_size=32)()  # batches x layers
    weights = _as_replica([w.numpy() for w in model.weights])
    first, middle, output = jst.val_grads(jm.pack(weights), jst.validation_batches(*data["test"], 32), "relu", None)
    for layer, grads in enumerate([first, *np.moveaxis(np.asarray(middle), 1, 0), output]):  # per layer
        np.testing.assert_allclose(np.asarray(grads)[..., 0], np.stack([b[layer] for b in reference]),
                                   rtol=1e-4, atol=1e-7)


def test_validation_gradients_same_for_few_and_many_replicas(params, data):
    spec = spec_for(params, "deep_tanh")
    many = ji.init_params([spec] * (jst.VMAP_REPLICAS + 1), range(jst.VMAP_REPLICAS + 1))  # batches one at a time
    few = jax.tree.map(lambda a: a[..., :3], many)  # all batches at once
    val = jst.validation_batches(*data["test"], 32)
    for a, b in zip(jst.val_grads(jm.pack(many), val, "tanh", None), jst.val_grads(jm.pack(few), val, "tanh", None)):
        np.testing.assert_allclose(np.asarray(a)[..., :3], np.asarray(b), rtol=1e-5, atol=1e-6)  # float32 sums


@pytest.mark.parametrize("experiment, activation", [("deep_tanh", "tanh"), ("deep_relu", "relu")])
def test_forward_passes_of_a_few_rows_match_all_rows_at_once(params, data, experiment, activation):
    """Validation metrics and unit states computed a few rows at a time (as on CPU, jst.pass_rows), the last pass
    padded, equal those over all rows at once; for ReLU with one unit made dead, and tanh with saturated units."""
    weights = ji.init_params([spec_for(params, experiment)] * 3, range(3))
    (kernel, bias), *rest = weights
    weights = jm.pack([(kernel.at[:, 0, 1].set(0.0), bias.at[0, 1].set(-1.0)), *rest])  # replica 1, unit 0: dead
    x, y = (np.asarray(a, np.float32) for a in data["test"])  # 500 rows: the last pass of 32 holds 20
    whole = jst.loss_and_accuracy(weights, x, y, activation, None, 0.5)
    whole_states = jst.unit_states(weights, x, activation, None)
    for rows in (32, 7):
        np.testing.assert_allclose(jst.loss_and_accuracy(weights, x, y, activation, None, 0.5, rows), whole,
                                   rtol=1e-6)
        for ours, expected in zip(jst.unit_states(weights, x, activation, None, rows), whole_states):
            np.testing.assert_array_equal(ours, expected)
    saturated, dead = whole_states  # (n_hidden, K)
    if activation == "relu":
        assert dead[0, 1] >= 1 / 5  # at least the unit made dead, of 5
    else:
        assert saturated.max() > 0.1  # the deepest layers saturate (uniform [0, 1] weights)


def test_programs_side_by_side_give_the_numbers_of_one_at_a_time(params, data):
    """On a CPU, train_groups makes and runs programs side by side (one per CPU device): a narrow program
    (rolled scans, no fusion emitters) and a wide one (the default form) traced at once in two threads give
    what each gives alone, bit for bit, in the same order."""
    import collections

    from vanishing_gradients.core.study import variants
    from vanishing_gradients.train.jax import groups
    params["train"].update(epochs=2, seeds=[1, 2])
    params["events"].update(stats_freq=1, histogram_freq=1)
    params["studies"]["breadth"].update(depths=[1, 2], widths=[5, 12], seeds=2)
    todo = variants(params, "breadth")
    device = groups.jax_device("cpu")[0]
    trained = {}
    for in_flight in (2, 1):  # side by side first, so that both programs are traced at once
        jax.clear_caches()
        parts = collections.defaultdict(float)
        trained[in_flight] = list(groups.train_groups(todo, params["train"], params["events"], data, device,
                                                      lambda _: None, parts, in_flight=in_flight))
        assert parts["compile"] > 0 and parts["programs"] >= 0
    assert [v.name for v, _ in trained[2]] == [v.name for v, _ in trained[1]]
    assert sorted(v.name for v, _ in trained[1]) == sorted(v.name for v in todo)
    for (_, side_by_side), (_, alone) in zip(trained[2], trained[1]):
        for key in alone:
            np.testing.assert_array_equal(side_by_side[key], alone[key], err_msg=key)
