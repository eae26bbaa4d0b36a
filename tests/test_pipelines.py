"""Snakemake and DVC run the same commands, with the same outputs; each stage depends on the package files it
runs and on nothing else; DVC's runs depend on the events settings Snakemake's RUN_EVENTS keeps; the Snakefile is
lint-clean."""
import ast
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from conftest import LOCAL_ENV, ROOT
from vanishing_gradients.core.params import SCHEMA
from vanishing_gradients.core.manifests import path as manifest_path

PATHS, CODE = (lambda p: (p["paths"], p["code"]))(yaml.safe_load((ROOT / "workflow" / "paths.yaml").read_text()))
PACKAGE = ROOT / PATHS["package"]


def _snakemake(*args):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=ROOT, env=LOCAL_ENV, capture_output=True,
                          text=True)


def _command(text: str) -> tuple[str, tuple]:
    """(stage, sorted options) of one `vgrad` command line, without what launches it or where its log goes."""
    words = shlex.split(text[text.index("vgrad "):].split(" > ")[0])
    return words[1], tuple(sorted(zip(words[2::2], words[3::2])))


def test_same_commands_outputs_and_manifests():
    """Snakemake and DVC run the same `vgrad` commands (a study's name comes to DVC's through DVC_STAGE), DVC's
    outputs are what those commands write, and Snakemake's outputs are the manifests those commands leave."""
    dry = _snakemake("-n", "-p", "--forceall", "--cores", "1")
    assert dry.returncode == 0, dry.stderr
    by_snakemake = {_command(line) for line in dry.stdout.splitlines()
                    if line.startswith("Shell command: ") and "vgrad " in line}
    summary = _snakemake("--summary", "--cores", "1")
    snakemake_outputs = {(rule, path) for path, _, rule, *_ in
                         (line.split("\t") for line in summary.stdout.strip().splitlines()[1:])}
    by_dvc, dvc_outputs, listed = set(), set(), set()
    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            name, _, study = stage.name.partition("@")
            by_dvc.add(_command(stage.cmd.replace("${DVC_STAGE#*@}", study)))
            dvc_outputs |= {(name, str(out.def_path)) for out in stage.outs}
            listed.add((name, str(manifest_path(PATHS["manifests"], name, study or None))))
    assert by_snakemake == by_dvc
    assert snakemake_outputs == listed
    written = {(stage, value) for stage, options in by_dvc for option, value in options
               if option in ("--out", "--out-csv", "--out-plot", "--plots")}
    assert dvc_outputs == written
    assert {stage for stage, _ in dvc_outputs} == {"params", "data", "train", "gradients", "metrics", "report"}


def test_snakemake_lint_is_clean():
    lint = _snakemake("--lint")
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr


def test_runs_depend_on_every_events_setting_but_the_success_threshold():
    """dvc.yaml lists, for training and extraction, the events settings Snakemake's RUN_EVENTS keeps: every one
    the schema knows except success_accuracy and failure, which only the metrics read."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage in ("train", "gradients"):
        listed = {key.split(".", 1)[1] for key in stages[stage]["do"]["params"] if key.startswith("events")}
        assert listed == set(SCHEMA["properties"]["events"]["properties"]) - {"success_accuracy", "failure"}, stage


def _module_file(dotted: str) -> Path:
    base = PACKAGE.joinpath(*dotted.split(".")) if dotted else PACKAGE
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _imports(source: str, dotted: str, is_package: bool) -> set[str]:
    """The package's modules that code imports, anywhere in it (a stage imports its own code lazily)."""
    package = dotted if is_package else dotted.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("vanishing_gradients")):
            if node.level:
                parts = package.split(".") if package else []
                module = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                module = node.module.removeprefix("vanishing_gradients").lstrip(".")
            found.add(module)
            found |= {f"{module}.{a.name}".lstrip(".") for a in node.names
                      if _module_file(f"{module}.{a.name}".lstrip(".")).exists()}  # `from . import x`: a module
    return found


def stage_imports(stage: str) -> set[str]:
    """The package files a stage runs: cli.py, its stage module and (report) the notebook, with everything they
    import, the packages' __init__ files, and the data files a module reads (named in its source)."""
    from vanishing_gradients.cli import STAGES

    sources = {"cli": None, STAGES[stage][0]: None}
    if stage == "report":
        notebook = json.loads((ROOT / PATHS["notebook"]).read_text())
        code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
        sources["report"] = code  # the notebook imports as an outsider would
    seen, todo = set(), [(m, s) for m, s in sources.items()]
    while todo:
        module, source = todo.pop()
        path = _module_file(module)
        if source is None:
            if module in seen or not path.exists():
                continue
            seen.add(module)
            source = path.read_text()
            parts = module.split(".") if module else []
            todo += [(".".join(parts[:i]), None) for i in range(len(parts))]
        todo += [(m, None) for m in _imports(source, module, path.name == "__init__.py")]
    files = {_module_file(m) for m in seen}
    files |= {data for f in files for data in f.parent.glob("*.yaml") if data.name in f.read_text()}
    return {str(f.relative_to(PACKAGE)) for f in files}


def _declared(entries: list) -> set[str]:
    """paths.yaml's `code` entries as files (nested lists spliced, folders expanded)."""
    files = set()
    for entry in entries:
        if isinstance(entry, list):
            files |= _declared(entry)
        elif (PACKAGE / entry).is_dir():
            files |= {str(p.relative_to(PACKAGE)) for p in (PACKAGE / entry).rglob("*")
                      if p.suffix in (".py", ".yaml")}
        else:
            files.add(entry)
    return files


@pytest.mark.parametrize("stage", ["params", "data", "train", "gradients", "metrics", "report"])
def test_each_stage_depends_on_the_code_it_runs_and_nothing_else(stage):
    """paths.yaml's `code` for a stage (what the Snakefile's rules take as input) is exactly the package files the
    stage imports, and dvc.yaml's deps list the same entries."""
    declared = _declared(CODE[stage])
    assert declared == stage_imports(stage), (f"{stage}: declared but not run: {declared - stage_imports(stage)}; "
                                              f"run but not declared: {stage_imports(stage) - declared}")
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    spec = stages[stage].get("do", stages[stage])
    package = [d.removeprefix("${paths.package}/") for d in spec["deps"] if d.startswith("${paths.package}")]
    assert _declared(package) == declared, stage


def test_readme_results_are_the_committed_metrics():
    """The README's results tables are what `python -m vanishing_gradients.readme` writes from results/metrics.json."""
    from vanishing_gradients import readme

    text = (ROOT / "README.md").read_text()
    metrics = json.loads((ROOT / PATHS["metrics"]).read_text())
    assert readme.updated(text, metrics) == text, "run: python -m vanishing_gradients.readme"
    assert readme.results_markdown(metrics) in text
    assert len(text.encode()) < 8_000
