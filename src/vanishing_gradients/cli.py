"""One command per pipeline stage: `vgrad <stage> ...`, called alike by Snakemake and DVC.

Each stage's work is the `run(args, params, record)` function of its own module (STAGES), imported only
when that stage runs, so a stage loads (and depends on) its own code alone. Every stage validates
params.yaml first and writes its outputs atomically, so bad input changes nothing and a failed or killed
stage never leaves a half-written output.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
from pathlib import Path

from .core import params as params_mod
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vgrad", description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True)
    for name, (_, help, paths) in STAGES.items():
        sub = stages.add_parser(name, help=help)
        sub.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params file")
        sub.add_argument("--timings", type=Path, help="folder where this stage records its wall time (JSON)")
        for option, text in paths.items():
            sub.add_argument(f"--{option.replace('_', '-')}", dest=option, type=Path, required=True, help=text)
        if name in PER_STUDY:
            sub.add_argument("--study", required=True)
        if name == "train":
            sub.add_argument("--threads", type=int, default=1, help="CPU threads for the keras engine")
    return parser


def _gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:  # no such process (or no /proc: ask the process table)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False


def _die_with_launcher() -> None:
    """With VGRAD_DIE_WITH=<pid> (the train rules pass their tool's pid): stop as soon as that process is gone, so
    that a killed Snakemake or DVC leaves no trainer running on to publish a run the next run cannot trust. What
    it was writing stays a hidden temporary that the next writer removes (core/fileio.py)."""
    pid = os.environ.get("VGRAD_DIE_WITH", "")
    if not pid.isdigit():
        return

    def watch():
        while not _gone(int(pid)):
            time.sleep(0.5)
        print(f"error: the run that started this job (process {pid}) is gone: stopping", file=sys.stderr, flush=True)
        os._exit(3)
    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _die_with_launcher()
    try:
        params = params_mod.load(args.params)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    study = getattr(args, "study", None)
    timing = args.timings / f"{args.stage}{'_' + study if study else ''}.json" if args.timings else None
    try:
        if study is not None:
            params_mod.require_study(params, study)
        stage = importlib.import_module(f".{STAGES[args.stage][0]}", __package__)
        with timed(args.stage, timing, study=study) as record:
            stage.run(args, params, record)
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
