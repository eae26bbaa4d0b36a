"""The report's sections on why each configuration stops learning: every seed's outcome, finite-width theory
beside the measurements with a verdict per configuration, and the two predictions put to the test. Each function
takes sections.Results and returns HTML."""
from __future__ import annotations

import math

import pandas as pd

from . import why_figures
from .present import figure, heading, table
from ..analysis import explain, finite_width as fw
from ..analysis.anatomy import FAILURE_KINDS, OUTCOMES

TITLES = ["Why learning stops: what happened to every seed", "Finite-width theory beside the measurements",
          "Two predictions put to the test"]
CITATIONS = (
    "<p>Sources: Lu, Shin, Su &amp; Karniadakis, “Dying ReLU and initialization: theory and numerical examples” "
    "(2020); Rister &amp; Rubin, “Probabilistic bounds on neuron death in deep rectifier networks” (2020); Hanin "
    "&amp; Rolnick, “How to start training: the effect of initialization and architecture” (2018); Hanin, “Which "
    "neural net architectures give rise to exploding and vanishing gradients?” (2018); Newman, “The distribution of "
    "Lyapunov exponents: exact results for random matrices” (1986); Pennington, Schoenholz &amp; Ganguli, "
    "“Resurrecting the sigmoid in deep learning through dynamical isometry” (2017).</p>")


def _sweeps(r, width: int | None = None) -> list[tuple[str, int]]:
    found = explain.sweeps(r.tables["seeds"])
    return [s for s in found if width is None or s[1] == width]


def outcomes(r) -> str:
    failure = r.params["events"]["failure"]
    kinds = pd.DataFrame([{"outcome": entry.label, "meaning": entry.meaning} for entry in FAILURE_KINDS.values()])
    out = heading(TITLES[0]) + (
        "<p>Every seed that fails (final test accuracy below <code>events.success_accuracy</code>) gets one failure "
        "kind: the first of the list below that applies, read from the statistics every seed records on the training "
        "inputs at initialisation and after the last epoch (thresholds in <code>events.failure</code>: collapsed "
        f"{failure['collapsed']}, saturated {failure['saturated']}, still learning {failure['still_learning']} per "
        "100 epochs).</p>" + table(kinds, "Failure kinds, in order of precedence."))
    counts, sweeps = r.tables["outcomes"], _sweeps(r)
    groups = {"at width 5": [s for s in sweeps if s[1] == 5]}
    for config in dict.fromkeys(c for c, w in sweeps if w != 5):
        groups[f"{config} at other widths"] = [s for s in sweeps if s[0] == config and s[1] != 5]
    for name, group in groups.items():
        if group:
            out += figure(why_figures.outcomes(counts, group),
                          f"Every configuration swept over depth {name}: what became of the seeds at each depth "
                          "(green: succeeded; other colours: the failure kind). Look at which colour takes over "
                          "where the green ends: that is how the configuration stops learning.")
    seeds = r.tables["seeds"]
    failed = seeds[seeds["outcome"] != "succeeded"]
    by_config = failed.groupby("config")["outcome"].value_counts().unstack(fill_value=0)
    by_config = by_config.reindex(columns=[k for k in OUTCOMES if k in by_config.columns]).reset_index()
    learned = seeds[seeds["outcome"] == "succeeded"]
    partly = learned.groupby("config")["partly_dead_init"].mean().rename("succeeded_partly_dead_at_init")
    out += table(by_config.merge(partly.reset_index(), on="config", how="left"),
                 "Failed seeds per kind, every depth and width of each configuration; last column: the share of the "
                 "seeds that succeeded although some unit was dead at initialisation.", digits=2)
    other = seeds[seeds["outcome"] == "other"]
    if len(other):
        out += (f"<p>The {len(other)} seeds left as <em>other</em> are mostly nearly collapsed with a flat loss: at "
                f"the end the median share of their last hidden layer's variance in one component is "
                f"{other['top_share_end'].median():.2f} (threshold {failure['collapsed']}), and the median slope of "
                f"their training loss is {other['loss_slope'].median():+.4f} per 100 epochs.</p>")
    return out


