"""The benchmark scripts still run and end with their JSON line (their figures are not checked here)."""
import json
import os
import subprocess
import sys

import jax
import pytest

from conftest import ROOT, tiny


def test_engine_speed_prints_its_figures_as_json():
    if jax.default_backend() != "cpu":
        pytest.skip("with a GPU, P3 runs at its full size")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "engine_speed.py"), "--parts", "p2,p2w,p5,p3",
                           "--p2-replicas", "4", "--p2-epochs", "3", "--p2w-epochs", "2", "--p2w-shape", "2x3",
                           "--p5-epochs", "2", "--stats-freq", "1", "--histogram-freq", "2"],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["p2_model_epochs_per_s"] > 0 and result["peak_rss_mb"]["p2"] > 0
    assert result["p2w_model_epochs_per_s"] > 0 and result["matmul_gflops_per_s"] > 0
    # the floor: 2 x (2x3 + 3x3 + 3) flops a row forward, three times that per training row, 500 rows of each
    assert result["p2w_floor_share"] == pytest.approx(result["p2w_model_epochs_per_s"] * 36 * (3 * 500 + 500)
                                                      / (result["matmul_gflops_per_s"] * 1e9))
    try:
        import torch  # noqa: F401
        assert result["p5_ratio"] == pytest.approx(result["p2_model_epochs_per_s"]
                                                   / result["p5_peer_model_epochs_per_s"])
    except ImportError:  # the peer is an optional extra (bench)
        assert result["p5_ratio"] is None and "P5  skipped: torch is not installed" in done.stdout
    assert result["p3_model_epochs_per_s"] is None and "P3  skipped: JAX sees no GPU" in done.stdout
    assert result["device"] == "cpu"
    assert result["machine"]["cores"] == os.cpu_count() and result["machine"]["vector"] in (
        "AVX-512", "AVX2", "neither AVX-512 nor AVX2", "unknown") and result["machine"]["cpu"]


def test_gpu_kernel_resources_extracts_each_kernels_triton_module():
    """The part of gpu_kernel_resources.py that needs no Triton: each kernel's Triton module, lowered for CUDA
    on this machine, whole and without the source locations that pip's Triton cannot parse."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_kernel_resources as resources
    finally:
        sys.path.pop(0)
    for name, call in resources.kernels(2).items():
        text = resources.triton_text(call)
        assert text.startswith("module @") and text.rstrip().endswith("}"), name
        assert "tt.func" in text and "scf.for" in text and "tt.load" in text, name
        assert "loc(" not in text and "#loc" not in text and "gpu.barrier" not in text, name
    from vanishing_gradients.train.jax import gpu_kernels
    assert gpu_kernels.jax.default_backend() == "cpu"  # the lowering's patches are undone


def test_gpu_epoch_parts_times_each_part_of_an_epoch():
    """Tiny, with the kernels interpreted: every part is timed and the shares add up to the epoch."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_epoch_parts.py"), "--depth", "2",
                           "--replicas", "4", "--repeats", "1"], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(result["ms_per_call"]) == ["row orders", "batches, kernels' layout", "training steps",
                                           "validation", "statistics", "histograms"]
    assert all(ms > 0 for ms in result["ms_per_call"].values())
    shares = [float(line.split("%")[0].split()[-1]) for line in done.stdout.splitlines() if "% of an epoch" in line]
    assert len(shares) == 6 and abs(sum(shares) - 100) < 0.5


