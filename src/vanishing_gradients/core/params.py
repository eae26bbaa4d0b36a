"""Stage `params`: load and validate params.yaml against one schema, with clear errors naming the key.

The schema (params.schema.yaml) takes the names of activations, initialisers and optimisers from the
extension tables (extensions.py), so a new entry there is valid here with no other change."""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import cost, yaml12
from .errors import StageError
from .extensions import ACTIVATIONS, INITIALIZERS, OPTIMIZERS
from .fileio import write_json
from .provenance import say

# Words YAML 1.1 reads as booleans or null: params.yaml is read as YAML 1.2 (yaml12.py), where they are strings,
# but other readers of the file would turn a study or config so named into True, False or None.
YAML11_WORDS = {"y", "yes", "n", "no", "on", "off", "true", "false", "null", "~"}
SCHEMA = yaml.safe_load(resources.files(__package__).joinpath("params.schema.yaml").read_text())


def schema() -> dict:
    """SCHEMA with the extension tables' names as the allowed values (read at each call, so that an entry
    added to a table, even at run time, is valid)."""
    full = copy.deepcopy(SCHEMA)
    defs = full["$defs"]
    bare, with_settings = [[n for n, e in INITIALIZERS.items() if bool(e.settings) == s] for s in (False, True)]
    defs["initializer"]["oneOf"][0]["enum"] = bare
    defs["initializer"]["oneOf"][1]["properties"]["name"]["enum"] = with_settings
    defs["optimizer"]["properties"]["name"]["enum"] = list(OPTIMIZERS)
    full["properties"]["configs"]["additionalProperties"]["properties"]["activation"]["enum"] = list(ACTIVATIONS)
    return full


class ParamsError(StageError, ValueError):
    """params.yaml is malformed or holds a bad value; the message names the key."""


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extra = sorted(set(error.instance) - set(allowed))
        names = ", ".join(f"{where}.{k}" if error.absolute_path else k for k in extra)
        hint = f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""
        return f"unknown key {names}{hint}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "oneOf":
        return f"{where}: {error.instance!r} is not valid: {error.schema.get('description', error.message).strip()}"
    return f"{where}: {error.message}"


def _check_relations(params: dict) -> list[str]:
    """Rules one schema cannot state: relations between keys."""
    problems = []
    data = params["data"]
    if data["n_train"] >= data["n_samples"]:
        problems.append(f"data.n_train: {data['n_train']} must be smaller than data.n_samples ({data['n_samples']})")
    for name, config in params["configs"].items():
        for which in ("hidden_init", "output_init"):
            init = config[which]
            if not isinstance(init, dict):
                continue
            wanted, given = set(INITIALIZERS[init["name"]].settings), set(init) - {"name"}
            if wanted != given:
                problems.append(f"configs.{name}.{which}: {init['name']} takes {', '.join(sorted(wanted))}"
                                f" (given: {', '.join(sorted(given)) or 'none'})")
            elif init["name"] == "random_uniform" and not init["maxval"] > init["minval"]:
                problems.append(f"configs.{name}.{which}: maxval must be greater than minval")
    events = params["events"]
    if events["histogram_freq"] % events["stats_freq"]:
        problems.append(f"events.histogram_freq: {events['histogram_freq']} must be a multiple of events.stats_freq "
                        f"({events['stats_freq']}): histograms are taken with the statistics")
    optimizers = {"train.optimizer": params["train"]["optimizer"]}
    optimizers |= {f"configs.{name}.optimizer": config["optimizer"]
                   for name, config in params["configs"].items() if "optimizer" in config}
    for section in ("configs", "studies"):
        for name in params[section]:
            if name.lower() in YAML11_WORDS:
                problems.append(f"{section}.{name}: a name that YAML 1.1 readers (Snakemake's, PyYAML's) take for a "
                                f"boolean or null; choose another")
    for name, study in params["studies"].items():
        for config in study["configs"]:
            if config not in params["configs"]:
                problems.append(f"studies.{name}.configs: unknown config {config!r} "
                                f"(defined: {', '.join(params['configs'])})")
        depths = study["depths"]
        if isinstance(depths, dict) and depths["to"] < depths["from"]:
            problems.append(f"studies.{name}.depths: `to` ({depths['to']}) is smaller than `from` ({depths['from']})")
    for where, opt in optimizers.items():
        foreign = set(opt) - {"name", "learning_rate"} - set(OPTIMIZERS[opt["name"]].defaults)
        for key in sorted(foreign):
            problems.append(f"{where}.{key}: not a setting of optimizer {opt['name']!r}")
    return problems


def validate(params: Any, source: str = "params.yaml") -> dict:
    """Return `params` unchanged if valid, else raise ParamsError listing every problem."""
    if not isinstance(params, dict):
        raise ParamsError(f"{source}: expected a mapping of keys at the top level, got {type(params).__name__}")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_describe(e) for e in errors] or _check_relations(params) or cost.problems(params)
    if problems:
        raise ParamsError(f"{source}: invalid parameters:\n" + "\n".join(f"  - {p}" for p in problems))
    return params


def load(path: str | Path) -> dict:
    """Read and validate a params file."""
    path = Path(path)
    try:
        raw = yaml12.read(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: malformed YAML: {exc}") from None
    return validate(raw, str(path))


def require_study(params: dict, name: str) -> dict:
    """The study `name`, or a ParamsError listing the studies there are."""
    if name not in params["studies"]:
        raise ParamsError(f"study {name!r} is not in params.yaml studies ({', '.join(params['studies'])})")
    return params["studies"][name]


def run(args, params: dict, timing: dict) -> None:
    """Stage `params`: write the validated parameters as JSON, the report's record of what produced it, and say
    what each study will cost."""
    write_json(args.out, params)
    for study in params["studies"]:
        say("params", f"{study}: {cost.estimate(params, study)}")
