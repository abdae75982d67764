"""Per-block Hessian spectra (landscape.hessian.blocks) against exact references: a quadratic whose blocks have chosen
spectra, and the dense Hessian of a small trained MLP (interlacing, traces adding up)."""

import numpy as np
import pytest
import torch
from torch import nn

from landscape.hessian.blocks import MAX_BLOCKS, BlockProblem, block_spectra, parameter_blocks
from landscape.hessian.reference import exact_hessian
from landscape.hessian.spectrum import HessianProblem

from ..references import digits_subset, dummy_data, quadratic_loss, small_mlp, spectrum_matrix


class CoupledQuadratic(nn.Module):
    """L = ½ θᵀQθ over three parameter tensors a (6), b (9), c (4): Q couples them, so each block's spectrum is
    that of Q's diagonal block, not of Q."""

    def __init__(self, Q: np.ndarray):
        super().__init__()
        self.register_buffer("Q", torch.as_tensor(Q))
        self.a = nn.Parameter(torch.randn(6, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(9, dtype=torch.float64))
        self.c = nn.Parameter(torch.randn(4, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = torch.cat([self.a, self.b, self.c])
        return (0.5 * theta @ self.Q @ theta).expand(x.shape[0])


def test_each_block_reads_its_own_diagonal_block_exactly():
    torch.manual_seed(0)
    Q = spectrum_matrix(np.linspace(-3.0, 10.0, 19), seed=4)  # coupled: off-diagonal blocks are not zero
    model = CoupledQuadratic(Q)
    problem = HessianProblem(model, dummy_data(), quadratic_loss)
    blocks = parameter_blocks(model, {"first": r"^a$", "rest": r"^(b|c)$"})
    assert [b.name for b in blocks] == ["first", "rest"] and [b.n_params for b in blocks] == [6, 13]
    spectra = block_spectra(problem, blocks, tol=1e-10)
    for block, s in zip(blocks, spectra):
        ev = np.linalg.eigvalsh(Q[np.ix_(block.index, block.index)])
        assert s.lambda_max == pytest.approx(ev[-1], rel=1e-8) and s.lambda_min == pytest.approx(ev[0], rel=1e-8)
        assert s.trace == pytest.approx(ev.sum(), rel=1e-8) and s.trace_se == 0.0 and s.converged
    assert sum(s.trace for s in spectra) == pytest.approx(np.trace(Q), rel=1e-8)


def test_block_operator_is_the_restricted_hessian():
    Q = spectrum_matrix(np.linspace(-1.0, 4.0, 19), seed=1)
    model = CoupledQuadratic(Q)
    problem = HessianProblem(model, dummy_data(), quadratic_loss)
    (block,) = [b for b in parameter_blocks(model, {"b": r"^b$"}) if b.name == "b"]
    v = torch.randn(9, dtype=torch.float64)
    hv = BlockProblem(problem, block).hvp(v)
    np.testing.assert_allclose(hv.numpy(), Q[np.ix_(block.index, block.index)] @ v.numpy(), rtol=1e-12)
    assert problem.n_hvp == 1


def test_trained_mlp_blocks_interlace_and_add_up():
    """The small trained MLP's layers (auto: its two Linear modules): each block's ends match the dense Hessian's
    diagonal block to 1e-6, lie inside the full spectrum (Cauchy interlacing), and the traces add up to the full
    trace within their standard errors."""
    model, data = small_mlp(), digits_subset(200)
    H = exact_hessian(model, data)
    full = np.linalg.eigvalsh(H)
    blocks = parameter_blocks(model)
    assert [b.name for b in blocks] == ["1", "3"] and sum(b.n_params for b in blocks) == H.shape[0]
    spectra = block_spectra(HessianProblem(model, data), blocks, tol=1e-8, trace_probes=60, trace_rtol=0.005)
    se = 0.0
    for block, s in zip(blocks, spectra):
        ev = np.linalg.eigvalsh(H[np.ix_(block.index, block.index)])
        assert s.lambda_max == pytest.approx(ev[-1], rel=1e-6) and s.lambda_min == pytest.approx(ev[0], abs=1e-6)
        assert full[0] - 1e-9 <= s.lambda_min and s.lambda_max <= full[-1] + 1e-9
        assert abs(s.trace - ev.sum()) <= 4 * s.trace_se + 1e-9
        se += s.trace_se**2
    assert abs(sum(s.trace for s in spectra) - np.trace(H)) <= 4 * np.sqrt(se) + 1e-9


def test_auto_blocks_follow_the_architecture_and_cover_every_parameter():
    from landscape.models import build_model, model_config

    resnet = build_model(model_config("resnet", (1, 8, 8), 10, depth=20))
    blocks = parameter_blocks(resnet)
    assert [b.name for b in blocks] == ["stem", "stage1", "stage2", "stage3", "head"]
    index = np.concatenate([b.index for b in blocks])
    assert np.array_equal(np.sort(index), np.arange(sum(p.numel() for p in resnet.parameters())))
    assert all("layers.3." in n or "layers.4." in n or "layers.5." in n for n in blocks[2].parameters)
    dense = build_model(model_config("densenet", (1, 8, 8), 10, blocks=(2, 2), growth=4))
    names = [b.name for b in parameter_blocks(dense)]
    assert names == ["stem", "dense1", "transition1", "dense2", "head"]


def test_block_groups_are_checked():
    model = small_mlp()
    blocks = parameter_blocks(model, {"hidden": r"^1\."})
    assert [b.name for b in blocks] == ["hidden", "other"]  # what no pattern matches is kept, as "other"
    with pytest.raises(ValueError, match="matches no trainable parameter"):
        parameter_blocks(model, {"hidden": r"^1\.", "ghost": r"^nothing"})
    with pytest.raises(ValueError, match="'auto' or a dict"):
        parameter_blocks(model, "layers")  # type: ignore[arg-type]
    wide = nn.Sequential(*[nn.Linear(2, 2) for _ in range(MAX_BLOCKS + 1)])
    with pytest.raises(ValueError, match="at most 64"):
        parameter_blocks(wide)


def test_an_analysis_writes_the_block_spectra_and_their_figure(tmp_path):
    """``hessian_blocks="auto"``: one record per block in results.json and blocks.csv, inside the full spectrum,
    the products counted, and blocks.png among the figures."""
    import csv
    import json

    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.report.figures import analysis_figures

    model, data = small_mlp(), digits_subset(200)
    o = AnalysisOptions(hessian_blocks="auto", curvature=False, grid_points=0, density_starts=0, tol=1e-6)
    r = analyze_model(model, data, options=o)
    assert [b["block"] for b in r.blocks] == ["1", "3"]
    for b in r.blocks:
        assert r.scalars["lambda_min"] - 1e-6 <= b["lambda_min"] <= b["lambda_max"] <= r.scalars["lambda_max"] + 1e-6
    assert r.hessian_hvps["blocks"] == sum(b["n_hvp"] for b in r.blocks) > 0
    r.save(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "results.json").read_text())["hessian_blocks"] == r.blocks
    rows = list(csv.DictReader(open(tmp_path / "run" / "blocks.csv")))
    assert [row["block"] for row in rows] == ["1", "3"]
    assert float(rows[0]["lambda_max"]) == pytest.approx(r.blocks[0]["lambda_max"])
    assert "blocks.png" in {p.name for p in analysis_figures(r, tmp_path / "run", "mlp")}


@pytest.mark.parametrize("text, message", [("a=(", "bad regular expression"), ("a=x;a=y", "distinct names"),
                                           ("layers", "expected 'auto'"), (";", "1..64 groups")])  # fmt: skip
def test_block_options_are_checked(text, message):
    from landscape.analysis import AnalysisOptions

    with pytest.raises(ValueError, match=message):
        AnalysisOptions(hessian_blocks=text)
    assert AnalysisOptions(hessian_blocks="hidden=^1\\.;out=^3\\.").hessian_blocks.startswith("hidden")


def test_a_null_space_converges_against_the_zero_floor():
    """The MLP's head block (Linear 16→10) is convex in its weights with exact zeros (the softmax shift): its λmin
    is read as zero to tol × 1e-3 × λmax in 66 products, where a relative test took 115 of its 170."""
    model, data = small_mlp(), digits_subset(200)
    head = parameter_blocks(model)[1]
    (s,) = block_spectra(HessianProblem(model, data), [head])
    assert abs(s.lambda_min) <= 1e-4 * 1e-3 * s.lambda_max and s.converged
    assert s.n_hvp < 0.6 * head.n_params  # measured 66 (115 without the floor)