def mechanisms(r) -> str:
    rows, curves = r.explained
    out = heading(TITLES[1]) + (
        "<p>Mean-field theory (the theory section below) describes infinitely wide layers; ours have a handful of "
        "units, and three finite-width effects decide where they stop learning. Each is computed at initialisation "
        "by a Monte Carlo over the configured initialiser and the actual training inputs "
        f"({fw.MC_SAMPLES} networks per configuration and depth, fixed seed) and drawn over what the seeds "
        "showed.</p>")
    if not curves:
        return out + "<p>No configuration was swept over depth in this run.</p>" + CITATIONS
    relu = [k for k in curves if "dead_one_input" in curves[k][1]]
    tanh = [k for k in curves if k not in relu and k[1] == 5]
    if relu:
        out += ("<h3>ReLU: networks born dead</h3><p>At one input, the units of a ReLU layer with symmetric weights "
                "and zero biases are all zero together with probability 2⁻ⁿ, independently from layer to layer, so a "
                "depth-L network is dead there with probability 1 − (1 − 2⁻ⁿ)ᴸ. A network dead on every training "
                "input has a constant output and cannot learn: that lower bound on the failures is the dashed "
                "line.</p>")
        out += figure(why_figures.mechanism(curves, relu, r.colours, {"dead_one_input": "dead at one input: "
                                                                                        "1 − (1 − 2⁻ⁿ)ᴸ"}),
                      "ReLU/He, one panel per width: share of seeds that failed (solid), share born dead on every "
                      "training input as measured (circles) and as the Monte Carlo predicts (dashed), and the "
                      "one-input formula (dotted). Look at the gap between the solid line and the circles: the "
                      "failures that death at birth does not explain.")
        fluct = explain.fluctuations({k: curves[k] for k in relu}, r.params)
        if not fluct.empty:
            slope = fw.relu_log_factor(5)[1] / 4
            out += ("<h3>ReLU/He: fluctuations grow with depth / width</h3><p>Mean-field theory says that He "
                    "initialisation keeps the signal's size constant on average. At finite width each layer "
                    "multiplies the squared size by an independent random factor, so its log drifts down and spreads "
                    f"out in proportion to β = Σ 1/nⱼ (Hanin 2018): at width 5 the variance of the log size grows by "
                    f"{slope:.2f} per layer for Gaussian weights.</p>")
            slopes = explain.fluctuation_slopes(fluct)
            out += table(slopes.rename(columns={
                "drift_rms": "ln RMS: drift per layer", "drift_grad": "ln gradient: drift per layer",
                "drift_predicted": "drift per layer (theory)", "spread_rms": "ln RMS: variance per layer",
                "spread_grad": "ln gradient: variance per layer", "spread_mc": "variance per layer (Monte Carlo)",
                "spread_predicted": "variance per layer (theory)"}),
                "Per width, how the log size of the last hidden layer (ln RMS) and the log first-layer gradient "
                "at initialisation change per added layer (least-squares slopes over depth; drift: mean over "
                "seeds; variance: over seeds), against the closed form for Gaussian weights and the Monte Carlo "
                "for the configured initialiser. Mean-field theory predicts zero for all of them.", digits=3)
            out += figure(why_figures.fluctuations(fluct, r.colours),
                          "Variance over seeds, at initialisation, of the log size of the last hidden layer's "
                          "activations (left) and of the log first-layer gradient (right), against β = depth / width "
                          "(markers: measured; dashed: Monte Carlo with the configured initialiser; dotted: the "
                          "closed form's slope from the shallowest depth). Look at how fast the markers climb: "
                          "mean-field theory predicts a flat line at zero.")
    if tanh:
        gains = explain.common_mode_gains(r.params, tanh)
        measured = {config: explain.measured_gain(r.tables["init_layers"], r.tables["seeds"], config, 5, g["h_star"])
                    for config, g in gains.items()}
        text = "".join(f"<li><code>{config}</code>: h* = {g['h_star']:.3f}, tanh′(h*) = {g['slope']:.3f}, predicted "
                       f"gain {g['gain_mean']:.3f} per layer along the mean ({g['gain']:.3f} with the spread of the "
                       f"weights); measured {measured[config][0]:.3f} (median of {measured[config][1]} ratios of "
                       "consecutive layers' gradients at initialisation where both kernels read activations at the "
                       "fixed point)</li>" for config, g in gains.items())
        out += ("<h3>tanh: collapse onto one line</h3><p>Two concentric circles cannot be separated along one "
                "direction. With <code>RandomUniform(0, 1)</code> the weights' positive mean μ drives every unit "
                "with the same input, which settles at the fixed point h* = tanh(n μ h*); the gradient crossing a "
                "layer is scaled by about n μ tanh′, and the representation collapses to one line within a few "
                "layers. The first few layers are not yet at the fixed point (their activations are smaller and "
                "tanh′ larger), and there the gradient even grows towards the input, so the prediction is tested "
                f"where the activations have reached it.</p><ul>{text}</ul><p>With zero-mean weights (Glorot, "
                "orthogonal) there is no common input, but products of random 5 × 5 matrices pull their top two "
                "directions apart at the rate of the gap between their first two Lyapunov exponents (Newman "
                f"1986): for Gaussian matrices the top direction holds 99% of a round input's variance after "
                f"{fw.collapse_depth(5, 0.99):.1f} layers. "
                "Orthogonal matrices have no gap; only the nonlinearity can collapse them.</p>")
        out += figure(why_figures.mechanism(curves, tanh, r.colours, {}),
                      "tanh at width 5: share of seeds that failed (solid), share whose last hidden layer is "
                      "collapsed at initialisation as measured (circles) and as the Monte Carlo predicts (dashed). "
                      "Look at whether the dashed line rises where the solid one does.")
    shown = rows.assign(predicted_half=rows["half_lost_predicted"], sentence=[explain.sentence(t) for t in
                                                                           rows.itertuples()])
    out += table(shown[["config", "width", "trainable_depth", "low", "high", "half_lost_measured", "mechanism",
                        "predicted_half", "verdict"]].rename(columns={"half_lost_measured": "half lost (measured)",
                                                                      "predicted_half": "half lost (predicted)"}),
                 "Per configuration and mechanism: the trainable depth (95% interval), the depth at which half the "
                 f"seeds were lost and at which the mechanism predicts half lost (inf: not within the depths tried), "
                 f"and the verdict: <em>explained</em> when at the measured half-loss depth the mechanism predicts "
                 f"{explain.EXPLAINS:.0%} to {explain.OVERSHOOTS:.0%} of the measured losses, <em>partly</em> from "
                 f"{explain.PARTLY:.0%}, <em>not explained</em> below; <em>overshoots</em> above, or when it already "
                 "predicts half lost at the trainable depth, where most seeds learn.", digits=1)
    return out + "<ul>" + "".join(f"<li>{s}</li>" for s in shown["sentence"]) + "</ul>" + CITATIONS


