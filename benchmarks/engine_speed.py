"""Speed of the fast engine against the Keras reference, measured side by side in one run.

    python benchmarks/engine_speed.py            # P1, P2, P2w, P5 (and P3 where JAX sees a GPU)
    python benchmarks/engine_speed.py --parts p2,p3 --p2-epochs 20

P1: one depth-5 width-5 model, 500 epochs: Keras `model.fit` time / fast-engine time (compile
    excluded and included).
P2: CPU throughput at 1,000 replicas, in runs of `--p2-chunk` that go side by side, one per core.
P2w: the same at width 25, depth 10 (`--p2w-shape`). For both, the share of the arithmetic floor: the
    floating-point operations a model-epoch needs (peer.py's flops) at the rate this machine multiplies
    large matrices (JAX, every core).
P5: P2's training written as a PyTorch user would (peer.py), at P2's size: P2's rate / the peer's (needs
    torch: pip install -c requirements.lock -e '.[bench]').
P3: GPU throughput at 10,000 and 100,000 replicas, depth 5 and 20, each in one run (with the GPU kernels
    where VGRAD_GPU_KERNELS=1, see train/jax/program.py).
The fast engine computes per-layer statistics every `--stats-freq` epochs (validation and training gradient
means, kernel L1 norms, update ratios, saturated and dead shares) and one replica's histograms every
`--histogram-freq` epochs, as a study's detail seed (defaults: the study's own 10 and 50). Each part runs in a
fresh interpreter, so its peak memory is its own, with JAX's persistent compilation cache off, so "with
compile" really compiles.
The last line printed is one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from peer import flops, machine

SPEC = {"depth": 5, "width": 5, "activation": "tanh", "hidden_init": {"name": "random_uniform", "minval": 0.0,
                                                                     "maxval": 1.0},
        "output_init": {"name": "random_uniform", "minval": 0.0, "maxval": 1.0}}
SGD = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}
N_TRAIN, N_VALIDATION = 500, 500  # the study's circles: training rows, and the test rows that validate


def _data():
    from vanishing_gradients.core.data import arrays, make_dataset
    frame = make_dataset({"n_samples": N_TRAIN + N_VALIDATION, "noise": 0.1, "random_state": 1, "n_train": N_TRAIN,
                          "scaler_fit": "all"})
    return {"train": arrays(frame, "train"), "test": arrays(frame, "test")}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part_keras(args) -> dict:
    """The reference: a plain 500-epoch model.fit of the deep tanh model, as the original ran it."""
    from vanishing_gradients.train.keras import configure, keras
    from vanishing_gradients.core.models import ModelSpec
    from vanishing_gradients.train.keras import build_keras_model, keras_optimizer
    configure(1)
    data = _data()
    keras.utils.set_random_seed(1)
    model = build_keras_model(ModelSpec(**SPEC))
    model.compile(optimizer=keras_optimizer(SGD), loss="binary_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(*data["train"], batch_size=32, epochs=args.p1_epochs, validation_data=data["test"], verbose=0)
    return {"fit_s": time.perf_counter() - start}


def _engine_run(replicas: int, epochs: int, depth: int, args, chunk: int, width: int = 5) -> dict:
    """Train `replicas` replicas twice, at most `chunk` per program run: the first call compiles, the
    second is the steady state."""
    import jax

    from vanishing_gradients.train.jax import program as je
    from vanishing_gradients.core.models import ModelSpec
    spec = ModelSpec(**{**SPEC, "depth": depth, "width": width})
    cfg = je.Training(spec.activation, "sgd", epochs, 32, stats_freq=args.stats_freq,
                      histogram_freq=args.histogram_freq)
    data, seeds = _data(), list(range(replicas))
    times = []
    for _ in range(2):
        start = time.perf_counter()
        out = je.train_replicas(cfg, [spec] * replicas, seeds, [SGD] * replicas, data, detail=[0], chunk=chunk)
        jax.block_until_ready(out["final"])
        times.append(time.perf_counter() - start)
    return {"first_s": times[0], "run_s": times[1], "model_epochs_per_s": replicas * epochs / times[1],
            "device": str(jax.devices()[0].device_kind)}


def part_jax_one(args) -> dict:
    return _engine_run(1, args.p1_epochs, 5, args, chunk=1)


def part_p2(args) -> dict:
    import jax
    jax.config.update("jax_platforms", "cpu")
    return _engine_run(args.p2_replicas, args.p2_epochs, 5, args, chunk=args.p2_chunk)


def _p2w_shape(args) -> tuple[int, int]:
    """P2w's (depth, width), from --p2w-shape DEPTHxWIDTH."""
    depth, width = map(int, args.p2w_shape.split("x"))
    return depth, width


