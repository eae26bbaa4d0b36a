"""End to end on a tiny parameter set, in a temporary copy of the repository: Snakemake and DVC agree,
runs are reproducible, bad input changes nothing, `dvc metrics diff` sees a parameter change and queued experiments
run (the published baseline: test_baseline.py)."""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import (LOCAL_ENV, clear_outputs, commit, in_sync, kept, planned_jobs, repro, run, snapshot,
                      write_params)

pytestmark = pytest.mark.e2e


def test_snakemake_and_dvc_agree_and_repeat_byte_identically(repo):
    run(repo, sys.executable, "-m", "snakemake", "--cores", "2")
    by_snakemake = (repo / "results/metrics.json").read_bytes()
    report = (repo / "reports/summary.html").read_text()
    assert "<img" in report and "deep_relu" in report and "Theory" in report
    assert not re.search(r"(src|href)=\"https?:", report)  # self-contained: nothing to fetch
    (repo / "summary_by_snakemake.html").write_text(report)  # for the browser test (outputs are cleared next)

    clear_outputs(repo)
    run(repo, "dvc", "repro")
    assert (repo / "results/metrics.json").read_bytes() == by_snakemake
    metrics = json.loads(by_snakemake)
    assert set(metrics["studies"]) == {"shallow_tanh", "deep_tanh", "deep_relu"}  # the one-variant studies
    assert metrics["studies"]["deep_relu"]["n_seeds"] == 2
    assert set(metrics["trainable_depth"]) == {"relu_he-w05", "tanh_uniform-w05", "tanh_uniform-w07"}
    locks = sorted(repo.glob("results/*/.*.lock"))  # stages' writer locks, each holding its writer's process id
    assert locks
    for lock in locks:  # another run's process ids: whole-folder deps (results/runs) must hash the same
        lock.write_text("1")
    assert "Data and pipelines are up to date" in run(repo, "dvc", "status").stdout
    commit(repo, "results")