def prediction_sentences(r) -> list[str]:
    """The two predictions' verdicts as sentences (also in the findings)."""
    out, trainable = [], r.tables["trainable_depth"]
    verdict = explain.orthogonal_verdict(trainable, "tanh_orthogonal", "tanh_glorot")
    if verdict is not None:
        t = trainable.set_index(explain.SWEEP)
        o, g = t.loc[("tanh_orthogonal", 5)], t.loc[("tanh_glorot", 5)]
        out.append(f"Dynamical isometry predicts that tanh with orthogonal kernels trains deeper than with Glorot's at "
                   f"width 5: <strong>{verdict}</strong> (trainable depth {_depth(o)} against {_depth(g)}).")
    width = explain.width_prediction(r.tables)
    if not width.empty:
        out.append(f"Finite-width theory predicts that ReLU/He's trainable depth grows in proportion to width: "
                   f"<strong>{explain.width_verdict(width)}</strong> ("
                   + ", ".join(f"width {row.width}: {_depth(row)}" for row in width.itertuples()) + ").")
    return out


def _depth(row) -> str:
    if not math.isfinite(row.depth):
        return "none"
    return f"{row.depth:.0f} [{row.low:.0f}, {row.high:.0f}] of {int(row.max_depth_tried)} tried"


def predictions(r) -> str:
    out = heading(TITLES[2])
    sentences = prediction_sentences(r)
    if not sentences:
        return out + "<p>Neither prediction's studies are in this run.</p>"
    out += "<ul>" + "".join(f"<li>{s}</li>" for s in sentences) + "</ul>"
    out += ("<p><strong>Orthogonal initialisation.</strong> Pennington, Schoenholz &amp; Ganguli (2017) show that "
            "tanh networks whose input-output Jacobian keeps all its singular values near 1 (dynamical isometry) "
            "train at depths where Gaussian initialisations fail; orthogonal kernels at the critical point come "
            "closest. Compare the two configurations' success curves in the depth section above.</p>")
    width = explain.width_prediction(r.tables)
    if not width.empty:
        out += figure(why_figures.width_limit(width, r.colours["relu_he"]),
                      "ReLU/He: trainable depth (largest depth where at least half the seeds succeed) against width, "
                      "with 95% bootstrap intervals; dashed: depth proportional to width through the width-5 "
                      "measurement (β fixed); dotted: the depth at which half the networks are dead at one input. "
                      "Look at which line the points follow.")
        out += table(width[["width", "depth", "low", "high", "max_depth_tried", "proportional",
                            "dead_one_input_half"]].rename(columns={"depth": "trainable_depth"}),
                     "ReLU/He's trainable depth per width, the proportional line and the one-input death depth.",
                     digits=1)
    return out
