"""Work split over 2 CPU processes (gloo) equals the single-process run; one failing rank stops every rank."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.analysis import analyze_model
from landscape.models.classifier import Classifier
from landscape.models.datamodule import ImageDataModule
from landscape.models.registry import build_model, model_config
from landscape.sampling.sample import LandscapeSample

from . import ddp_fit
from .dist_helpers import OPTIONS, analyze_worker, bf16_worker, problem, spawn

ROOT = Path(__file__).resolve().parents[1]


def test_two_ranks_equal_one(tmp_path):
    spawn(analyze_worker, 2, str(tmp_path), None)
    model, data = problem()
    ref = analyze_model(model, data, options=OPTIONS)
    got = LandscapeSample.load(tmp_path / "result" / "sample")
    np.testing.assert_array_equal(got.indices, np.arange(len(ref.sample.losses)))
    np.testing.assert_allclose(got.coords, ref.sample.coords, rtol=0, atol=0)
    np.testing.assert_allclose(got.losses, ref.sample.losses, rtol=1e-6, atol=1e-7)
    # rank zero builds the directions and sends them: the ranks hold bitwise the same matrix. Against this process
    # (another thread count) the filter norms' reductions round differently: up to 2.4e-7 measured, 1e-6 allowed
    assert (tmp_path / "directions0.bin").read_bytes() == (tmp_path / "directions1.bin").read_bytes()
    np.testing.assert_allclose(got.direction_matrix, ref.sample.direction_matrix, rtol=1e-6, atol=1e-9)
    s0, s1 = (json.loads((tmp_path / f"scalars{r}.json").read_text()) for r in (0, 1))
    assert s0 == s1  # every rank holds the same numbers
    for key in ("lambda_max", "lambda_min", "trace", "analytic_scalar", "loss_center"):
        assert s0[key] == pytest.approx(ref.scalars[key], rel=1e-5), key
    assert s0["dc_scalar"] == pytest.approx(ref.scalars["dc_scalar"], rel=1e-4)
    saved = json.loads((tmp_path / "result" / "results.json").read_text())
    assert saved["world_size"] == 2 and ref.world_size == 1
    np.testing.assert_allclose(saved["top_eigenvalues"], ref.top_eigenvalues, rtol=1e-5)
    nodes = np.asarray(saved["density"]["nodes"][0])
    np.testing.assert_allclose(nodes, ref.density.nodes[0], rtol=1e-4, atol=1e-5 * abs(ref.scalars["lambda_max"]))


def test_two_ranks_take_the_same_bfloat16_decision_as_one(tmp_path):
    """Each rank checks its share of the first rows and every rank reads all of them: the same measured deviation
    (bitwise) and the same precision on every rank, and the one-process run's."""
    from landscape.sampling.coordinates import ball
    from landscape.sampling.directions import make_directions
    from landscape.sampling.sampler import sample_landscape

    spawn(bf16_worker, 2, str(tmp_path))
    r0, r1 = (json.loads((tmp_path / f"bf16_{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1 and r0["precision"] == "bfloat16"
    model, data = problem()
    d = make_directions(model, "filter", 2, seed=0)
    ref = sample_landscape(model, data, d, ball(40, 2, 1.0, seed=0), progress=False, precision="bfloat16")
    assert ref.meta["precision"] == "bfloat16"
    assert r0["deviation"] == pytest.approx(ref.meta["bf16_deviation"], rel=0.05)  # bfloat16 rounding, threads
    np.testing.assert_allclose(r0["losses"], ref.losses, rtol=1e-3)


@pytest.mark.parametrize(
    "phase, what",
    [("sampling", "sampling"), ("field", "the exact slice field"), ("hessian", "a Hessian-vector product")],
)
def test_one_failing_rank_stops_all(tmp_path, phase, what):
    spawn(analyze_worker, 2, str(tmp_path), phase)
    for rank in (0, 1):
        msg = (tmp_path / f"error{rank}.txt").read_text()
        assert f"1 of 2 ranks failed during {what}" in msg and f"rank 1: ValueError: injected failure in {phase}" in msg
    assert not list(tmp_path.glob("scalars*.json")) and not (tmp_path / "result").exists()


def _ddp_fit(out, *extra):
    cmd = [sys.executable, "-m", "tests.ddp_fit", str(out), *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_lightning_ddp_callback_equals_single_process(tmp_path):
    """A real 2-process DDP fit: rank zero alone writes, and its files hold the single-process numbers."""
    run = _ddp_fit(tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (tmp_path / "writes-rank1.txt").exists()
    writes = (tmp_path / "writes-rank0.txt").read_text().split()
    in_folders = [w for w in writes if "epoch=" in w]  # analysis folders; history.csv sits beside them
    assert in_folders[-1].endswith("results.json") and any(w.endswith("sample.npz") for w in writes)
    assert writes[-1].endswith("history.csv")
    folder = tmp_path / "run" / "version_0" / "landscape" / f"epoch={ddp_fit.EPOCHS - 1}"

    dm = ImageDataModule("digits")
    module = Classifier(model_config("mlp", dm.input_shape, dm.num_classes))
    module.model.load_state_dict(torch.load(tmp_path / "final.pt", weights_only=True))
    ref = analyze_model(module.model, dm.eval_subset(ddp_fit.N_EVAL), options=ddp_fit.OPTIONS, loss_fn=module.loss_fn)
    got = LandscapeSample.load(folder / "sample")
    np.testing.assert_allclose(got.losses, ref.sample.losses, rtol=1e-6, atol=1e-7)
    saved = json.loads((folder / "results.json").read_text())
    assert saved["world_size"] == 2
    for key in ("lambda_max", "lambda_min", "trace", "analytic_scalar"):
        assert saved["scalars"][key] == pytest.approx(ref.scalars[key], rel=1e-5), key
    assert (folder.parent / "epoch=0" / "results.json").is_file()  # the mid-training analysis too

    plain = _ddp_fit(tmp_path / "plain", "--no-callback")  # the same DDP training without the callback
    assert plain.returncode == 0, plain.stderr[-3000:]
    with_cb, without = (torch.load(p / "final.pt", weights_only=True) for p in (tmp_path, tmp_path / "plain"))
    assert all(torch.equal(with_cb[k], without[k]) for k in without)  # the analyses did not disturb training


def test_lightning_ddp_failing_rank(tmp_path):
    """A rank that fails during an analysis stops that analysis on every rank (no rank waits in a collective);
    rank zero says so in one line per analysis, nothing is written for it, and training finishes."""
    run = _ddp_fit(tmp_path, "--fail", "sampling")
    assert run.returncode == 0, run.stderr[-3000:]
    msg = "1 of 2 ranks failed during sampling (rank 1: ValueError: injected failure in sampling)"
    lines = [ln for ln in (run.stdout + run.stderr).splitlines() if msg in ln]
    assert len(lines) == ddp_fit.EPOCHS and all("analysis failed, training goes on" in ln for ln in lines)
    assert not list(tmp_path.rglob("results.json")) and not list(tmp_path.rglob("sample.npz"))
    assert (tmp_path / "final.pt").is_file()  # training reached its end


def test_analyze_command_on_two_processes(tmp_path):
    torch.manual_seed(0)
    net = build_model(model_config("mlp", (1, 8, 8), 10))
    torch.save(net.state_dict(), tmp_path / "net.pt")
    common = [
        str(Path(sys.executable).parent / "landscape"),
        "analyze",
        str(tmp_path / "net.pt"),
        "--model",
        "mlp",
        "--n-eval",
        "300",
        "--samples",
        "60",
    ]
    common += ["--grid", "5", "--trace-samples", "6", "--top-k", "2", "--quiet"]
    rows = []
    for devices in ("1", "2"):
        run = subprocess.run(
            [*common, "--devices", devices, "--out", str(tmp_path / devices)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.count("wrote ") == 1  # rank zero alone reports (and writes)
        with open(tmp_path / devices / "summary.csv") as fh:
            rows.append(next(csv.DictReader(fh)))
    for key in ("loss_center", "lambda_max", "lambda_min", "trace", "dc_comparison", "analytic_scalar"):
        assert float(rows[1][key]) == pytest.approx(float(rows[0][key]), rel=1e-5), key
    one, two = (LandscapeSample.load(tmp_path / d / "net" / "sample") for d in ("1", "2"))
    np.testing.assert_allclose(two.losses, one.losses, rtol=1e-6, atol=1e-7)
