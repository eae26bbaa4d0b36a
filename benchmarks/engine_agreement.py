"""Do the two engines agree where success is a coin toss? Keras `model.fit` and the fast engine, many
seeds each, at the edge of each configuration's trainable depth.

    python benchmarks/engine_agreement.py                       # relu_he at depth 15, tanh_glorot at 18, 40 seeds
    python benchmarks/engine_agreement.py --cases relu_he:15 --seeds 60 --workers 2

Both engines train the configuration exactly as params.yaml's study does (data, epochs, batch size,
optimiser). Per case, three comparisons:
- independent: seeds 1..N on each engine. Their seeds draw different weights and batch orders (each engine has
  its own random numbers), so the two are independent samples of one law: success rates (test accuracy >=
  events.success_accuracy) with Fisher's exact test, test accuracies with the Mann-Whitney U test;
- same draws: the fast engine trained from the Keras fits' own initial weights and batch orders, seed by seed:
  successes on each, on both, and McNemar's exact test on the seeds where they differ (training near the edge
  is chaotic, so float32 rounding alone parts many pairs, but it cannot favour one engine);
- many seeds: the fast engine's success rate over seeds 1..M (cheap), with its Wilson interval, against Keras's
  by Fisher's exact test: 40 seeds a side leave a wide margin to chance.
A Keras fit takes about a minute, so each result is appended to `--cache` as it finishes and a re-run resumes
from it (rows of another version of the reference engine, told by its source's hash, are not reused). The last
line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np


def _data(params: dict) -> dict:
    from vanishing_gradients.core.data import arrays, make_dataset
    frame = make_dataset(params["data"])
    return {"train": arrays(frame, "train"), "test": arrays(frame, "test")}


def _spec(params: dict, config: str, depth: int):
    from vanishing_gradients.core.models import ModelSpec
    c = params["configs"][config]
    return (ModelSpec(depth=depth, width=5, activation=c["activation"], hidden_init=c["hidden_init"],
                      output_init=c["output_init"]), c.get("optimizer", params["train"]["optimizer"]))


def reference_version() -> str:
    """The reference engine's source hash: cached Keras fits count only for the code that produced them."""
    from vanishing_gradients.train import keras as reference
    return hashlib.sha256(Path(reference.__file__).read_bytes()).hexdigest()[:12]


