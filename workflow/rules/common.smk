# Shared by every rule: paths, validated parameters, the package files each rule runs, and the manifests the
# rules declare as their outputs (vanishing_gradients/core/manifests.py says why).
import glob
import os

import yaml
from snakemake.logging import logger

from vanishing_gradients.core import cost, fileio, manifests, pipeline
from vanishing_gradients.core.errors import StageError
from vanishing_gradients.core.params import load


with open("workflow/paths.yaml") as f:
    PATHS, CODE = (lambda paths: (paths["paths"], paths["code"]))(yaml.safe_load(f))



def checked(func, *args):
    """Run a check of the package, turning its error into a WorkflowError that Snakemake reports plainly."""
    try:
        return func(*args)
    except StageError as err:
        raise WorkflowError(str(err)) from None


if config:  # --config or --configfile: the stages would not see them, since every vgrad command reads params.yaml
    raise WorkflowError("this workflow takes its parameters from params.yaml alone: change them there "
                        "(or try a value with dvc exp run -S key=value)")
# params.yaml read and validated as every vgrad command and DVC read it (core/yaml12.py): errors name the key
config.update(checked(load, PATHS["params"]))

STUDIES = list(config["studies"])
# The events settings that runs and their tables are made with: all but success_accuracy and failure, which only
# the metrics read (changing them re-runs the metrics and the report, not the training). dvc.yaml lists the same.
RUN_EVENTS = {key: value for key, value in config["events"].items() if key not in ("success_accuracy", "failure")}


def flat(entries):
    """paths.yaml's `code` entries with the shared lists spliced in."""
    return [e for entry in entries for e in (flat(entry) if isinstance(entry, list) else [entry])]


def stage_code(stage):
    """The package files `stage` runs (paths.yaml `code`), a folder as every .py and .yaml file in it."""
    files = []
    for entry in flat(CODE[stage]):
        path = f"{PATHS['package']}/{entry}"
        files += sorted(glob.glob(f"{path}/**/*.py", recursive=True) + glob.glob(f"{path}/**/*.yaml", recursive=True)) \
            if os.path.isdir(path) else [path]
    return files


def train_priority(wildcards):
    """A study's estimated seconds (core/cost.py): the longest train jobs start first, so that none is left running
    alone at the end while the other cores idle; making a program an earlier study makes too does not count."""
    return round(cost.priority_seconds(config, wildcards.study))


def study_params(wildcards):
    """The parts of params.yaml one study's training reads (Snakemake reruns it when they change)."""
    study = config["studies"][wildcards.study]
    return {"study": study, "configs": {name: config["configs"][name] for name in study["configs"]}}


# Every job's shell is told which run launched it (bash's parent): a job stops if this Snakemake is killed, and no
# DVC run can start in this folder meanwhile (core/pipeline.py)
shell.prefix("set -euo pipefail; export VGRAD_LAUNCHER=snakemake:$PPID; ")
PIPELINE_LOCK = pipeline.lock_path(PATHS["manifests"])
# data/, results/, reports/: where a killed job may have left a temporary
OUTPUT_FOLDERS = sorted({os.path.normpath(PATHS[name]).split(os.sep)[0] for name in ("dataset", "runs", "report")})


def manifest(stage, study=None):
    """The manifest a stage writes once its outputs are published: what the rules declare as their output, so
    that the results themselves survive when Snakemake deletes a failed job's outputs."""
    return str(manifests.path(PATHS["manifests"], stage, study))


def withdraw_stale_manifests():
    """A manifest whose results have since been damaged, or that were made from results being remade, no longer
    vouches for them: remove it, so that this run rebuilds what is needed. Remove what killed jobs were writing.
    Neither while another run is working here (a DVC run: this one is refused at onstart; another Snakemake: its
    running jobs' manifests are gone for now, which says nothing about the results)."""
    if pipeline.owner(PIPELINE_LOCK) is not None:
        return
    for path, reason in manifests.stale(PATHS["manifests"]).items():
        logger.warning(f"{path}: {reason}; that stage runs again")
        os.remove(path)
    for folder in OUTPUT_FOLDERS:  # unless a job of another Snakemake writes it now (core/fileio.py)
        for partial in fileio.remove_leftovers(folder):
            logger.info(f"removed {partial}, left by a job that did not finish")


if workflow.is_main_process:  # not again in each cluster job
    withdraw_stale_manifests()


onstart:  # with jobs to run: this run is the folder's pipeline run, or it stops if a DVC run is working here
    checked(pipeline.claim, PIPELINE_LOCK, "snakemake", os.getpid())


def log_path(name):
    return f"{PATHS['logs']}/{name}.log"


def folder_of_output(wildcards, output):
    """The manifests folder, where a stage writes its manifest (the rule's output)."""
    return os.path.dirname(output[0])
