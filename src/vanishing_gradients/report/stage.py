"""Stage `report`: execute the parameterised notebook with papermill, convert it to one HTML file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from ..core.errors import StageError
from ..core.fileio import atomic_path
from ..core.provenance import say


def to_html(notebook: nbformat.NotebookNode) -> str:
    """Self-contained HTML: code hidden, images inline, no script or style fetched from the network."""
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    # The lab template links require.js, MathJax and mermaid from a CDN; the report needs none of them.
    for url in ("require_js_url", "mathjax_url", "mermaid_js_url", "mermaid_layout_elk_js_url"):
        setattr(exporter, url, "")
    html, _ = exporter.from_notebook_node(notebook)
    return html


def build_report(notebook: str | Path, parameters: dict, out_html: Path) -> None:
    """Run `notebook` with `parameters` (paths the notebook reads) and write `out_html`."""
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / "executed.ipynb"
        papermill.execute_notebook(str(notebook), str(executed), parameters=parameters,
                                   kernel_name="python3", progress_bar=False, cwd=os.getcwd())
        out_html.write_text(to_html(nbformat.read(executed, as_version=4)))


def run(args, params: dict, timing: dict) -> None:
    """Stage `report`: the notebook run on the pipeline's outputs (the --in-* paths), as one HTML file."""
    inputs = {k: str(v) for k, v in vars(args).items() if k.startswith("in_")}
    required = [args.notebook, *(path for key, path in inputs.items() if key != "in_timings")]  # timings: optional
    missing = [path for path in required if not Path(path).exists()]
    if missing:
        raise StageError(f"the report's inputs are missing: {', '.join(map(str, missing))}; the stages before the "
                         f"report make them (snakemake --cores 4, or dvc repro)")
    with atomic_path(args.out) as html:
        build_report(args.notebook, inputs, html)
    say("report", f"-> {args.out}")