def test_success_and_failure_thresholds_rerun_only_the_metrics(repo):
    """events.success_accuracy and events.failure are read by the metrics alone: changing them retrains nothing,
    under either tool."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["events"]["success_accuracy"] = 0.55
    params["events"]["failure"]["collapsed"] = 0.95
    # back to the committed parameters and results afterwards, and to the manifests that vouch for them, time
    # stamps and all: the tests after this one find the state before it, with nothing for either tool to redo
    with kept(repo, "params.yaml", "dvc.lock", "results/params.json", "results/metrics.json", "results/plots",
              "reports", ".manifests"):
        write_params(repo, params)
        planned = planned_jobs(repo)
        assert set(planned) - {"all"} == {"params", "metrics", "report"}, planned
        ran = repro(repo)
        assert sorted(ran) == ["metrics", "params", "report"], ran
    assert "Data and pipelines are up to date" in run(repo, "dvc", "status").stdout


# (package module edited, stages whose code it is, every stage after them): each stage depends on its own code
CODE_EDITS = [("report/figures.py", {"report"}, {"report"}),
              ("analysis/summary.py", {"metrics", "report"}, {"metrics", "report"}),
              ("record/gradients.py", {"gradients"}, {"gradients", "metrics", "report"}),
              ("train/jax/model.py", {"train"}, {"train", "gradients", "metrics", "report"})]


@pytest.fixture(scope="module")
def synced(repo):
    """The shared copy with both tools in sync, once for the edits below: each puts back the bytes and time stamps
    it changed and checks that both tools are in sync again, so the next needs no sync of its own."""
    in_sync(repo)
    return repo


@pytest.mark.parametrize("module, direct, onward", CODE_EDITS, ids=[m for m, _, _ in CODE_EDITS])
def test_editing_code_reruns_only_the_stages_that_run_it(synced, module, direct, onward):
    """A line appended to a module: `dvc status` finds changed code in the stages that run it, and `snakemake -n`
    plans those stages and everything after them, nothing before (editing a figure never retrains a model)."""
    repo = synced
    name = f"src/vanishing_gradients/{module}"
    with kept(repo, name):  # the original bytes and time stamps: both tools see the committed state again
        path = repo / name
        path.write_bytes(path.read_bytes() + b"# an edit\n")
        planned = set(planned_jobs(repo)) - {"all"}
        assert planned == onward, planned
        status = json.loads(run(repo, "dvc", "status", "--json").stdout)
        assert {stage.split("@")[0] for stage in status} == direct, status
    assert set(planned_jobs(repo)) - {"all"} == set()
    assert json.loads(run(repo, "dvc", "status", "--json").stdout) == {}


def test_report_renders_in_a_real_browser(repo):
    """Debian's chromium opens the report in a 1280 px window: every figure loads and has a caption, nothing
    needs a sideways scroll (neither the page nor any box in it), headers are readable words rather than
    column names, there is a contents list whose links all land, nothing is fetched from the network, no console
    errors; a full-page screenshot is saved beside it."""
    pytest.importorskip("playwright", reason="pip install -e '.[test]' brings playwright")
    from playwright.sync_api import sync_playwright
    chromium = next((c for c in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(c).exists()), None)
    if chromium is None:
        pytest.skip("no chromium (.ci/run installs Debian's chromium)")
    html = repo / "summary_by_snakemake.html"
    errors, fetched = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(html.as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
        title = page.eval_on_selector("h1", "e => e.textContent")
        # every element whose content is wider than its box (a scrollbar, or content cut off)
        too_wide = page.evaluate("""() => [...document.querySelectorAll('*')]
            .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible'
                         || e === document.documentElement && e.scrollWidth > window.innerWidth)
            .map(e => `${e.tagName}.${e.className} ${e.scrollWidth} > ${e.clientWidth}`)""")
        captions = page.eval_on_selector_all("img", "els => els.map(e => e.closest('figure')?.querySelector("
                                             "'figcaption')?.textContent.trim().length || 0)")
        headers = page.eval_on_selector_all("th", "els => els.map(e => e.textContent.trim())")
        links = page.eval_on_selector_all("nav a", "els => els.map(a => a.getAttribute('href'))")
        targets = [page.locator(link).count() for link in links]
        page.screenshot(path=str(repo / "summary_screenshot.png"), full_page=True)
        browser.close()
    assert len(images) >= 8 and all(done and w > 100 and h > 100 for done, w, h in images), images
    assert [url for url in fetched if not url.startswith(("file:", "data:"))] == []
    assert errors == []
    assert "Vanishing gradients" in title
    assert too_wide == [], too_wide
    assert all(length > 40 for length in captions), captions  # a sentence under every figure
    assert headers and not [h for h in headers if re.fullmatch(r"\w+_\w+", h)], headers  # no raw column names
    assert len(links) >= 8 and targets == [1] * len(links), (links, targets)
    assert (repo / "summary_screenshot.png").stat().st_size > 50_000


@pytest.mark.parametrize("bad", ["train:\n  epochs: [oops\n", "typo", "train:\n  epochs: 3\n  epochs: 4\n"],
                         ids=["malformed", "typo", "duplicate key"])
def test_bad_params_change_nothing_under_either_tool(repo, bad):
    good = (repo / "params.yaml").read_text()
    before = snapshot(repo)
    if bad == "typo":
        params = yaml.safe_load(good)
        params["train"]["epoch"] = params["train"].pop("epochs")
        write_params(repo, params)
    else:
        (repo / "params.yaml").write_text(bad)
    try:
        for cmd in ([sys.executable, "-m", "snakemake", "--cores", "2"], ["dvc", "repro"]):
            done = run(repo, *cmd, check=False)
            assert done.returncode != 0
            assert ("train.epoch" if bad == "typo" else "params.yaml") in done.stdout + done.stderr
            assert snapshot(repo) == before
    finally:
        (repo / "params.yaml").write_text(good)


def test_invalid_value_fails_the_dvc_stage_and_keeps_results(repo):
    good = (repo / "params.yaml").read_text()
    before = snapshot(repo)
    params = yaml.safe_load(good)
    params["train"]["epochs"] = 0
    write_params(repo, params)
    try:
        done = run(repo, "dvc", "repro", check=False)
        assert done.returncode != 0 and "train.epochs" in done.stdout + done.stderr
        assert snapshot(repo) == before
    finally:
        (repo / "params.yaml").write_text(good)


def test_metrics_diff_shows_a_parameter_change(repo):
    """A study's own parameter retrains that study alone; `dvc metrics diff` shows its new numbers."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["studies"]["deep_relu"]["seeds"] = 3
    write_params(repo, params)
    ran = repro(repo, "metrics")  # what the diff reads: the report after it would add nothing to check
    assert [stage for stage in ran if stage.startswith(("train@", "gradients@"))] == [
        "train@deep_relu", "gradients@deep_relu"], ran
    diff = json.loads(run(repo, "dvc", "metrics", "diff", "--json").stdout)
    changed = diff["results/metrics.json"]
    assert changed["studies.deep_relu.n_seeds"] == {"old": 2, "new": 3, "diff": 1}
    assert "studies.deep_relu.accuracy_test.mean" in changed
    assert "studies.deep_tanh.accuracy_test.mean" not in changed


def test_queued_experiments_run_and_are_listed(repo):
    """`dvc exp run --queue -S ...` twice, `dvc queue start`, then `dvc exp show` lists both experiments."""
    for seeds in (4, 5):  # a study's own parameter: each experiment retrains that study alone, up to the metrics
        run(repo, "dvc", "exp", "run", "--queue", "-S", f"studies.deep_relu.seeds={seeds}", "metrics")
    # The workers are daemons that inherit the starter's output: captured, `dvc queue start` would wait for them,
    # and forever when a worker that logged "shutting down due to empty queue" stays alive after its task.
    with open(repo.parent / "queue_start.log", "w") as log:
        subprocess.run(["dvc", "queue", "start", "-j", "2"], cwd=repo, env=LOCAL_ENV, stdout=log, stderr=log,
                       stdin=subprocess.DEVNULL, check=True)
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            status = run(repo, "dvc", "queue", "status").stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(3)
    finally:
        run(repo, "dvc", "queue", "stop", "--kill", check=False)  # no worker outlives the test's folder
    assert "Failed" not in status, status
    shown = json.loads(run(repo, "dvc", "exp", "show", "--json").stdout)
    experiments = [exp["data"] for rev in shown for exp in (rev.get("experiments") or []) for exp in exp["revs"]]
    seeds = {exp["params"]["params.yaml"]["data"]["studies"]["deep_relu"]["seeds"]: exp["metrics"][
        "results/metrics.json"]["data"]["studies"]["deep_relu"]["n_seeds"] for exp in experiments}
    assert seeds == {4: 4, 5: 5}
