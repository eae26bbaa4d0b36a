"""How the report shows things: figures with captions, tables with readable headers, headings with anchors
and a contents list, and the page's style (nothing wider than the page: figures scale down, tables wrap)."""
from __future__ import annotations

import base64
import html
import io
import math
import re

import pandas as pd

# Readable column headers, with units; a column not named here keeps its name with spaces for underscores.
LABELS = {
    "study": "study", "variant": "variant", "config": "configuration", "depth": "depth (hidden layers)",
    "width": "width (units)", "n_seeds": "seeds", "successes": "seeds that succeed",
    "accuracy_train_mean": "train accuracy (mean)", "accuracy_test_mean": "test accuracy (mean)",
    "accuracy_test_low": "test accuracy, 95% low", "accuracy_test_high": "test accuracy, 95% high",
    "success_rate": "success rate", "success_low": "success, 95% low", "success_high": "success, 95% high",
    "reached_target_share": "share reaching the target", "epochs_to_target_median": "epochs to target (median)",
    "diverged_share": "share diverged",
    "grad_first_init": "first-layer |dL/dW| at init", "grad_output_init": "output |dL/dW| at init",
    "ratio_first_output_init": "first / output gradient at init", "grad_first_train": "first-layer |dL/dW| training",
    "grad_output_train": "output |dL/dW| training", "ratio_first_output_train": "first / output gradient training",
    "saturated_share": "saturated share (|a| > 0.99)", "dead_share": "dead-unit share",
    "update_ratio": "relative update per epoch",
    "low": "95% low", "high": "95% high", "max_depth_tried": "deepest tried",
    "chi_first": "χ₁, first layer", "chi_deepest": "χ₁, deepest layer", "xi": "depth scale ξ (layers)",
    "predicted_depth": "6ξ (layers)", "trainable_depth": "trainable depth (measured)",
    "stage": "stage", "wall_s": "wall time (s)", "n_models": "models", "device": "device",
    "finished_at": "finished at",
}

STYLE = """<style>
  body, .jp-Notebook { max-width: 1180px; margin: 0 auto; }
  .jp-RenderedHTMLCommon, .jp-OutputArea-output { overflow-x: visible; }
  .vg-figure { margin: 1em 0 1.6em; }
  .vg-figure img { max-width: 100%; height: auto; display: block; }
  .vg-figure figcaption, .vg-table caption { font-size: 0.92em; color: #333; margin-top: 0.4em;
    caption-side: bottom; text-align: left; }
  table.vg-table { table-layout: auto; width: 100%; max-width: 100%; font-size: 0.85em; border-collapse: collapse; }
  table.vg-table th, table.vg-table td { white-space: normal; overflow-wrap: break-word; word-break: normal;
    padding: 2px 6px; text-align: right; vertical-align: top; }
  table.vg-table th { background: #f2f2f2; }
  table.vg-table td.vg-text, table.vg-table th.vg-text { text-align: left; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  details { margin: 1em 0; }
</style>"""


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def heading(title: str, level: int = 2) -> str:
    return f'<h{level} id="{slug(title)}">{html.escape(title)}</h{level}>'


def contents(titles: list[str]) -> str:
    items = "".join(f'<li><a href="#{slug(t)}">{html.escape(t)}</a></li>' for t in titles)
    return f"<nav><strong>Contents</strong><ol>{items}</ol></nav>"


def figure(fig, caption: str) -> str:
    """A matplotlib figure as an inline PNG that scales to the page, with its caption under it; closes it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # as the figure is laid out (tight_layout, or constrained layout): cropping to the drawn content
    # (bbox_inches="tight") would draw every figure twice
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return image(buffer.getvalue(), caption)


def image(png: bytes, caption: str) -> str:
    """PNG bytes inline, scaled to the page, with the caption under them."""
    data = base64.b64encode(png).decode()
    return (f'<figure class="vg-figure"><img alt="{html.escape(caption[:120])}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>")


COLUMN_DIGITS = {"epochs_to_target_median": 0, "trainable_depth": 0, "low": 0, "high": 0}  # depths and epochs


def _cell(value, digits: int) -> str:
    """A table cell: floats to `digits` decimals, missing values (NaN, pandas' NA) empty."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def table(frame: pd.DataFrame, caption: str = "", digits: int = 3) -> str:
    """A frame as an HTML table without its index, headers from LABELS, numbers to `digits` decimals."""
    text = {c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])}
    head = "".join(f'<th class="{"vg-text" if c in text else ""}">{html.escape(LABELS.get(c, c.replace("_", " ")))}'
                   f"</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f'<td class="{"vg-text" if c in text else ""}">'
                                    f"{_cell(v, COLUMN_DIGITS.get(c, digits))}</td>"
                                    for c, v in zip(frame.columns, row)) + "</tr>"
                   for row in frame.itertuples(index=False))
    caption = f"<caption>{caption}</caption>" if caption else ""
    return f'<table class="vg-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
