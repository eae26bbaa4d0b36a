"""One command per pipeline stage: `vgrad <stage> ...`, called alike by Snakemake and DVC.

Every stage validates params.yaml first and writes its outputs atomically, so bad input
changes nothing and a failed or killed stage never leaves a half-written output.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import params as params_mod
from .errors import StageError
from .fileio import atomic_path, write_json
from .provenance import timed


def _log(stage: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} {stage}] {message}", flush=True)


def cmd_params(args, params):
    """Write the validated parameters as JSON: the report's record of what produced it."""
    write_json(args.out, params)


def cmd_data(args, params):
    from .dataset import make_dataset, plot_dataset

    frame = make_dataset(params["data"])
    with atomic_path(args.out_csv) as csv, atomic_path(args.out_plot) as png:
        frame.to_csv(csv, index=False, float_format="%.17g")
        plot_dataset(frame, png, params["data"]["noise"])
    _log("data", f"{len(frame)} points ({(frame['split'] == 'train').sum()} train) -> {args.out_csv}")


def cmd_train(args, params, record):
    _require_experiment(params, args.experiment)
    import pandas as pd

    from .dataset import arrays, read_dataset
    from .models import spec_for
    from .provenance import versions
    from .training import seed_dir, train_seeds

    frame = read_dataset(args.data)
    data = {"train": arrays(frame, "train"), "test": arrays(frame, "test")}
    spec, train = spec_for(params, args.experiment), params["train"]
    optimizer = params_mod.optimizer_for(params, args.experiment)
    seeds, stage = train["seeds"], f"train {args.experiment}"
    with atomic_path(args.out, is_dir=True) as out:
        _log(stage, f"{len(seeds)} seeds x {train['epochs']} epochs on the {train['engine']} engine")
        start = time.time()
        device, runs = train_seeds(args.experiment, spec, optimizer, train, params["events"]["histogram_freq"],
                                   data, out, args.threads)
        record.update(engine=train["engine"], device=device, n_models=len(seeds))
        for i, (seed, history, final) in enumerate(runs, 1):
            pd.DataFrame(history).to_csv(seed_dir(out, seed) / "history.csv", index=False, float_format="%.9g")
            write_json(seed_dir(out, seed) / "final.json", final)
            _log(stage, f"seed {seed} ({i}/{len(seeds)}) done at {time.time() - start:.1f} s: train acc "
                 f"{final['accuracy_train']:.3f}, test acc {final['accuracy_test']:.3f}"
                 f"{' DIVERGED' if final['diverged'] else ''}")
        write_json(out / "run.json", {"experiment": args.experiment, "engine": train["engine"], "device": device,
                                      "layers": spec.layer_names, "seeds": seeds, "versions": versions()})


def cmd_gradients(args, params):
    _require_experiment(params, args.experiment)
    from .extract import extract_experiment, write_tables
    from .models import spec_for

    scalars, histograms = extract_experiment(args.experiment, args.runs, params["train"]["seeds"],
                                             params["train"]["epochs"], spec_for(params, args.experiment).layer_names)
    with atomic_path(args.out, is_dir=True) as out:
        write_tables(scalars, histograms, out)
    _log(f"gradients {args.experiment}", f"{len(scalars)} scalar and {len(histograms)} histogram rows -> {args.out}")


def cmd_metrics(args, params):
    from .extract import read_scalars
    from .metrics import gradient_profile, learning_curves, summarise
    from .models import spec_for

    experiments = list(params["experiments"])
    scalars = read_scalars(args.tables, experiments)
    summary = summarise(scalars, experiments, params["events"]["success_accuracy"])
    layers = {e: spec_for(params, e).layer_names for e in experiments}
    with atomic_path(args.plots, is_dir=True) as plots:
        learning_curves(scalars).to_csv(plots / "learning_curves.csv", index=False)
        gradient_profile(scalars, layers).to_csv(plots / "gradients_per_layer.csv", index=False)
    write_json(args.out, summary)
    for name, entry in summary.items():
        _log("metrics", f"{name}: test acc {entry['test_accuracy']['mean']} "
             f"(sd {entry['test_accuracy']['sd']}), success rate {entry['success_rate']}")


def cmd_report(args, params):
    from .report import build_report

    inputs = {k: str(v) for k, v in vars(args).items() if k.startswith("in_")}
    with atomic_path(args.out) as html:
        build_report(args.notebook, inputs, html)
    _log("report", f"-> {args.out}")


def _require_experiment(params: dict, name: str) -> None:
    if name not in params["experiments"]:
        raise params_mod.ParamsError(f"experiment {name!r} is not in params.yaml experiments "
                                     f"({', '.join(params['experiments'])})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgrad", description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True)

    def stage(name, func, help, **paths):
        sub = stages.add_parser(name, help=help)
        sub.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params file")
        sub.add_argument("--timings", type=Path, help="folder where this stage records its wall time (JSON)")
        for option, text in paths.items():
            sub.add_argument(f"--{option.replace('_', '-')}", dest=option, type=Path, required=True, help=text)
        sub.set_defaults(func=func)
        return sub

    stage("params", cmd_params, "validate params.yaml and write it as JSON", out="resolved parameters (JSON)")
    stage("data", cmd_data, "make the two-circles dataset", out_csv="dataset CSV", out_plot="scatter plot PNG")
    train = stage("train", cmd_train, "train every seed of one experiment", data="dataset CSV",
                  out="run folder: one TensorBoard logdir per seed")
    train.add_argument("--experiment", required=True)
    train.add_argument("--threads", type=int, default=1, help="CPU threads for the keras engine")
    grads = stage("gradients", cmd_gradients, "extract tables from one experiment's event files",
                  runs="run folder of the experiment", out="tables folder")
    grads.add_argument("--experiment", required=True)
    stage("metrics", cmd_metrics, "summarise over seeds", tables="tables folder (one per experiment)",
          out="metrics JSON", plots="plot-data folder")
    stage("report", cmd_report, "build the HTML report", notebook="the report notebook", out="HTML file",
          in_params="resolved params JSON", in_dataset="dataset CSV", in_dataset_plot="scatter PNG",
          in_tables="tables folder", in_metrics="metrics JSON", in_plots="plot-data folder", in_runs="runs folder",
          in_timings="timings folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        params = params_mod.load(args.params)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    experiment = getattr(args, "experiment", None)
    timing = args.timings / f"{args.stage}{'_' + experiment if experiment else ''}.json" if args.timings else None
    try:
        with timed(args.stage, timing, experiment=experiment) as record:
            if args.func is cmd_train:
                cmd_train(args, params, record)
            else:
                args.func(args, params)
    except (StageError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
