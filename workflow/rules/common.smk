# Shared by every rule: paths, validated parameters, and the package files each rule runs.
import glob
import os

import yaml

from vanishing_gradients.core.params import ParamsError, load


with open("workflow/paths.yaml") as f:
    PATHS, CODE = (lambda paths: (paths["paths"], paths["code"]))(yaml.safe_load(f))



def checked(func, *args):
    """Run a params check, turning its error into a WorkflowError that Snakemake reports plainly."""
    try:
        return func(*args)
    except ParamsError as err:
        raise WorkflowError(str(err)) from None


if config:  # --config or --configfile: the stages would not see them, since every vgrad command reads params.yaml
    raise WorkflowError("this workflow takes its parameters from params.yaml alone: change them there "
                        "(or try a value with dvc exp run -S key=value)")
# params.yaml read and validated as every vgrad command and DVC read it (core/yaml12.py): errors name the key
config.update(checked(load, PATHS["params"]))

STUDIES = list(config["studies"])
# The events settings that runs and their tables are made with: all but success_accuracy, which only the
# metrics read (changing it re-runs the metrics and the report, not the training). dvc.yaml lists the same.
RUN_EVENTS = {key: value for key, value in config["events"].items() if key != "success_accuracy"}


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


def study_params(wildcards):
    """The parts of params.yaml one study's training reads (Snakemake reruns it when they change)."""
    study = config["studies"][wildcards.study]
    return {"study": study, "configs": {name: config["configs"][name] for name in study["configs"]}}


def log_path(name):
    return f"{PATHS['logs']}/{name}.log"


def parent_of(name):
    """The folder holding the per-study folders of input `name` (the CLI takes the parent)."""
    return lambda wildcards, input: os.path.dirname(input[name][0])
