"""The data behind the figures of issue 13, against exact references: curvature over training (one history row
per analysis), linear interpolation (exact endpoints, an analytic barrier), the PCA trajectory (the path lies on
its plane), the automatic radius (an analytic loss), the interactive surface (standalone HTML)."""

import csv
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from landscape.callbacks.landscape import LandscapeCallback
from landscape.cli import cli
from landscape.evaluation import EvalSubset
from landscape.models import build_model, model_config
from landscape.models.datamodule import ImageDataModule
from landscape.sampling.directions import Directions
from landscape.sampling.paths import interpolate, pca_plane, trajectory
from landscape.sampling.radius import auto_radius
from landscape.sampling.sampler import evaluate
from tests.test_callbacks import FAST, fit


def _one_weight(w: float) -> nn.Module:
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(w)
    return net


ONE = EvalSubset(torch.ones(4, 1), torch.zeros(4), np.arange(4), "ones")


def test_callback_history_one_row_per_analysis(tmp_path):
    cb = LandscapeCallback(FAST, every_n_epochs=1, n_eval=100, model_attr="net", figures=False)
    trainer, _ = fit(tmp_path, cb, epochs=3, name="hist")
    folder = tmp_path / "hist" / "version_0" / "landscape"
    rows = list(csv.DictReader(open(folder / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] == cb.done_epochs
    assert all(float(r["lambda_max"]) >= float(r["lambda_min"]) for r in rows)
    assert (folder / "history.png").is_file()
    assert cb.state_dict()["history"] == cb.history  # a resumed run keeps its history


def test_analyze_over_epoch_checkpoints_draws_history(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["train", "--widths", "8", "--epochs", "3", "--save-every", "1", "--out", str(run), "--quiet"]) == 0
    cks = [str(run / "checkpoints" / f"epoch={e}.ckpt") for e in (2, 0, 1)]  # any order
    fast = ["--samples", "40", "--grid", "0", "--n-eval", "100", "--no-hessian", "--jackknife", "0", "--quiet"]
    assert cli.main(["analyze", *cks, "--out", str(tmp_path / "an"), *fast]) == 0
    rows = list(csv.DictReader(open(tmp_path / "an" / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert (tmp_path / "an" / "history.png").is_file()
    # the path commands on the same run (README "landscape interpolate and landscape trajectory")
    data = ["--n-eval", "100", "--data", "digits"]
    assert cli.main(["interpolate", cks[1], cks[0], "--out", str(tmp_path / "line"), "--points", "5", *data]) == 0
    with pytest.raises(SystemExit) as exc:  # a bound on every count, checked before any checkpoint is read
        cli.main(["interpolate", cks[1], cks[0], "--out", str(tmp_path / "huge"), "--points", "1000000000", *data])
    assert exc.value.code == 2
    line = list(csv.DictReader(open(tmp_path / "line" / "interpolation.csv")))
    assert len(line) == 5 and (tmp_path / "line" / "interpolation.png").is_file()
    assert cli.main(["trajectory", *cks, "--out", str(tmp_path / "pca"), "--grid", "5", *data]) == 0
    assert len(list(csv.DictReader(open(tmp_path / "pca" / "trajectory.csv")))) == 3
    with pytest.raises(SystemExit) as exc:
        cli.main(["trajectory", *cks[:2], "--out", str(tmp_path / "pca2")])
    assert exc.value.code == 2


def test_interpolation_endpoints_and_an_analytic_barrier():
    """loss (w² − 1)² between w = −1 and w = +1: zero at both ends, 1 at α = ½, so the barrier is exactly 1."""
    loss = lambda out, y: ((out.squeeze(-1) ** 2 - 1) ** 2).mean()
    path = interpolate(_one_weight(-1.0), _one_weight(1.0), ONE, loss, n_points=21, extend=0.5)
    assert path.losses[path._endpoint(0.0)] == 0.0 and path.losses[path._endpoint(1.0)] == 0.0
    assert path.barrier == pytest.approx(1.0, abs=1e-6) and path.barrier_alpha == pytest.approx(0.5)
    w = 2 * path.alphas - 1
    np.testing.assert_allclose(path.losses, (w**2 - 1) ** 2, rtol=1e-5, atol=1e-6)


def test_interpolation_endpoints_equal_the_checkpoints_losses():
    data = ImageDataModule("digits").eval_subset(200)
    cfg = model_config("convnet", (1, 8, 8), 10)  # BatchNorm-free here; buffers are interpolated too
    torch.manual_seed(0)
    a, b = build_model(cfg).eval(), build_model(cfg).eval()
    path = interpolate(a, b, data, n_points=5)
    assert path.losses[path._endpoint(0.0)] == evaluate(a, data)[0]
    assert path.losses[path._endpoint(1.0)] == evaluate(b, data)[0]
    with pytest.raises(ValueError, match="different architectures"):
        interpolate(a, build_model(model_config("mlp", (1, 8, 8), 10)), data)


def test_trajectory_path_lies_on_its_plane():
    torch.manual_seed(0)
    cfg = model_config("mlp", (1, 8, 8), 10, widths=[8])
    nets = [build_model(cfg) for _ in range(3)]
    t = trajectory(nets, ImageDataModule("digits").eval_subset(100), grid_points=5)
    assert np.max(t.residual) < 1e-4  # three checkpoints span exactly a plane through the last one
    assert t.explained.sum() == pytest.approx(1.0, abs=1e-9)
    last = torch.cat([p.detach().reshape(-1) for p in nets[-1].parameters()]).double()
    for net, c in zip(nets, t.coords):
        theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).double()
        rebuilt = last + torch.as_tensor(c) @ t.directions.matrix.double()
        assert torch.allclose(rebuilt, theta, atol=1e-5)
    assert np.allclose(t.coords[-1], 0) and t.surface is not None and t.surface.losses[0] == evaluate(nets[-1],
        ImageDataModule("digits").eval_subset(100))[0]  # fmt: skip
    with pytest.raises(ValueError, match="at least 3"):
        pca_plane([torch.zeros(3), torch.ones(3)])


def test_auto_radius_on_an_analytic_loss():
    """L(w) = mean((w·1 − 0)²) = w² at w* = 0: the loss reaches L0 + (2 − 1)·max(L0, 0.05) = 0.05 at r = √0.05."""
    net = _one_weight(0.0)
    d = Directions("gaussian", 1, 1, torch.ones(1, 1))
    mse = lambda out, y: ((out.squeeze(-1) - y) ** 2).mean()
    r, record = auto_radius(net, ONE, d, mse, rise=2.0)
    assert r == pytest.approx(np.sqrt(0.05), rel=5e-3) and record["reached"]
    assert record["loss_at_radius"] >= record["target"] == pytest.approx(0.05)
    r3, _ = auto_radius(net, ONE, d, mse, rise=41.0)  # 0.05·40 = 2 → r = √2 (the bracket grows past r = 1)
    assert r3 == pytest.approx(np.sqrt(2.0), rel=5e-3)
    assert "warning" not in record
    flat = lambda out, y: 0.0 * out.sum() + 1.0  # a loss that never rises: clipped at 100, and it says so
    r_flat, rec = auto_radius(net, ONE, d, flat, rise=2.0)
    assert r_flat == 100.0 and not rec["reached"] and "flat along these directions" in rec["warning"]
    steep = lambda out, y: 1e12 * (out.squeeze(-1) ** 2).mean() + 1e-3  # the wall is inside r = 1e-4
    r_steep, rec = auto_radius(net, ONE, d, steep, rise=2.0)
    assert r_steep == pytest.approx(1e-4, rel=0.5) and "already at radius" in rec["warning"]


def test_interactive_surface_is_standalone(tmp_path):
    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.report.interactive import surface_html

    net = build_model(model_config("mlp", (1, 8, 8), 10, widths=[8]))
    opts = AnalysisOptions(n_samples=40, grid_points=5, hessian=False, jackknife=0)
    result = analyze_model(net, ImageDataModule("digits").eval_subset(100), options=opts)
    path = surface_html(result, tmp_path / "surface.html", "tiny")
    html = path.read_text()
    assert not re.findall(r"<script[^>]+src=", html)  # the JavaScript is embedded: opens with no network
    assert "Plotly.newPlot" in html and "log10 loss" in html
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless browser on this machine (README: the documented rendering check)")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
         f"--screenshot={shot}",
         "--window-size=900,700", "--virtual-time-budget=8000", path.as_uri()],
        capture_output=True, timeout=120,
    )  # fmt: skip
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3].reshape(-1, 3)
    colours = len(np.unique((pixels * 255).astype(np.uint8), axis=0))
    assert colours > 1500, colours  # a shaded 3-D surface (a page of text alone: about 200, from anti-aliasing)


def test_thread_choice_and_restore():
    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.threads import SMALL_WORK, choose_threads, usable_cores, using_threads

    assert choose_threads(SMALL_WORK / 10) == 1  # small work: one thread, whatever is idle
    assert 1 <= choose_threads(SMALL_WORK * 10) <= usable_cores()
    assert choose_threads(None, requested=3) == 3
    with pytest.raises(ValueError):
        choose_threads(None, requested=0)
    before = torch.get_num_threads()
    with using_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    net = build_model(model_config("mlp", (1, 8, 8), 10, widths=[8]))
    opts = AnalysisOptions(n_samples=30, grid_points=0, hessian=False, jackknife=0)
    result = analyze_model(net, ImageDataModule("digits").eval_subset(50), options=opts)
    assert result.threads == 1 and torch.get_num_threads() == before  # the caller's setting comes back