def keras_fit(params: dict, config: str, depth: int, seed: int) -> dict:
    """One Keras model.fit as the reference engine trains it (without its statistics callback, which
    tests/test_keras_engine.py shows changes nothing): final test loss and accuracy."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from vanishing_gradients.train.keras import build_keras_model, configure, fit, keras, keras_optimizer
    configure(1)
    data = _data(params)
    spec, optimizer = _spec(params, config, depth)
    train = params["train"]
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = build_keras_model(spec)
    model.compile(optimizer=keras_optimizer(optimizer), loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=train["threshold"])])
    fit(model, data, train, seed)
    loss, accuracy = model.evaluate(*data["test"], batch_size=train["batch_size"], verbose=0)
    return {"engine": "keras", "reference": reference_version(), "config": config, "depth": depth, "seed": seed,
            "loss_test": float(loss),
            "accuracy_test": float(accuracy), "fit_s": round(time.perf_counter() - start, 1)}


def keras_draws(spec, seeds: list[int], epochs: int, n: int) -> tuple[list, np.ndarray]:
    """What the reference engine draws for each seed: its initial weights, in the fast engine's parameter layout
    (per layer (kernel, bias), seed axis last), and its batch orders (epochs, seeds, n)."""
    from vanishing_gradients.train.keras import build_keras_model, epoch_orders, keras
    weights = []
    for seed in seeds:
        keras.utils.set_random_seed(seed)  # as train_one draws them
        weights.append([w.numpy() for w in build_keras_model(spec).weights])  # kernel, bias, kernel, ...
    init = [(np.stack([w[i] for w in weights], -1), np.stack([w[i + 1] for w in weights], -1))
            for i in range(0, len(weights[0]), 2)]
    return init, np.stack([epoch_orders(seed, epochs, n) for seed in seeds], axis=1)


def jax_fits(params: dict, config: str, depth: int, seeds: list[int], same_draws: bool = False) -> list[dict]:
    """Every seed on the fast engine, in one program; with `same_draws`, from the reference engine's initial
    weights and batch orders (keras_draws) instead of its own."""
    import jax
    jax.config.update("jax_platforms", "cpu")
    from vanishing_gradients.core.statistics import MODEL
    from vanishing_gradients.train.jax import program
    data = _data(params)
    spec, optimizer = _spec(params, config, depth)
    train, events = params["train"], params["events"]
    cfg = program.Training(spec.activation, optimizer["name"], train["epochs"], train["batch_size"],
                           train["threshold"], events["stats_freq"], events["histogram_freq"])
    init, perms = keras_draws(spec, seeds, train["epochs"], len(data["train"][0])) if same_draws else (None, None)
    out = program.train_replicas(cfg, [spec] * len(seeds), seeds, [optimizer] * len(seeds), data, detail=[],
                                 params=init, perms=perms, chunk=len(seeds))
    final = np.asarray(out["final"])  # (4, seeds)
    return [{"engine": "jax", "config": config, "depth": depth, "seed": s,
             "loss_test": float(final[MODEL["loss_test"], i]), "accuracy_test": float(final[MODEL["accuracy_test"], i])}
            for i, s in enumerate(seeds)]


def compare(rows: list[dict], success: float, n_test: int) -> dict:
    """Success rates (accuracy >= success, as the study counts them) with Fisher's exact test, accuracies with
    Mann-Whitney U, Keras against the fast engine. Accuracies are compared as counts of correct test rows: the two
    engines' float32 means of the same count differ in the last bit, which would break the many ties (every
    constant-output network scores the same) and make the U test see a difference that is not there."""
    from scipy.stats import fisher_exact, mannwhitneyu
    acc = {e: np.array([r["accuracy_test"] for r in rows if r["engine"] == e]) for e in ("keras", "jax")}
    wins = {e: int(np.sum(a >= success)) for e, a in acc.items()}
    acc = {e: np.round(a * n_test) / n_test for e, a in acc.items()}
    table = [[wins[e], len(acc[e]) - wins[e]] for e in ("keras", "jax")]
    return {"seeds": {e: len(a) for e, a in acc.items()}, "succeeded": wins,
            "success_rate": {e: round(wins[e] / len(a), 3) for e, a in acc.items()},
            "fisher_p": round(float(fisher_exact(table)[1]), 4),
            "median_accuracy": {e: round(float(np.median(a)), 4) for e, a in acc.items()},
            "mann_whitney_p": round(float(mannwhitneyu(acc["keras"], acc["jax"]).pvalue), 4)}


def same_draws(keras_rows: list[dict], jax_rows: list[dict], success: float, n_test: int) -> dict:
    """Seed by seed, the two engines from the same weights and batch orders: successes on each and on both, the
    seeds whose final test accuracies are equal (to one test row), and McNemar's exact test (a binomial test on
    the seeds that succeed on one engine only)."""
    from scipy.stats import binomtest
    by_seed = {r["seed"]: r["accuracy_test"] for r in jax_rows}
    pairs = np.array([(r["accuracy_test"], by_seed[r["seed"]]) for r in keras_rows])  # (seeds, 2): keras, jax
    wins = pairs >= success
    only_keras, only_jax = int(np.sum(wins[:, 0] & ~wins[:, 1])), int(np.sum(~wins[:, 0] & wins[:, 1]))
    discordant = only_keras + only_jax
    return {"succeeded": {"keras": int(wins[:, 0].sum()), "jax": int(wins[:, 1].sum())},
            "both": int(np.sum(wins.all(axis=1))),
            "same_accuracy": int(np.sum(np.abs(pairs[:, 0] - pairs[:, 1]) < 0.5 / n_test)),
            "mcnemar_p": round(float(binomtest(only_keras, discordant).pvalue), 4) if discordant else 1.0}


def many_seeds(keras_rows: list[dict], jax_rows: list[dict], success: float) -> dict:
    """The fast engine's success rate over many seeds, with its Wilson 95% interval, and Fisher's exact test
    of Keras's rate against it."""
    from scipy.stats import binomtest, fisher_exact
    wins = {e: int(sum(r["accuracy_test"] >= success for r in rows)) for e, rows in (("keras", keras_rows),
                                                                                     ("jax", jax_rows))}
    interval = binomtest(wins["jax"], len(jax_rows)).proportion_ci(method="wilson")
    table = [[wins["keras"], len(keras_rows) - wins["keras"]], [wins["jax"], len(jax_rows) - wins["jax"]]]
    return {"seeds": {"keras": len(keras_rows), "jax": len(jax_rows)}, "succeeded": wins,
            "jax_rate": [round(wins["jax"] / len(jax_rows), 3), *(round(float(b), 3) for b in interval)],
            "fisher_p": round(float(fisher_exact(table)[1]), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--cases", default="relu_he:15,tanh_glorot:18", help="config:depth, comma-separated")
    parser.add_argument("--seeds", type=int, default=40, help="seeds 1..N on each engine")
    parser.add_argument("--fast-seeds", type=int, default=400, help="seeds 1..M on the fast engine alone")
    parser.add_argument("--workers", type=int, default=1, help="Keras fits side by side (one core each)")
    parser.add_argument("--cache", default="benchmarks/.engine_agreement.jsonl")
    args = parser.parse_args()
    from vanishing_gradients.core.params import load
    params = load(args.params)  # read once: the workers train what it said when the benchmark started
    cases = [(c, int(d)) for c, d in (case.split(":") for case in args.cases.split(","))]
    seeds = list(range(1, args.seeds + 1))
    cache = Path(args.cache)
    rows = [json.loads(line) for line in cache.read_text().splitlines()] if cache.exists() else []
    done = [r for r in rows if r.get("reference") == reference_version()]
    have = {(r["engine"], r["config"], r["depth"], r["seed"]) for r in done}
    todo = [(c, d, s) for c, d in cases for s in seeds if ("keras", c, d, s) not in have]
    print(f"{len(todo)} Keras fits to go ({len(have)} cached in {cache})", flush=True)
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool, cache.open("a") as log:
        futures = [pool.submit(keras_fit, params, c, d, s) for c, d, s in todo]
        for i, future in enumerate(as_completed(futures), 1):
            row = future.result()
            done.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"[{i}/{len(todo)}] keras {row['config']} depth {row['depth']} seed {row['seed']}: "
                  f"test acc {row['accuracy_test']:.3f} in {row['fit_s']} s", flush=True)
    result = {"epochs": params["train"]["epochs"], "success_accuracy": params["events"]["success_accuracy"]}
    for config, depth in cases:
        keras_rows = [r for r in done if r["config"] == config and r["depth"] == depth and r["seed"] in seeds]
        n_test = params["data"]["n_samples"] - params["data"]["n_train"]
        success = params["events"]["success_accuracy"]
        case = compare(keras_rows + jax_fits(params, config, depth, seeds), success, n_test)
        case["same_draws"] = same_draws(keras_rows, jax_fits(params, config, depth, seeds, same_draws=True),
                                        success, n_test)
        many = jax_fits(params, config, depth, list(range(1, args.fast_seeds + 1)))
        case["many_seeds"] = many_seeds(keras_rows, many, success)
        result[f"{config}:{depth}"] = case
        print(f"{config} depth {depth}: {case}", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
