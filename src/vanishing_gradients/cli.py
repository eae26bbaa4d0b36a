"""One command per pipeline stage: `vgrad <stage> ...`, called alike by Snakemake and DVC.

Each stage's work is the `run(args, params, timing)` function of its own module (STAGES), imported only
when that stage runs, so a stage loads (and depends on) its own code alone. Every stage validates
params.yaml first and writes its outputs atomically, so bad input changes nothing and a failed or killed
stage never leaves a half-written output; with --manifests it then lists what it published and read
(core/manifests.py), and as part of a Snakemake or DVC run it first claims the folder (core/pipeline.py).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .core import params as params_mod
from .core import manifests, pipeline
from .core.errors import StageError
from .core.provenance import timed

# stage -> (module holding its run(), help, {option: help} of the paths it takes)
STAGES = {
    "params": ("core.params", "validate params.yaml and write it as JSON", {"out": "resolved parameters (JSON)"}),
    "data": ("core.data", "make the two-circles dataset", {"out_csv": "dataset CSV", "out_plot": "scatter plot PNG"}),
    "train": ("train.stage", "train every variant and seed of one study",
              {"data": "dataset CSV", "out": "run folder: one TensorBoard logdir per variant and per seed"}),
    "gradients": ("record.gradients", "extract tables from one study's event files",
                  {"runs": "run folder of the study", "out": "tables folder"}),
    "metrics": ("analysis.metrics", "statistics over seeds",
                {"tables": "tables folder (one per study)", "out": "metrics JSON", "plots": "plot-data folder"}),
    "report": ("report.stage", "build the HTML report",
               {"notebook": "the report notebook", "out": "HTML file", "in_params": "resolved params JSON",
                "in_dataset": "dataset CSV", "in_dataset_plot": "scatter PNG", "in_tables": "tables folder",
                "in_metrics": "metrics JSON", "in_plots": "plot-data folder", "in_runs": "runs folder",
                "in_timings": "timings folder"}),
}
PER_STUDY = ("train", "gradients")  # stages run once per study (--study)
OUTPUTS = ("out", "out_csv", "out_plot", "plots")  # the path options a stage writes (the rest it reads)
UNLISTED = ("in_timings",)  # read for provenance only: every stage run changes them, so no manifest lists them


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgrad", description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True)
    for name, (_, help, paths) in STAGES.items():
        sub = stages.add_parser(name, help=help)
        sub.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params file")
        sub.add_argument("--timings", type=Path, help="folder where this stage records its wall time (JSON)")
        sub.add_argument("--manifests", type=Path, help="folder of the manifests of what each stage published "
                         "(core/manifests.py) and of the pipeline run working in this folder (core/pipeline.py)")
        for option, text in paths.items():
            sub.add_argument(f"--{option.replace('_', '-')}", dest=option, type=Path, required=True, help=text)
        if name in PER_STUDY:
            sub.add_argument("--study", required=True)
        if name == "train":
            sub.add_argument("--threads", type=int, default=1, help="CPU threads for the keras engine")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    pipeline.die_with_launcher()
    study = getattr(args, "study", None)
    timing_path = args.timings / f"{args.stage}{'_' + study if study else ''}.json" if args.timings else None
    try:
        run = pipeline.launcher()
        if run is not None and args.manifests is not None:
            pipeline.claim(pipeline.lock_path(args.manifests), *run)
        params = params_mod.load(args.params)
        if study is not None:
            params_mod.require_study(params, study)
        stage = importlib.import_module(f".{STAGES[args.stage][0]}", __package__)
        with timed(args.stage, timing_path, study=study) as timing:
            stage.run(args, params, timing)
        if args.manifests is not None:
            paths = STAGES[args.stage][2]
            manifests.write(manifests.path(args.manifests, args.stage, study), args.stage, study,
                          outputs=[getattr(args, option) for option in paths if option in OUTPUTS],
                          inputs=[getattr(args, option) for option in paths
                                  if option not in OUTPUTS + UNLISTED])
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a missing input, a full disk, a folder that cannot be written: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; nothing of this stage was published", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