def part_p2w(args) -> dict:
    import jax
    jax.config.update("jax_platforms", "cpu")
    depth, width = _p2w_shape(args)
    return _engine_run(args.p2_replicas, args.p2w_epochs, depth, args, chunk=args.p2_chunk, width=width)


def part_matmul(args) -> dict:
    """The rate this machine multiplies large float32 matrices: the arithmetic floor's denominator."""
    from peer import matmul_flops_per_s
    return {"flops_per_s": matmul_flops_per_s()}


def part_p5(args) -> dict:
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"skipped": "torch is not installed (pip install -c requirements.lock -e '.[bench]')"}
    from peer import torch_peer
    data = _data()
    return torch_peer(data, args.p2_replicas, args.p5_epochs, depth=5, width=5)


def part_p3(args) -> dict:
    """One P3 configuration (--p3-depth, --p3-replicas), with the GPU memory it peaked at."""
    import jax
    if jax.default_backend() != "gpu":
        return {"skipped": "JAX sees no GPU"}
    from vanishing_gradients.train.jax.program import GPU_KERNELS
    run = _engine_run(args.p3_replicas, args.p3_epochs, args.p3_depth, args, chunk=args.p3_replicas)
    return {**run, "gpu_peak_mb": jax.devices()[0].memory_stats()["peak_bytes_in_use"] / 2**20,
            "gpu_kernels": GPU_KERNELS}


PARTS = {"keras": part_keras, "jax_one": part_jax_one, "p2": part_p2, "p2w": part_p2w, "matmul": part_matmul,
         "p5": part_p5, "p3": part_p3}


