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
    """Two models analysed alike: the report table (intervals around their values, λmin/λmax), its figure, the
    skip/no-skip figures, each model's folder; bad model lists and checkpoints are one error line each."""
    from landscape.report.comparison import COMPARISON_COLUMNS

    out = tmp_path / "cmp"
    blocks = ["--hessian-blocks", "auto", "--eigen-map", "2", "--tol", "1e-2", "--density-starts", "0"]
    assert cli.main(["compare", "--depth", "8", "--epochs", "1", "--out", str(out), *blocks, *FAST]) == 0
    printed = capsys.readouterr().out
    assert "trace [±2 SE]" in printed and "resnet8-noskip" in printed
    for name in ("comparison.png", "skip_vs_noskip.png", "blocks_skip_vs_noskip.png", "convexity_skip_vs_noskip.png"):
        assert (out / name).is_file()
    assert (out / "resnet8" / "analysis" / "blocks.csv").is_file()
    assert (out / "resnet8-noskip" / "analysis" / "eigen_map.npz").is_file()
    with open(out / "comparison.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["resnet8", "resnet8-noskip"] and list(rows[0]) == COMPARISON_COLUMNS
    for r in rows:
        v = {k: float(r[k]) for k in COMPARISON_COLUMNS[1:-1]}
        assert v["lambda_ratio"] == pytest.approx(v["lambda_min"] / v["lambda_max"], rel=1e-6)
        assert v["trace_lo"] <= v["trace"] <= v["trace_hi"] and v["dc_lo"] <= v["dc_scalar"] <= v["dc_hi"]
        assert 0 <= v["val_acc"] <= 1 and v["parameters"] > 0 and v["minutes"] > 0
    ck = str(out / "resnet8/checkpoints/last.ckpt")
    with pytest.raises(SystemExit) as exc:  # a report of fewer models beside the other's folder: refused
        cli.main(["compare", "--models", "resnet8", "--ckpt", f"resnet8={ck}", "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "holds resnet8-noskip from an earlier compare run" in err
    assert len(err.strip().splitlines()) == 1 and (out / "comparison.csv").is_file()  # the earlier report stays
    bad = {
        "6n+2": ["--depth", "21"],
        "unknown model": ["--models", "resnet8", "vgg16"],
        "different models": ["--models", "resnet8", "resnet8"],
        "expected resnet8-noskip": ["--depth", "8", "--ckpt-skip", ck, "--ckpt-noskip", ck],  # a skip net as no-skip
        "one of the compared models": ["--depth", "8", "--ckpt", f"convnet={ck}"],
    }
    for words, flags in bad.items():
        with pytest.raises(SystemExit) as exc:
            cli.main(["compare", *flags, "--out", str(tmp_path / "cmp2"), *FAST])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and words in err and len(err.strip().splitlines()) == 1, (words, err)


def test_compare_presets_set_defaults_that_flags_override():
    """--preset cpu / paper fill the comparison's settings; a flag given beside the preset wins; every preset's
    analysis options pass validation and its models exist and fit this machine."""
    from landscape.cli.analyze import options_from
    from landscape.cli.compare import PRESETS, model_specs
    from landscape.models.registry import check_size, model_config, parse_spec

    cpu = cli.parse_args(["compare", "--preset", "cpu", "--out", "x"])
    assert (cpu.data, cpu.depth, cpu.n_eval, cpu.grid_points, cpu.budget) == ("mnist", 20, 256, 11, 6.0)
    assert model_specs(cpu) == ["resnet20", "resnet20-noskip"]
    mine = cli.parse_args(["compare", "--epochs", "2", "--preset", "cpu", "--out", "x", "--budget", "1"])
    assert (mine.epochs, mine.budget, mine.data) == (2, 1.0, "mnist")
    paper = cli.parse_args(["compare", "--preset", "paper", "--out", "x"])
    assert model_specs(paper) == ["resnet56", "resnet56-noskip", "resnet110-noskip", "densenet121"]
    assert (paper.data, paper.augment, paper.recipe, paper.epochs) == ("cifar10", True, "li2018", 300)
    assert (paper.n_samples, paper.grid_points, paper.accelerator) == (1000, 51, "auto")
    for name in PRESETS:
        args = cli.parse_args(["compare", "--preset", name, "--out", "x"])
        options_from(args)  # raises on an option validate() refuses
        for spec in model_specs(args):
            model, opts = parse_spec(spec)
            assert check_size(model_config(model, (3, 32, 32), 10, **opts), memory=64 * 2**30) > 0
    assert cli.parse_args(["compare", "--out", "x"]).preset is None


def test_compare_paper_preset_on_cifar_layout(tmp_path, capsys):
    """The paper preset's path (CIFAR-10 layout, crop+flip augmentation, Li et al.'s SGD recipe) end to end on a
    tiny file in the real format, with two small models instead of the paper's."""
    import json

    from tests.test_data import make_cifar

    make_cifar(tmp_path / "data", n=20)
    out = tmp_path / "paper"
    flags = ["--models", "resnet8", "convnet", "--data-dir", str(tmp_path / "data"), "--epochs", "1"]
    flags += ["--grid", "5", "--samples", "40", "--n-eval", "16", "--trace-samples", "3", "--top-k", "2", "--quiet"]
    assert cli.main(["compare", "--preset", "paper", *flags, "--accelerator", "cpu", "--out", str(out)]) == 0
    assert (out / "comparison.png").is_file() and not (out / "skip_vs_noskip.png").exists()  # no ±skip pair here
    trained = json.loads((out / "convnet" / "train_summary.json").read_text())
    assert trained["settings"]["augment"] and trained["optimisation"]["optimizer"] == "sgd"
    assert trained["data"] == "cifar10"
    with open(out / "comparison.csv") as fh:
        assert [r["model"] for r in csv.DictReader(fh)] == ["resnet8", "convnet"]


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
        "--sampling-precision": ("bfloat16", "sampling_precision", "bfloat16"),
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
