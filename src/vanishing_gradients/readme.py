"""The README's results tables, written from results/metrics.json: `python -m vanishing_gradients.readme` rewrites
the block between the README's results markers; `--check` only says whether it is up to date (a test runs it)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

START, END = "<!-- results: written by `python -m vanishing_gradients.readme` -->", "<!-- /results -->"


def _interval(entry: dict, key: str = "mean", digits: int = 3) -> str:
    if entry.get(key) is None:
        return "n/a"
    return f"{entry[key]:.{digits}f} [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"


def results_markdown(metrics: dict) -> str:
    """Two tables: the headline experiments, and the trainable depth per configuration and width."""
    lines = ["| experiment | model | test accuracy [95% CI] | seeds that succeed [95% CI] | how the others failed |",
             "|---|---|---|---|---|"]
    for name, s in sorted(metrics["studies"].items()):
        rate = s["success_rate"]
        succeeded = round(rate["rate"] * s["n_seeds"])
        failed = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in s.get("outcomes", {}).items()
                           if n and kind != "succeeded") or "none failed"
        lines.append(f"| `{name}` | `{s['variant']}` | {_interval(s['accuracy_test'])} | {succeeded} of "
                     f"{s['n_seeds']} ({_interval(rate, 'rate', 2)}) | {failed} |")
    lines += ["", "| configuration | width | trainable depth [95% CI] | deepest tried |", "|---|---|---|---|"]
    for name, t in metrics["trainable_depth"].items():
        config, width = name.rsplit("-w", 1)
        depth = "none" if t["depth"] is None else f"{t['depth']:.0f} [{t['low']:.0f}, {t['high']:.0f}]"
        lines.append(f"| `{config}` | {int(width)} | {depth} | {t['max_depth_tried']} |")
    return "\n".join(lines)


def updated(readme: str, metrics: dict) -> str:
    """The README's text with its results block rewritten."""
    head, found, rest = readme.partition(START)
    if not found or END not in rest:
        raise ValueError(f"README has no results block ({START} ... {END})")
    return head + START + "\n" + results_markdown(metrics) + "\n" + END + rest.split(END, 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--metrics", type=Path, default=Path("results/metrics.json"))
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's tables differ from the metrics")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = updated(text, json.loads(args.metrics.read_text()))
    if args.check:
        if new != text:
            print(f"{args.readme}: results tables differ from {args.metrics}; run python -m vanishing_gradients.readme",
                  file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
