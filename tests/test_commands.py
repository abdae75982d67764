"""The analysis commands end to end on tiny runs, and their error paths (one line, exit code 2)."""

import csv

import pytest
import torch

from landscape.analysis import SUMMARY_COLUMNS
from landscape.cli import cli
from landscape.models import build_model, model_config

FAST = ["--samples", "40", "--grid", "5", "--n-eval", "100", "--trace-samples", "3", "--top-k", "2", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    assert cli.main(["train", "--model", "mlp", "--widths", "16", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    return out / "checkpoints" / "last.ckpt"


def test_analyze_batch_with_bad_members(tmp_path, trained, capsys):
    plain = tmp_path / "plain.pt"
    torch.save(build_model(model_config("mlp", (1, 8, 8), 10, widths=[16])).state_dict(), plain)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(trained.read_bytes()[:3000])
    wrong = tmp_path / "wrong.pt"
    torch.save(build_model(model_config("convnet", (1, 8, 8), 10)).state_dict(), wrong)
    code = cli.main(
        [
            "analyze",
            str(trained),
            str(truncated),
            str(plain),
            str(wrong),
            str(tmp_path / "none.ckpt"),
            "--model",
            "mlp",
            "--widths",
            "16",
            "--out",
            str(tmp_path / "out"),
            *FAST,
        ]
    )
    assert code == 2
    captured = capsys.readouterr()
    assert "landscape: error:" not in captured.out  # errors go to stderr, one line each, no colour codes
    err_lines = captured.err.strip().splitlines()
    assert all(ln.startswith("landscape: error:") and "\x1b" not in ln for ln in err_lines)
    assert len(err_lines) == 4 and "3 of 5 checkpoints" in err_lines[-1]
    assert any("truncated.ckpt: corrupt or truncated" in ln for ln in err_lines)
    assert any("wrong.pt: does not match mlp-16" in ln for ln in err_lines)
    assert any("none.ckpt: no such checkpoint" in ln for ln in err_lines)
    with open(tmp_path / "out" / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["checkpoint"] for r in rows] == [str(trained), str(plain)]
    assert list(rows[0]) == SUMMARY_COLUMNS
    assert float(rows[0]["lambda_max"]) >= float(rows[0]["lambda_min"])
    assert (tmp_path / "out" / "last" / "results.json").is_file()


def test_analyze_plain_state_dict_needs_model(tmp_path, capsys):
    plain = tmp_path / "plain.pt"
    torch.save(build_model(model_config("convnet", (1, 8, 8), 10)).state_dict(), plain)
    assert cli.main(["analyze", str(plain), "--model", "convnet", "--out", str(tmp_path / "o"), *FAST]) == 0


def test_analyze_rejects_nonsense(tmp_path, trained, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["analyze", str(trained), "--out", str(tmp_path), "--samples", "5"])
    assert exc.value.code == 2 and "need 20 ≤ samples" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["analyze", str(trained), "--out", str(tmp_path), "--radius", "-1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["analyze", str(trained), "--out", str(tmp_path), "--data", "mnist", "--data-dir", str(tmp_path)])
    assert exc.value.code == 2 and "no MNIST IDX files" in capsys.readouterr().err


def test_demo_runs(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--epochs", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "mlp-40" in printed and "convnet" in printed
    with open(tmp_path / "report" / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(float(r["lambda_max"]) > 0 for r in rows)
    assert list((tmp_path / "mlp" / "landscape").glob("epoch=*/surface.png"))


def test_compare_tiny_and_errors(tmp_path, capsys):
    out = tmp_path / "cmp"
    blocks = ["--hessian-blocks", "auto", "--eigen-map", "2", "--tol", "1e-2", "--density-starts", "0"]
    assert cli.main(["compare", "--depth", "8", "--epochs", "1", "--out", str(out), *blocks, *FAST]) == 0
    assert (out / "skip_vs_noskip.png").is_file() and (out / "comparison.csv").is_file()
    assert (out / "blocks_skip_vs_noskip.png").is_file() and (out / "skip" / "analysis" / "blocks.csv").is_file()
    assert (out / "convexity_skip_vs_noskip.png").is_file()
    assert (out / "noskip" / "analysis" / "eigen_map.npz").is_file()
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", "--depth", "21", "--out", str(out)])
    assert exc.value.code == 2 and "6n+2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # a skip checkpoint passed as the no-skip model
        cli.main(
            [
                "compare",
                "--depth",
                "8",
                "--ckpt-skip",
                str(out / "skip/checkpoints/last.ckpt"),
                "--ckpt-noskip",
                str(out / "skip/checkpoints/last.ckpt"),
                "--out",
                str(out),
                *FAST,
            ]
        )
    assert exc.value.code == 2


def test_analysis_flags_are_generated_from_the_options():
    """Every AnalysisOptions field has a flag with the dataclass's default; a non-default value for each comes back
    in the options; a value validate() refuses, and a malformed one, are one error line each (exit 2)."""
    import dataclasses
    import subprocess
    import sys

    from landscape.analysis import AnalysisOptions
    from landscape.cli.analyze import options_from

    parser = cli.build_parser()
    base = ["analyze", "x.ckpt", "--out", "o"]
    args = parser.parse_args(base)
    assert options_from(args) == AnalysisOptions()  # the defaults are the library's own
    changed = {
        "--directions": ("hessian-mixed", "directions", "hessian-mixed"),
        "--k": ("3", "k", 3),
        "--samples": ("120", "n_samples", 120),
        "--radius": ("auto", "radius", None),
        "--radius-rise": ("3", "radius_rise", 3.0),
        "--scheme": ("shells", "scheme", "shells"),
        "--seed": ("7", "seed", 7),
        "--grid": ("0", "grid_points", 0),
        "--top-k": ("2", "top_k", 2),
        "--trace-samples": ("9", "trace_samples", 9),
        "--trace-rtol": ("0.05", "trace_rtol", 0.05),
        "--density-starts": ("1", "density_starts", 1),
        "--density-steps": ("20", "density_steps", 20),
        "--tol": ("1e-3", "tol", 1e-3),
        "--jackknife": ("0", "jackknife", 0),
        "--zoom": ("1", "zoom", 1),
        "--hessian-blocks": ("auto", "hessian_blocks", "auto"),
        "--batch-spectrum": ("50", "batch_spectrum", 50),
        "--sharpness": ("0.01", "sharpness", 0.01),
        "--dc-t": ("6", "dc_t", 6),
        "--threads": ("1", "threads", 1),
        "--weight-decay": ("5e-4", "weight_decay", 5e-4),
    }
    argv = [*base, "--no-curvature", "--exact-field"]
    for flag, (text, _, _) in changed.items():
        argv += [flag, text]
    opts = options_from(parser.parse_args(argv))
    for _, name, value in changed.values():
        assert getattr(opts, name) == value, name
    assert opts.hessian is True and opts.curvature is False and opts.exact_field is True
    assert options_from(parser.parse_args([*base, "--no-hessian"])).hessian is False
    assert options_from(parser.parse_args([*base, "--eigen-map", "5"])).eigen_map == 5  # needs k = 2: on its own
    covered = {name for _, name, _ in changed.values()} | {"hessian", "curvature", "exact_field", "eigen_map"}
    assert covered == {f.name for f in dataclasses.fields(AnalysisOptions)}  # a new field needs a line above
    bad_values = (["--samples", "5"], "samples"), (["--trace-rtol", "2"], "trace_rtol"), (["--k", "two"], "--k")
    for bad, word in (*bad_values, (["--weight-decay=-1"], "weight_decay")):
        run = subprocess.run(
            [sys.executable, "-m", "landscape.cli.cli", *base, *bad], capture_output=True, text=True, timeout=120
        )
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1 and word in lines[0], run.stderr


def test_analyze_prints_its_plan_and_fits_a_budget(tmp_path, trained, capsys):
    """The plan comes before the work (phases, counts, predicted time) and the measured time after it; --budget
    lowers the options to fit and says what it chose; a bad budget is one error line."""
    import json

    args = ["analyze", str(trained), "--out", str(tmp_path / "plain"), "--grid", "5", "--n-eval", "100", "--quiet"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.index("plan (") < out.index("took") and "sampling the slice" in out and "predicted" in out
    budget = ["analyze", str(trained), "--out", str(tmp_path / "fit"), "--grid", "5", "--n-eval", "100", "--quiet"]
    assert cli.main([*budget, "--budget", "0.001"]) == 0  # 0.06 s: below every floor
    out = capsys.readouterr().out
    assert "budget: samples 300 → 100" in out and "nothing left to lower" in out
    saved = json.loads((tmp_path / "fit" / "last" / "results.json").read_text())
    assert saved["options"]["n_samples"] == 100 and saved["timings_s"]["plan_predicted"] > 0
    with pytest.raises(SystemExit) as exc:
        cli.main([*budget, "--budget", "-2"])
    assert exc.value.code == 2 and "expected a positive number" in capsys.readouterr().err
