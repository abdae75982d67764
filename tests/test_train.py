import argparse

import pytest
import torch

from landscape.cli import cli
from landscape.cli.train import add_arguments, settings_from
from landscape.models.training import train_model


def parse(argv):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return settings_from(p.parse_args(argv))


def train(settings):
    return train_model(settings)


def state(path):
    return torch.load(path, weights_only=True, map_location="cpu")["state_dict"]


def test_train_deterministic(tmp_path):
    a = train(parse(["--model", "mlp", "--epochs", "2", "--out", str(tmp_path / "a"), "--quiet", "--save-every", "1"]))
    b = train(parse(["--model", "mlp", "--epochs", "2", "--out", str(tmp_path / "b"), "--quiet"]))
    sa, sb = state(a["checkpoint"]), state(b["checkpoint"])
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (tmp_path / "a" / "metrics.csv").is_file()
    names = sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir())
    assert names == ["epoch=0.ckpt", "epoch=1.ckpt", "last.ckpt"]


def test_mlp_mnist_reaches_95(tmp_path, mnist_dir):
    s = train(
        parse(
            [
                "--model",
                "mlp",
                "--widths",
                "256",
                "--data",
                "mnist",
                "--data-dir",
                str(mnist_dir),
                "--epochs",
                "15",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
    )
    assert s["val_acc"] >= 0.95, s  # ~17 s on 2 idle cores (timing is not asserted: shared CI machines are noisy)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--data", "mnist", "--data-dir", "/nonexistent"], "no MNIST IDX files"),
        (["--data", "mnist"], "--data-dir is required"),
        (["--model", "resnet21", "--data", "digits"], "6n+2"),
        (["--model", "vgg"], "unknown model"),
    ],
)
def test_train_errors(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--out", str(tmp_path), "--quiet", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("landscape: error:")


def test_train_rejects_nonsense_values(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--out", "x", "--epochs", "0"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_existing_run_needs_resume_and_resume_continues(tmp_path, capsys):
    """A second run into the same --out is refused (it used to write last-v1.ckpt while the summary kept pointing
    at the old last.ckpt); --resume continues from last.ckpt to the new epoch total and keeps the earlier metrics;
    the resumed weights equal those of an uninterrupted run."""
    out = tmp_path / "run"
    argv = ["--model", "mlp", "--widths", "8", "--out", str(out), "--quiet"]
    assert cli.main(["train", *argv, "--epochs", "1"]) == 0
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *argv, "--epochs", "1"])
    assert exc.value.code == 2
    assert "add --resume" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"]
    with pytest.raises(SystemExit):
        cli.main(["train", *argv, "--epochs", "1", "--resume", "--widths", "9"])
    assert "not the requested" in capsys.readouterr().err
    assert cli.main(["train", *argv, "--epochs", "3", "--resume"]) == 0
    ck = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ck["epoch"] == 2
    import csv

    with open(out / "metrics.csv") as fh:
        epochs = {int(r["epoch"]) for r in csv.DictReader(fh)}
    assert epochs == {0, 1, 2}
    # a resume that would do nothing, or record settings it does not use, is refused with one line (issue 26)
    for extra, message in (
        (["--epochs", "3"], "has finished 3 epochs"),
        (["--epochs", "2"], "has finished 3 epochs"),
        (["--epochs", "4", "--lr", "0.5"], "lr 0.001 → 0.5"),
        (["--epochs", "4", "--optimizer", "sgd"], "optimizer 'adam' → 'sgd'"),
        (["--epochs", "4", "--seed", "7"], "seed 0 → 7"),
    ):
        with pytest.raises(SystemExit) as exc:
            cli.main(["train", *argv, "--resume", *extra])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2  # untouched
    whole = train(parse(["--model", "mlp", "--widths", "8", "--out", str(tmp_path / "w"), "--quiet", "--epochs", "3"]))
    a, b = state(out / "checkpoints" / "last.ckpt"), state(whole["checkpoint"])
    assert all(torch.equal(a[k], b[k]) for k in a)  # same ops, same shapes, same RNG draws: bitwise
    with pytest.raises(SystemExit):
        cli.main(["train", "--out", str(tmp_path / "none"), "--resume", "--quiet"])
    assert "does not exist" in capsys.readouterr().err
    (out / "checkpoints" / "important.pt").write_bytes(b"another tool's file")  # not the run's: --overwrite keeps it
    (out / "notes.txt").write_text("mine")
    assert cli.main(["train", *argv, "--epochs", "1", "--overwrite"]) == 0  # replaces the run, keeps nothing of it
    assert (out / "checkpoints" / "important.pt").read_bytes() == b"another tool's file"
    assert (out / "notes.txt").read_text() == "mine"
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    with open(out / "metrics.csv") as fh:
        assert {int(r["epoch"]) for r in csv.DictReader(fh)} == {0}


def test_train_refuses_in_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    cases = [
        (["--out", str(tmp_path / "file" / "sub")], "is a file"),
        (["--accelerator", "gpu"] if not torch.cuda.is_available() else ["--devices", "100000"], "--"),
        (["--devices", "100000"], "--devices 100000"),
        (["--widths", "100000", "100000", "100000"], "parameters"),
        (["--model", "resnet", "--depth", "60002"], "lower --depth"),
    ]
    for argv, message in cases:
        argv = argv if "--out" in argv else [*argv, "--out", str(tmp_path / "o")]
        with pytest.raises(SystemExit) as exc:
            cli.main(["train", "--quiet", *argv])
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("landscape: error:") and message in err[0], (argv, err)
    with pytest.raises(SystemExit):
        cli.main(["train", "--seed", str(2**64), "--out", str(tmp_path / "o")])
    assert "seed must be in" in capsys.readouterr().err