def _run_part(name: str, argv: list[str]) -> dict:
    # its progress and errors go straight to our stderr; its result is the last line of its stdout
    done = subprocess.run([sys.executable, __file__, "--only", name, *argv], stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_COMPILATION_CACHE_DIR": ""})
    if done.returncode != 0:
        raise RuntimeError(f"part {name} failed with exit status {done.returncode} (its error is above)")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="p1,p2,p2w,p5,p3", help="comma-separated: p1, p2, p2w, p5, p3")
    parser.add_argument("--p1-epochs", type=int, default=500)
    parser.add_argument("--p2-replicas", type=int, default=1000)
    parser.add_argument("--p2-epochs", type=int, default=100)
    parser.add_argument("--p2-chunk", type=int, default=500,
                        help="replicas per program run; the runs go side by side, one per CPU core")
    parser.add_argument("--p2w-epochs", type=int, default=20)
    parser.add_argument("--p2w-shape", default="10x25", help="P2w's DEPTHxWIDTH")
    parser.add_argument("--p5-epochs", type=int, default=20)
    parser.add_argument("--p3-epochs", type=int, default=100)
    parser.add_argument("--p3-configs", default="5x10000,5x100000,20x10000,20x100000",
                        help="P3's configurations, DEPTHxREPLICAS, comma-separated")
    parser.add_argument("--p3-depth", type=int, default=5, help=argparse.SUPPRESS)  # set per P3 configuration
    parser.add_argument("--p3-replicas", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument("--stats-freq", type=int, default=10, help="per-layer statistics every N epochs")
    parser.add_argument("--histogram-freq", type=int, default=50,
                        help="one replica's histograms every N epochs (a multiple of --stats-freq; 0: none)")
    parser.add_argument("--only", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps({**PARTS[args.only](args), "peak_rss_mb": _peak_mb()}))
        return
    own = ("parts", "only", "p3_configs", "p3_depth", "p3_replicas")  # not handed down to the parts as they are
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in own]
    parts, result = args.parts.split(","), {"p1_ratio": None, "p2_model_epochs_per_s": None,
                                            "p2w_model_epochs_per_s": None, "p5_ratio": None,
                                            "p3_model_epochs_per_s": None, "peak_rss_mb": {},
                                            "machine": machine()}
    if "p1" in parts:
        keras, jax_one = _run_part("keras", argv), _run_part("jax_one", argv)
        result.update(p1_ratio=keras["fit_s"] / jax_one["run_s"],
                      p1_ratio_with_compile=keras["fit_s"] / jax_one["first_s"])
        result["peak_rss_mb"].update(p1_keras=keras["peak_rss_mb"], p1_jax=jax_one["peak_rss_mb"])
        print(f"P1  Keras fit {keras['fit_s']:.1f} s; fast engine {jax_one['run_s']:.3f} s "
              f"({jax_one['first_s']:.2f} s with compile): {result['p1_ratio']:.0f}x "
              f"({result['p1_ratio_with_compile']:.0f}x with compile)", flush=True)
    if {"p2", "p2w"} & set(parts):
        floor = _run_part("matmul", argv)["flops_per_s"]
        result["matmul_gflops_per_s"] = floor / 1e9
    for name, depth, width in (("p2", 5, 5), ("p2w", *_p2w_shape(args))):
        if name not in parts:
            continue
        found, model_flops = _run_part(name, argv), flops(depth, width, N_TRAIN, N_VALIDATION)
        result.update({f"{name}_model_epochs_per_s": found["model_epochs_per_s"], "device": found["device"]})
        result[f"{name}_floor_share"] = found["model_epochs_per_s"] * model_flops / floor
        result["peak_rss_mb"][name] = found["peak_rss_mb"]
        print(f"{name.upper():3} {args.p2_replicas} replicas of depth {depth}, width {width} x "
              f"{getattr(args, name + '_epochs')} epochs on CPU, runs of {args.p2_chunk}: "
              f"{found['model_epochs_per_s']:,.0f} model-epochs/s (compile+run {found['first_s']:.1f} s), "
              f"{result[name + '_floor_share']:.1%} of the arithmetic floor ({model_flops:,} "
              f"flops a model-epoch at {floor / 1e9:.0f} GFLOP/s)", flush=True)
    if "p5" in parts:
        p5 = _run_part("p5", argv)
        if "skipped" in p5:
            print(f"P5  skipped: {p5['skipped']}", flush=True)
        else:
            result.update(p5_peer_model_epochs_per_s=p5["model_epochs_per_s"], p5_torch=p5["torch"])
            result["peak_rss_mb"]["p5"] = p5["peak_rss_mb"]
            ours = result["p2_model_epochs_per_s"]
            result["p5_ratio"] = ours / p5["model_epochs_per_s"] if ours else None
            print(f"P5  PyTorch {p5['torch']} peer (torch.func, {p5['threads']} threads), {args.p2_replicas} "
                  f"replicas x {args.p5_epochs} epochs: {p5['model_epochs_per_s']:,.0f} model-epochs/s"
                  + (f"; ours (with statistics) / peer: {result['p5_ratio']:.2f}x" if ours else ""), flush=True)
    if "p3" in parts:  # each configuration in its own interpreter, so its GPU memory peak is its own
        p3 = {}
        for depth, replicas in (map(int, c.split("x")) for c in args.p3_configs.split(",")):
            found = _run_part("p3", [*argv, f"--p3-depth={depth}", f"--p3-replicas={replicas}"])
            if "skipped" in found:
                print(f"P3  skipped: {found['skipped']}", flush=True)
                break
            p3[f"depth{depth}_replicas{replicas}"] = found
            print(f"P3  depth {depth}, {replicas:,} replicas: {found['model_epochs_per_s']:,.0f} model-epochs/s "
                  f"(compile+run {found['first_s']:.1f} s; peak GPU memory {found['gpu_peak_mb']:,.0f} MB)",
                  flush=True)
        if p3:
            result["p3_model_epochs_per_s"] = {k: v["model_epochs_per_s"] for k, v in p3.items()}
            result["gpu_peak_mb"] = {k: v["gpu_peak_mb"] for k, v in p3.items()}
            result["peak_rss_mb"].update({f"p3_{k}": v["peak_rss_mb"] for k, v in p3.items()})
            result["gpu"] = result["device"] = next(iter(p3.values()))["device"]
            result["gpu_kernels"] = next(iter(p3.values()))["gpu_kernels"]  # VGRAD_GPU_KERNELS=1
    result.setdefault("device", "cpu")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
