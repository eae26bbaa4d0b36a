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
    params_mod.require_study(params, args.study)
    from .dataset import arrays, read_dataset
    from .provenance import versions
    from .run_events import write_variant
    from .study import variants
    from .training import train_variants

    frame = read_dataset(args.data)
    data = {"train": arrays(frame, "train"), "test": arrays(frame, "test")}
    train, events, stage = params["train"], params["events"], f"train {args.study}"
    todo = variants(params, args.study)
    n_models = sum(len(v.seeds) for v in todo)
    with atomic_path(args.out, is_dir=True) as out:
        _log(stage, f"{len(todo)} variants, {n_models} models x {train['epochs']} epochs on the "
             f"{train['engine']} engine")
        start = time.time()
        device, trained = train_variants(todo, train, events, data, args.threads, lambda m: _log(stage, m))
        record.update(engine=train["engine"], device=device, n_models=n_models)
        for i, (variant, result) in enumerate(trained, 1):
            seeds = write_variant(out / variant.name, variant, result, train, events)
            accuracy = [s["accuracy_test"] for s in seeds]
            lost = sum(s["diverged"] for s in seeds)
            _log(stage, f"[{i}/{len(todo)}] {variant.name} at {time.time() - start:.1f} s: test acc "
                 f"{min(accuracy):.3f}..{max(accuracy):.3f} over {len(seeds)} seeds"
                 f"{f', {lost} DIVERGED' if lost else ''}")
        write_json(out / "run.json", {"study": args.study, "engine": train["engine"], "device": device,
                                      "variants": [v.name for v in todo], "n_models": n_models,
                                      "train_s": round(time.time() - start, 3), "versions": versions()})


def cmd_gradients(args, params):
    params_mod.require_study(params, args.study)
    from .extract import extract_study, write_tables
    from .study import variants

    tables = extract_study(args.runs, variants(params, args.study), params["train"]["epochs"], params["events"])
    with atomic_path(args.out, is_dir=True) as out:
        write_tables(tables, out)
    _log(f"gradients {args.study}", ", ".join(f"{len(t)} {name} rows" for name, t in tables.items())
         + f" -> {args.out}")


def cmd_metrics(args, params):
    from .metrics import analyse, headline_metrics, plot_data, round_frame

    tables = analyse(params, args.tables)
    metrics = headline_metrics(params, tables)
    with atomic_path(args.plots, is_dir=True) as plots:
        for name, frame in plot_data(params, tables).items():
            round_frame(frame).to_csv(plots / name, index=False)
    write_json(args.out, metrics)
    for name, entry in metrics["studies"].items():
        _log("metrics", f"{name}: test acc {entry['accuracy_test']['mean']} {entry['accuracy_test']['low']}.."
             f"{entry['accuracy_test']['high']}, success rate {entry['success_rate']['rate']}")
    for name, entry in metrics["trainable_depth"].items():
        _log("metrics", f"trainable depth {name}: {entry['depth']} ({entry['low']}..{entry['high']})")


def cmd_report(args, params):
    from .report import build_report

    inputs = {k: str(v) for k, v in vars(args).items() if k.startswith("in_")}
    with atomic_path(args.out) as html:
        build_report(args.notebook, inputs, html)
    _log("report", f"-> {args.out}")


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
    train = stage("train", cmd_train, "train every variant and seed of one study", data="dataset CSV",
                  out="run folder: one TensorBoard logdir per variant and per seed")
    train.add_argument("--study", required=True)
    train.add_argument("--threads", type=int, default=1, help="CPU threads for the keras engine")
    grads = stage("gradients", cmd_gradients, "extract tables from one study's event files",
                  runs="run folder of the study", out="tables folder")
    grads.add_argument("--study", required=True)
    stage("metrics", cmd_metrics, "statistics over seeds", tables="tables folder (one per study)",
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
    study = getattr(args, "study", None)
    timing = args.timings / f"{args.stage}{'_' + study if study else ''}.json" if args.timings else None
    try:
        with timed(args.stage, timing, study=study) as record:
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
