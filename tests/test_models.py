import pytest
import torch

from landscape.models import build_model, count_parameters, describe, model_config

# Li et al. 2018 (loss-landscape) CIFAR-10 parameter counts
COUNTS = {
    ("resnet20", True): 272_474,
    ("resnet20", False): 269_722,
    ("resnet56", True): 855_770,
    ("resnet56", False): 853_018,
    ("resnet110", True): 1_730_714,
    ("resnet110", False): 1_727_962,
}


@pytest.mark.parametrize("name,skip", list(COUNTS))
def test_resnet_counts(name, skip):
    model = build_model(model_config(name, (3, 32, 32), 10, skip=skip))
    assert count_parameters(model) == COUNTS[(name, skip)]


def test_densenet121_count():
    assert count_parameters(build_model(model_config("densenet121", (3, 32, 32), 10))) == 6_956_298


def test_mlp_paper_net():
    cfg = model_config("mlp", (1, 28, 28), 10, widths=[40], bias=False)
    assert count_parameters(build_model(cfg)) == 784 * 40 + 40 * 10
    assert describe(cfg) == "mlp-40-nobias"


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("name", ["mlp", "convnet", "resnet20", "densenet"])
def test_shapes(name, shape):
    opts = {"blocks": [2, 2], "growth": 4} if name == "densenet" else {}
    model = build_model(model_config(name, shape, 7, **opts)).eval()
    assert model(torch.randn(3, *shape)).shape == (3, 7)


def test_bad_configs():
    with pytest.raises(ValueError, match="6n\\+2"):
        build_model(model_config("resnet21", (3, 32, 32), 10))
    with pytest.raises(ValueError, match="unknown model"):
        model_config("vgg", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="fixes depth=56"):
        model_config("resnet56", (3, 32, 32), 10, depth=20)


class _Payload:
    def __reduce__(self):
        return (exec, ("raise SystemExit('the payload ran')",))


def test_a_checkpoint_with_code_is_refused_without_advice_to_allow_it(tmp_path):
    """A checkpoint whose pickle calls ``exec`` is not loaded (nothing runs); the one line names the global and the
    fix (re-save the weights), never torch's advice to allow-list it, which would run the payload."""
    from landscape.models.checkpoints import CheckpointError, load_network

    path = tmp_path / "payload.ckpt"
    torch.save({"state_dict": {"w": _Payload()}}, path)
    with pytest.raises(CheckpointError) as err:
        load_network(path)
    text = str(err.value)
    assert "it refers to exec" in text and "torch.save(model.state_dict(), path)" in text and "\n" not in text
    assert "add_safe_globals" not in text and "allowlist" not in text and "safe_globals" not in text
