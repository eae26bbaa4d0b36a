"""The report's sections, each a function of the loaded results that returns the section's HTML (heading,
text, figures with captions, tables): the notebook only calls them and displays what they return."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from ..analysis import explain, findings, theory
from ..analysis.metrics import analyse, headline_studies
from ..core.data import arrays, read_dataset
from ..core.provenance import git_commit, versions
from . import figures, why
from .present import STYLE, contents, figure, heading, image, table

TITLES = ["Findings", "The original's claims, one by one", "The data", "The headline experiments",
          "Depth: how deep can each configuration go?", *why.TITLES, "Width × depth",
          "Gradients per layer: deep tanh against deep ReLU", "Weights: L1 norm and relative update per layer",
          "Theory: mean-field signal propagation", "Every variant", "Provenance"]


@dataclass
class Results:
    """Everything the report reads, loaded once."""

    params: dict
    tables: dict
    runs: dict
    paths: dict

    @property
    def summary(self) -> pd.DataFrame:
        return self.tables["summary"]

    @cached_property
    def head(self) -> list[str]:
        return headline_studies(self.params)

    @cached_property
    def colours(self) -> dict:
        return figures.palette(list(self.params["configs"]))

    @cached_property
    def x_train(self):
        """The training inputs (n_train, 2)."""
        return arrays(read_dataset(self.paths["in_dataset"]), "train")[0]

    @cached_property
    def explained(self) -> tuple[pd.DataFrame, dict]:
        """Finite-width theory against the measurements (analysis/explain.py's verdicts and per-depth curves)."""
        return explain.verdicts(self.params, self.tables, self.x_train)

    def deep_pair(self) -> dict[str, str]:
        """{'deep_tanh': 'study/variant', 'deep_relu': ...} when both were trained."""
        keys = {name: findings.headline_key(self.summary, name) for name in ("deep_tanh", "deep_relu")}
        return keys if all(keys.values()) else {}

    def swept_widths(self) -> list[int]:
        """Widths at which several configurations were swept over depth (the depth figures compare them)."""
        counts = self.tables["trainable_depth"].groupby("width")["config"].nunique()
        return list(counts[counts > 1].index)


def load(paths: dict) -> Results:
    """paths: the notebook's parameters (in_params, in_tables, in_runs, ...)."""
    params = json.loads(Path(paths["in_params"]).read_text())
    runs = {s: json.loads((Path(paths["in_runs"]) / s / "run.json").read_text()) for s in params["studies"]}
    return Results(params, analyse(params, paths["in_tables"]), runs, paths)


def title(r: Results) -> str:
    s, p = r.summary, r.params
    low, high = s["n_seeds"].min(), s["n_seeds"].max()
    seeds = f"{low} seeds" if low == high else f"{low} to {high} seeds"
    return STYLE + f"""<h1>Vanishing gradients in deep MLPs: what {int(s["n_seeds"].sum()):,} models say</h1>
<p>{int(s["n_seeds"].sum()):,} models ({len(s)} variants over {len(p["studies"])} studies, {seeds} each),
{p["train"]["epochs"]} epochs each on the two-circles problem, trained by the
<code>{p["train"]["engine"]}</code> engine. Every number is over seeds, with a 95% interval: a t interval for means,
a Wilson interval for success rates (a seed <em>succeeds</em> when its final test accuracy is at least
{p["events"]["success_accuracy"]}), a bootstrap over seeds for the trainable depth.</p>""" + contents(TITLES)


def claims(r: Results) -> str:
    found = findings.claims(r.tables)
    items = "".join(f"<li>{_markdown_bold(s)}</li>" for s in findings.sentences(found))
    items += "".join(f"<li>{s}</li>" for s in why.prediction_sentences(r))
    return (heading(TITLES[0]) + f"<ul>{items}</ul>" + heading(TITLES[1])
            + "<p><em>Reproduced</em> means our interval supports the claim: for “learns”, the Wilson interval of the "
              "success rate lies above 50%; for “fails”, below 50%; <em>inconclusive</em> when it contains 50%. The "
              "extensions the original proposed but never ran are answered <em>yes</em> or <em>no</em> by the same "
              "rule. The original reported single runs, so its numbers carry no interval.</p>"
            + table(found, "Each claim of the original write-up, its own number, ours with 95% intervals, and the "
                           "verdict."))


def _markdown_bold(text: str) -> str:
    parts = text.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def data(r: Results) -> str:
    plot = Path(r.paths["in_dataset_plot"]).read_bytes()
    return (heading(TITLES[2]) + image(plot, "The two classes (inner and outer circle) of "
            f"make_circles with noise {r.params['data']['noise']}, scaled to [-1, 1]: {len(r.x_train)} training points "
            "(left) and the test points (right), which are also the validation set evaluated after every epoch. "
            "No straight line separates the classes, so a model must bend its boundary into a closed curve."))


def headline(r: Results) -> str:
    head = r.head
    columns = ["study", "config", "depth", "width", "n_seeds", "accuracy_train_mean", "accuracy_test_mean",
               "accuracy_test_low", "accuracy_test_high", "successes", "success_rate", "epochs_to_target_median",
               "diverged_share"]
    rows = r.summary[r.summary["study"].isin(head)][columns]
    config = dict(zip(r.summary["study"], r.summary["config"]))
    n_seeds = dict(zip(r.summary["study"], r.summary["n_seeds"]))
    studies = {s: config[s] for s in head}
    out = heading(TITLES[3]) + table(rows, "The original's three experiments: accuracy after the last epoch (mean "
                                           "over seeds, 95% t interval) and how many seeds succeed.")
    final = "; ".join(f"{row.study} {row.accuracy_test_mean:.2f}" for row in rows.itertuples())
    for statistic, label, look in [
            ("accuracy_test", "test accuracy", f"Look at where each curve ends (mean final test accuracy: {final}) "
             "and how soon it leaves chance (0.5)."),
            ("loss_train", "training loss (binary cross-entropy)", "A loss that stays near ln 2 ≈ 0.69 is a model "
             "that still guesses; the gradient sections below show which layers are not learning.")]:
        fig = figures.learning_curves(r.tables["per_variant"], studies, statistic, label, n_seeds, r.colours)
        out += figure(fig, f"{label.capitalize()} per epoch, mean over seeds, one line per headline experiment in "
                           f"its configuration's colour. {look}")
    return out


def depth(r: Results) -> str:
    out = heading(TITLES[4]) + ("<p>The <em>trainable depth</em> is the largest depth whose success rate is still at "
                                "least 50%; its interval comes from resampling the seeds at every depth (bootstrap, "
                                "2000 resamples).</p>")
    for width in r.swept_widths():
        fig = figures.depth_curves(r.summary, r.tables["trainable_depth"], width, r.colours)
        out += figure(fig, f"Width {width}. Left: share of seeds that succeed against depth (band: 95% Wilson "
                           "interval); right: mean final test accuracy (band: 95% t interval). Look at where each "
                           "curve crosses the dashed 50% line: that is its trainable depth.")
        flow = r.tables["flow"]
        fig = figures.ratio_vs_depth(flow, width, r.colours)
        out += figure(fig, f"Width {width}. Gradient of the first hidden layer divided by the output layer's, "
                           "against depth, at initialisation (left) and averaged over training (right), log scale. "
                           "A ratio far below 1 means the first layers barely learn: look for the curves that fall "
                           "by orders of magnitude with depth.")
    trainable = r.tables["trainable_depth"]
    if not trainable.empty:
        out += table(trainable[["config", "width", "depth", "low", "high", "max_depth_tried", "n_seeds"]]
                     .rename(columns={"depth": "trainable_depth"}), "Trainable depth per configuration and width, "
                     "with its 95% bootstrap interval; empty where no depth reaches 50%.", digits=0)
    return out


def width_depth(r: Results) -> str:
    s = r.summary
    grids = [st for st in r.params["studies"] if s[s["study"] == st]["width"].nunique() > 1
             and s[s["study"] == st]["depth"].nunique() > 1]
    out = heading(TITLES[8])
    for study in grids:
        out += figure(figures.width_depth_heatmap(s, study), f"Study <code>{study}</code>: success rate (left) and "
                      "mean test accuracy (right) for every width and depth. Look along a row: wider layers let "
                      "deeper networks of this configuration learn.")
    return out + ("" if grids else "<p>No study in this run varies both width and depth.</p>")


def gradients(r: Results) -> str:
    out = heading(TITLES[9]) + ("<p>The gradient statistic is the mean absolute gradient of the loss with respect to "
                                "each layer's kernel on the validation data, in batches, as Keras 2's "
                                "<code>TensorBoard(write_grads=True)</code> computed it for the original; mean over "
                                "seeds, every <code>events.stats_freq</code> epochs.</p>")
    deep = {name.replace("_", " "): key for name, key in r.deep_pair().items()}
    if deep:
        per_variant = r.tables["per_variant"]
        fig = figures.layer_epoch_heatmaps(per_variant, deep, "grad_val_mean_abs", "mean |dLoss/dkernel|")
        out += figure(fig, "Mean |dLoss/dkernel| per layer (rows, input at the bottom) and epoch (columns), one "
                           "colour scale for both panels. Deep tanh's lower layers are dark: their gradients are "
                           "orders of magnitude smaller than its output layer's; deep ReLU's are even.")
        fig = figures.layer_lines(per_variant, deep, "grad_val_mean_abs", "mean |dLoss/dkernel| (log scale)", log=True)
        out += figure(fig, "The same gradients as lines, one per layer. Compare the spread between the first hidden "
                           "layer and the output layer in the two panels.")
        columns = ["study", "grad_first_init", "grad_output_init", "ratio_first_output_init", "grad_first_train",
                   "grad_output_train", "ratio_first_output_train", "saturated_share", "dead_share", "update_ratio"]
        flow = r.tables["flow"]
        out += table(flow[flow["study"].isin(r.head)][columns], "Gradient flow per headline experiment: first hidden "
                     "and output layer at initialisation and averaged over training; saturated tanh activations "
                     "(|a| > 0.99) and dead ReLU units (zero for every input) as shares; mean relative update "
                     "||ΔW|| / ||W|| per epoch.", digits=4)
    return out


def weights(r: Results) -> str:
    out = heading(TITLES[10])
    deep = {name.replace("_", " "): key for name, key in r.deep_pair().items()}
    if deep:
        per_variant = r.tables["per_variant"]
        out += figure(figures.layer_lines(per_variant, deep, "kernel_l1", "sum of |weights|"),
                      "L1 norm of each layer's kernel over training (the original's extension 3). A flat line is a "
                      "layer that does not learn.")
        out += figure(figures.layer_lines(per_variant, deep, "update_ratio", "||ΔW|| / ||W|| per epoch (log scale)",
                                          log=True),
                      "How far each kernel moves per epoch relative to its size, log scale: look at how much less the "
                      "first layers of deep tanh move than its output layer.")
    return out


def mean_field(r: Results) -> str:
    x2 = theory.input_second_moment(r.x_train)
    measured, predicted, rows = theory.compare(r.params, r.summary, r.tables["trainable_depth"], r.tables["layers"],
                                               x2)
    out = heading(TITLES[11]) + (
        "<p>For zero-mean initialisations (<code>he_uniform</code>, <code>glorot_uniform</code>), mean-field theory "
        "(Schoenholz et al., 2017) predicts how the gradient changes from layer to layer at initialisation: by a "
        "factor χ₁ = σ_w² E[φ′(z)²] per layer. ReLU with He initialisation has χ₁ = 1 exactly (critical: no "
        "vanishing); tanh with Glorot initialisation at width 5 has σ_w² = 1, also critical in the limit, but the "
        "pre-activation variance shrinks layer by layer, so χ₁ &lt; 1 at any finite depth. <code>RandomUniform(0, "
        "1)</code> has a non-zero mean, which the theory does not describe, so it is left out.</p>")
    if not measured:
        return out + "<p>No zero-mean configuration was swept over depth in this run.</p>"
    out += figure(figures.theory_overlay(measured, predicted, r.colours),
                  "Gradient of each hidden layer relative to the last hidden layer's, at initialisation: measured "
                  "(mean |g| over seeds, solid) against mean-field theory (RMS g, dashed). Look at the slopes: where "
                  "the solid line falls faster than the dashed one, gradients vanish faster than the infinitely wide "
                  "theory predicts.")
    gap = theory.gaps(measured, predicted)
    out += table(pd.DataFrame(rows), "Mean-field quantities per configuration against the measured trainable depth; "
                 "the depth scale is infinite at χ₁ = 1.", digits=2)
    out += ("<p>Typical gap between measurement and prediction, mean |log10(measured / predicted)| over the layers: "
            + "; ".join(f"{t}: {g:.2f} (a factor {10 ** g:.1f})" for t, g in gap.items()) + ".</p>")
    return out + ("<p>The theory describes the root-mean-square gradient of infinitely wide layers; we measure the "
                  "mean absolute gradient of 5-unit layers averaged over seeds. At χ₁ = 1 (ReLU/He) the depth scale is "
                  "infinite, so the theory alone predicts no depth limit from vanishing gradients: what limits narrow "
                  "ReLU networks is something else (dead units and the finite width, visible in the dead share "
                  "above).</p>")


def every_variant(r: Results) -> str:
    flow = r.tables["flow"][["study", "variant", "ratio_first_output_init", "ratio_first_output_train",
                             "saturated_share", "dead_share"]]
    rows = r.summary.merge(flow, on=["study", "variant"]).drop(columns=["variant", "accuracy_test_low",
                                                                      "accuracy_test_high", "success_low",
                                                                      "success_high", "reached_target_share"])
    return (heading(TITLES[12]) + "<details><summary>All variants, one row per variant and study (click to "
            "open)</summary>" + table(rows) + "</details>")


def provenance(r: Results) -> str:
    timings = pd.DataFrame([json.loads(p.read_text()) for p in sorted(Path(r.paths["in_timings"]).glob("*.json"))])
    devices = sorted({run["device"] for run in r.runs.values()})
    digest = hashlib.sha256(json.dumps(r.params, sort_keys=True).encode()).hexdigest()[:16]
    first = next(iter(r.runs.values()))
    items = [f"parameters: sha256 <code>{digest}</code> (of the validated params.yaml as JSON, below)",
             f"git commit: <code>{git_commit()}</code>",
             f"engine: <code>{r.params['train']['engine']}</code> on {', '.join(devices)}",
             f"models trained: {sum(run['n_models'] for run in r.runs.values())} ({r.params['train']['epochs']} "
             "epochs each)",
             "training time per study (s): " + ", ".join(f"<code>{s}</code> {run['train_s']:.0f}"
                                                         for s, run in r.runs.items()),
             "packages (training): " + ", ".join(f"{k} {v}" for k, v in first["versions"].items()),
             "packages (report): " + ", ".join(f"{k} {v}" for k, v in versions().items())]
    out = heading(TITLES[13]) + "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
    if not timings.empty:
        columns = [c for c in ["stage", "study", "wall_s", "n_models", "finished_at"] if c in timings]
        shown = timings[columns].assign(**{c: timings[c].fillna("") for c in ("study",) if c in timings})
        if "n_models" in shown:
            shown["n_models"] = shown["n_models"].astype("Int64")
        out += table(shown,
                     f"Wall time per stage run: {timings['wall_s'].sum():.0f} s in all (each job's own time; jobs "
                     "overlap).", digits=1)
    return out + ("<details><summary>Parameters (validated params.yaml)</summary><pre>"
                  + json.dumps(r.params, indent=2) + "</pre></details>")


SECTIONS = [title, claims, data, headline, depth, why.outcomes, why.mechanisms, why.predictions, width_depth,
            gradients, weights, mean_field, every_variant,
            provenance]