def test_engine_agreement_compares_both_engines_and_resumes(params, tmp_path):
    """Tiny: 3 epochs, 3 seeds; each Keras fit is cached, so a second run trains again only the fit that an
    older version of the reference engine left in the cache."""
    pytest.importorskip("tensorflow", reason="the Keras reference needs TensorFlow")
    import yaml
    params["train"]["epochs"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    command = [sys.executable, str(ROOT / "benchmarks" / "engine_agreement.py"), "--params",
               str(tmp_path / "params.yaml"), "--cases", "relu_he:2", "--seeds", "3", "--fast-seeds", "3",
               "--cache", str(tmp_path / "cache.jsonl")]
    first = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(first.stdout.strip().splitlines()[-1])["relu_he:2"]
    assert result["seeds"] == {"keras": 3, "jax": 3} and 0 <= result["fisher_p"] <= 1
    assert 0 <= result["mann_whitney_p"] <= 1 and set(result["success_rate"]) == {"keras", "jax"}
    # from Keras's own weights and batch orders, 3 epochs end alike on both engines
    assert result["same_draws"]["same_accuracy"] == 3 and result["same_draws"]["mcnemar_p"] == 1.0
    many = result["many_seeds"]  # 3 seeds, as many as the independent run: its program again, not another compile
    assert many["seeds"] == {"keras": 3, "jax": 3} and many["jax_rate"][1] <= many["jax_rate"][0] <= many["jax_rate"][2]
    cache = (tmp_path / "cache.jsonl").read_text().splitlines()
    stale = {**json.loads(cache[0]), "reference": "older"}
    (tmp_path / "cache.jsonl").write_text("\n".join([json.dumps(stale), *cache[1:]]) + "\n")
    again = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "1 Keras fits to go (2 cached" in again.stdout
    assert json.loads(again.stdout.strip().splitlines()[-1])["relu_he:2"] == result


def test_program_forms_times_both_forms_and_compares_their_numbers():
    """Tiny: one shape, one epoch; both forms made, run and timed, and their final metrics equal."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "program_forms.py"), "--epochs", "1",
                           "--shapes", "tanh:2:1-2:2"], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])["shapes"]["tanh:2:1-2:2"]
    assert result["same_final_metrics"] and result["speed_up"] > 0
    assert all(result[form]["compile_s"] > 0 and result[form]["model_epochs_per_s"] > 0
               for form in ("default", "narrow"))


def _program_costs():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import program_costs
    finally:
        sys.path.pop(0)
    return program_costs


def test_program_costs_fit_recovers_the_constants_it_was_given():
    """Figures made from known constants with core/cost.py's form give those constants back."""
    fit = _program_costs().fit
    truth = {"COMPILE_S": 12.0, "COMPILE_S_PER_LAYER": 0.5, "COMPILE_S_PER_WIDTH": 0.3, "UNIT_ROW_S": 7e-9,
             "UNIT_ROW_S_PER_WIDTH": 6e-10, "UNIT_EPOCH_S": 1e-4, "PROGRAM_EPOCH_S": 5e-3}
    t, rows = truth, []
    for k, d, w in [(100, 1, 5), (300, 25, 5), (100, 10, 25), (240, 12, 2), (110, 24, 8), (50, 5, 20)]:
        rows.append({"replicas": k, "deepest": d, "width": w,
                     "make_cpu_s": t["COMPILE_S"] + t["COMPILE_S_PER_LAYER"] * d + t["COMPILE_S_PER_WIDTH"] * w,
                     "run_cpu_s_per_epoch": k * d * w * 1000 * (t["UNIT_ROW_S"] + t["UNIT_ROW_S_PER_WIDTH"] * w)
                     + t["UNIT_EPOCH_S"] * d * w + t["PROGRAM_EPOCH_S"]})
    assert fit(rows, 1000) == pytest.approx(truth, rel=1e-6)


def test_program_costs_times_each_program_of_a_study(params, tmp_path):
    """Tiny: the one program of a headline study, one epoch, made and run; too few programs to fit."""
    import yaml
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny(params, sweeps=False)))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "program_costs.py"), "--params",
                           str(tmp_path / "params.yaml"), "--studies", "deep_relu", "--epochs", "1"],
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    (row,) = result["programs"]
    assert (row["study"], row["width"], row["depths"], row["replicas"]) == ("deep_relu", 5, [5, 5], 2)
    assert row["make_cpu_s"] > 0 and row["run_cpu_s"] > 0 and set(row["estimate_s"]) == {"make", "run"}
    assert result["fitted"] is None and result["epochs"] == 3
