"""The whole default study end to end, as a user runs it: a clean clone of this repository's HEAD,
`snakemake --cores 4`, with the installed environment (this interpreter's) and a cold XLA cache.

Prints how the time splits across stages (each job's own wall time, summed per stage; jobs overlap, so
the sum exceeds the end-to-end time; and each job's CPU seconds, summed per stage, which add up to the machine's
work) and, within training, across its parts (making programs, running them with their statistics, writing
event files, the rest), the number of models and the size of results/, then one JSON object on its last line:
end_to_end_s, cpu_s, n_models, results_mb, stages_s, stages_cpu_s, train_parts_s, keras_estimate_h, and the machine
(processor, cores, vector instructions, and the rate it multiplied large matrices at just before and just after the
run: machines differ, and one machine's speed drifts within the hour, so a row names both).

    python benchmarks/end_to_end.py [--cores 4] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from peer import machine, matmul_flops_per_s  # noqa: E402
KERAS_S_PER_MODEL = 31  # benchmarks/README.md: one 500-epoch model.fit of the depth-1 model here (deeper: more)


def _children_cpu_s() -> float:
    """CPU seconds of this process's ended children and theirs (Snakemake and every job it ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="vgrad-e2e-")) / "study"
    rates = [matmul_flops_per_s() / 1e9]  # GFLOP/s, before the run (and after it, below)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(work)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "JAX_COMPILATION_CACHE_DIR": str(work / ".xla-cache")}  # cold: nothing compiled before
    start, cpu_start = time.time(), _children_cpu_s()
    job = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", str(args.cores)], cwd=work, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in job.stdout:  # Snakemake's per-job lines, as progress
        if line.startswith(("rule ", "Finished job", "[")) or "steps" in line:
            print(f"  {time.time() - start:6.0f} s  {line.rstrip()}", file=sys.stderr, flush=True)
    if job.wait():
        sys.exit(f"snakemake failed; see {work}/logs")
    elapsed, cpu = time.time() - start, _children_cpu_s() - cpu_start  # every process Snakemake started
    rates.append(matmul_flops_per_s() / 1e9)
    host = {**machine(), "matmul_gflops_per_s": [round(r) for r in rates]}

    stages, stages_cpu, parts = defaultdict(float), defaultdict(float), defaultdict(float)  # seconds by stage, part
    n_models, devices = 0, set()
    for path in (work / "logs" / "timings").glob("*.json"):
        record = json.loads(path.read_text())
        stages[record["stage"]] += record["wall_s"]
        stages_cpu[record["stage"]] += record.get("cpu_s", 0.0)
        for part, seconds in record.get("parts_s", {}).items():  # the train jobs'
            parts[part] += seconds
        if "parts_s" in record:
            parts["other"] += record["wall_s"] - sum(record["parts_s"].values())
        n_models += record.get("n_models", 0)
        if record.get("device"):
            devices.add(record["device"])
    results_mb = sum(p.stat().st_size for p in (work / "results").rglob("*") if p.is_file()) / 2**20
    print(f"\nend to end: {elapsed:.0f} s for {n_models} models ({', '.join(sorted(devices))}), {cpu:.0f} CPU "
          f"seconds; results/ {results_mb:.0f} MB")
    print(f"machine: {host['cpu']}, {host['cores']} cores, {host['vector']}; a 2048 x 2048 matrix product at "
          f"{rates[0]:.0f} GFLOP/s before the run and {rates[1]:.0f} after")
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:10s} {seconds:7.1f} s wall, {stages_cpu[stage]:7.1f} s CPU (sums over its jobs)")
    print("  train, by part: " + ", ".join(f"{part} {seconds:.0f} s" for part, seconds in sorted(parts.items())))
    estimate_h = n_models * KERAS_S_PER_MODEL / 3600
    print(f"model.fit one model after another: at least {estimate_h:.0f} hours "
          f"({KERAS_S_PER_MODEL} s per model, benchmarks/README.md)")
    print(json.dumps({"end_to_end_s": round(elapsed, 1), "cpu_s": round(cpu, 1), "n_models": n_models,
                      "results_mb": round(results_mb, 1),
                      "stages_s": {k: round(v, 1) for k, v in sorted(stages.items())},
                      "stages_cpu_s": {k: round(v, 1) for k, v in sorted(stages_cpu.items())},
                      "train_parts_s": {k: round(v, 1) for k, v in sorted(parts.items())},
                      "keras_estimate_h": round(estimate_h, 1), "devices": sorted(devices), "cores": args.cores,
                      "machine": host}))


if __name__ == "__main__":
    main()
