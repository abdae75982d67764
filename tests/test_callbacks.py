"""The landscape callback on real tiny runs: results, non-interference (bitwise), resume, error paths. Written
against the Lightning package the toolkit chose (``landscape.models.lightning_package``): CI runs this file under
``pytorch_lightning`` and again with ``LANDSCAPE_LIGHTNING=lightning`` (``lightning.pytorch``)."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from landscape.analysis import AnalysisOptions
from landscape.callbacks.landscape import LandscapeCallback
from landscape.models.datamodule import ImageDataModule
from landscape.models.lightning_package import callbacks, loggers, pl

FAST = AnalysisOptions(n_samples=60, grid_points=7, trace_samples=5, top_k=2, density_starts=1, density_steps=10)


def test_the_file_runs_under_the_package_asked_for():
    """With ``LANDSCAPE_LIGHTNING=lightning`` (CI's second run of this file) every Lightning class here is
    ``lightning.pytorch``'s, the toolkit's callback included."""
    if os.environ.get("LANDSCAPE_LIGHTNING") == "lightning":
        assert pl.__name__ == "lightning.pytorch" and issubclass(LandscapeCallback, pl.Callback)


class TinyBN(pl.LightningModule):
    """Not our Classifier: a foreign module with BatchNorm, probed through the callback's contract."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Linear(24, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        x = x + 0.01 * torch.randn_like(x)  # consumes the global RNG: any extra draw would change the run
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def fit(tmp_path, callback, epochs=2, ckpt_path=None, name="run", extra=None):
    pl.seed_everything(0, verbose=False)
    model = TinyBN()
    dm = ImageDataModule("digits", batch_size=64)
    cbs = ([callback] if callback else []) + list(extra or [])
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=pl.loggers.CSVLogger(tmp_path, name=name),
        callbacks=cbs,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        enable_checkpointing=True,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return trainer, model


def test_callback_does_not_disturb_training(tmp_path):
    t0, plain = fit(tmp_path, None, name="plain")
    rng_plain = torch.random.get_rng_state()
    cb = LandscapeCallback(FAST, every_n_epochs=1, n_eval=150, model_attr="net")
    t1, probed = fit(tmp_path, cb, name="probed")
    rng_probed = torch.random.get_rng_state()
    assert cb.done_epochs == [0, 1]
    sd0, sd1 = plain.state_dict(), probed.state_dict()
    assert sd0.keys() == sd1.keys() and all(torch.equal(sd0[k], sd1[k]) for k in sd0)  # weights + BN stats
    o0, o1 = t0.optimizers[0].state_dict()["state"], t1.optimizers[0].state_dict()["state"]
    assert all(torch.equal(o0[i]["momentum_buffer"], o1[i]["momentum_buffer"]) for i in o0)
    assert torch.equal(rng_plain, rng_probed)
    assert probed.training == plain.training


def test_callback_results_logs_and_files(tmp_path):
    cb = LandscapeCallback(FAST, at_epochs=(0,), at_fit_end=True, n_eval=150, model_attr="net")
    trainer, _ = fit(tmp_path, cb)
    assert cb.done_epochs == [0, 1]
    s = cb.last.scalars
    assert s["lambda_max"] >= s["lambda_min"] and np.isfinite(s["trace"]) and s["n_nonfinite"] == 0
    root = tmp_path / "run" / "version_0"
    for epoch in (0, 1):
        folder = root / "landscape" / f"epoch={epoch}"
        for f in ("results.json", "sample.npz", "surface.png", "density.png", "agreement.png"):
            assert (folder / f).is_file(), f
        assert not (folder / "field.png").exists()  # the field at every sample is the exact_field option's
    metrics = (root / "metrics.csv").read_text()
    assert "landscape/lambda_max" in metrics and "landscape/analytic_scalar" in metrics
    assert "landscape/dc_scalar" in metrics and "landscape/dc_sign_agrees" in metrics


def test_resume_continues_schedule(tmp_path):
    cb = LandscapeCallback(FAST, every_n_epochs=1, at_fit_end=False, n_eval=100, model_attr="net")
    trainer, _ = fit(tmp_path, cb, epochs=2, name="first")
    ckpt = tmp_path / "resume.ckpt"
    trainer.save_checkpoint(ckpt)
    cb2 = LandscapeCallback(FAST, every_n_epochs=1, at_fit_end=False, n_eval=100, model_attr="net")
    fit(tmp_path, cb2, epochs=3, ckpt_path=str(ckpt), name="second")
    assert cb2.done_epochs == [0, 1, 2]  # restored from the checkpoint, then epoch 2 only


def test_callback_bad_setup():
    with pytest.raises(ValueError, match="every_n_epochs"):
        LandscapeCallback(every_n_epochs=0)
    with pytest.raises(ValueError, match="samples"):
        LandscapeCallback(AnalysisOptions(n_samples=5))


def test_eval_data_from_dataloader(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    dm = ImageDataModule("digits")
    sub = dm.eval_subset(120)
    loader = DataLoader(TensorDataset(sub.x, sub.y), batch_size=50, shuffle=False)
    a = LandscapeCallback(FAST, eval_data=loader, n_eval=120, model_attr="net", figures=False)
    b = LandscapeCallback(FAST, eval_data=(sub.x, sub.y), model_attr="net", figures=False)
    fit(tmp_path, a, epochs=1, name="loader")
    fit(tmp_path, b, epochs=1, name="tensors")
    assert a.last.scalars["loss_center"] == b.last.scalars["loss_center"]
    assert a.last.scalars["lambda_max"] == pytest.approx(b.last.scalars["lambda_max"], rel=1e-6)


def test_every_hook_is_marked_override_and_exists_in_lightning():
    """@override on each hook (checked statically by type checkers) and here at run time: a misspelt hook name
    would never be called by Lightning."""
    from landscape.callbacks.checkpoint import LastCheckpoint

    for cls in (LandscapeCallback, LastCheckpoint):
        hooks = [n for n, f in vars(cls).items() if callable(f) and (n.startswith("on_") or n in ("setup", "teardown"))]
        assert hooks
        for name in hooks:
            assert getattr(vars(cls)[name], "__override__", False), f"{cls.__name__}.{name} lacks @override"
            assert hasattr(pl.Callback, name), f"{cls.__name__}.{name} is not a Lightning hook"


def test_lightning_acts_on_the_metrics(tmp_path):
    """The scalars reach ``trainer.callback_metrics``: EarlyStopping stops on one (a threshold any λmax passes:
    the fit ends after the first analysis), ModelCheckpoint monitors one and records its value; the loggers get
    them with the epoch."""
    import csv

    EarlyStopping, ModelCheckpoint = callbacks.EarlyStopping, callbacks.ModelCheckpoint

    cb = LandscapeCallback(FAST, every_n_epochs=1, n_eval=150, model_attr="net", figures=False)
    stop = EarlyStopping(monitor="landscape/lambda_max", mode="max", stopping_threshold=-1e9, strict=True,
                         check_on_train_epoch_end=True)  # fmt: skip
    best = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="landscape/lambda_max", mode="min",
                           save_on_train_epoch_end=True)  # fmt: skip
    trainer, _ = fit(tmp_path, cb, epochs=4, extra=[stop, best])
    assert cb.done_epochs == [0] and trainer.current_epoch == 1 and stop.stopped_epoch == 0
    lmax = cb.last.scalars["lambda_max"]
    assert float(trainer.callback_metrics["landscape/lambda_max"]) == pytest.approx(lmax)
    assert float(best.best_model_score) == pytest.approx(lmax) and best.best_model_path
    rows = list(csv.DictReader(open(trainer.logger.experiment.metrics_file_path)))
    logged = [r for r in rows if r.get("landscape/lambda_max")]
    assert len(logged) == 1 and logged[0]["epoch"] == "0"
    assert float(logged[0]["landscape/lambda_max"]) == pytest.approx(lmax)


def test_continuing_a_finished_fit_keeps_its_fit_end_analysis(tmp_path):
    """The analysis at the end of a fit runs after its last checkpoint was saved; continuing that fit (same log
    folder) must keep its row: history.csv lists epochs 0 and 1 from the first fit and 3 from the second."""
    import csv

    ModelCheckpoint = callbacks.ModelCheckpoint

    def run(epochs, ckpt_path=None):
        pl.seed_everything(0, verbose=False)
        cb = LandscapeCallback(FAST, at_epochs=(0,), at_fit_end=True, n_eval=100, model_attr="net", figures=False,
                               progress=False)  # fmt: skip
        trainer = pl.Trainer(
            max_epochs=epochs,
            logger=pl.loggers.CSVLogger(tmp_path, name="run", version=0),
            callbacks=[cb, ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)],
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
        )
        trainer.fit(TinyBN(), datamodule=ImageDataModule("digits", batch_size=64), ckpt_path=ckpt_path)
        return cb, trainer

    first, trainer = run(2)
    assert first.done_epochs == [0, 1]
    history = tmp_path / "run" / "version_0" / "landscape" / "history.csv"
    assert [r["epoch"] for r in csv.DictReader(open(history))] == ["0", "1"]
    second, _ = run(4, ckpt_path=str(tmp_path / "ck" / "last.ckpt"))
    assert second.done_epochs == [0, 3]  # restored [0]; epoch 1's fit-end analysis is not in the checkpoint ...
    rows = list(csv.DictReader(open(history)))
    assert [r["epoch"] for r in rows] == ["0", "1", "3"]  # ... but its row is kept
    assert [int(r["epoch"]) for r in second.history] == [0, 1, 3]
    assert float(rows[1]["lambda_max"]) == pytest.approx(first.history[1]["lambda_max"])


def test_figures_reach_a_tensorboard_logger(tmp_path):
    """With a real TensorBoard logger the analysis's figures are images in its event file (read back with
    tensorboard's own reader) beside the files on disk; a logger without images (CSV) is left alone."""
    pytest.importorskip("tensorboard")
    CSVLogger, TensorBoardLogger = loggers.CSVLogger, loggers.TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    pl.seed_everything(0, verbose=False)
    cb = LandscapeCallback(FAST, at_epochs=(0,), at_fit_end=False, n_eval=100, model_attr="net", progress=False)
    tb = TensorBoardLogger(tmp_path, name="tb", version=0)
    trainer = pl.Trainer(max_epochs=1, logger=[tb, CSVLogger(tmp_path, name="csv")], callbacks=[cb],
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         enable_checkpointing=False)  # fmt: skip
    trainer.fit(TinyBN(), datamodule=ImageDataModule("digits", batch_size=64))
    on_disk = {p.stem for p in (tmp_path / "tb" / "version_0" / "landscape" / "epoch=0").glob("*.png")}
    assert {"surface", "density", "agreement"} <= on_disk
    events = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    assert {f"landscape/{name}" for name in on_disk} <= set(events.Tags()["images"])
    image = events.Images("landscape/surface")[0]
    assert image.width > 300 and image.height > 200 and image.step == trainer.global_step


def test_figures_reach_mlflow_local_store(tmp_path, monkeypatch):
    """MLflow's local file store (Lightning's MLFlowLogger, ``file:`` tracking URI): every figure of the analysis is
    an artifact of the run under ``landscape/epoch=0/``, byte for byte the file on disk, read back through MLflow's
    own client; the files on disk go under ``default_root_dir``, not into the tracking store (MLflow's log_dir)."""
    pytest.importorskip("mlflow")
    import mlflow

    MLFlowLogger = loggers.MLFlowLogger

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow ≥ 3.7 keeps the file store behind this switch
    pl.seed_everything(0, verbose=False)
    uri = (tmp_path / "mlruns").as_uri()
    cb = LandscapeCallback(FAST, at_epochs=(0,), at_fit_end=False, n_eval=100, model_attr="net", progress=False)
    logger = MLFlowLogger(experiment_name="landscape-test", tracking_uri=uri)
    trainer = pl.Trainer(max_epochs=1, logger=logger, callbacks=[cb], enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, enable_checkpointing=False)  # fmt: skip
    trainer.fit(TinyBN(), datamodule=ImageDataModule("digits", batch_size=64))
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    stored = {Path(a.path).name for a in client.list_artifacts(logger.run_id, "landscape/epoch=0")}
    on_disk = list((tmp_path / "landscape" / "epoch=0").glob("*.png"))  # default_root_dir: out of the store
    assert not list((tmp_path / "mlruns").glob("landscape"))
    assert {"surface.png", "density.png", "agreement.png"} <= stored
    assert {p.name for p in on_disk} <= stored
    local = client.download_artifacts(logger.run_id, "landscape/epoch=0/surface.png", str(tmp_path / "back"))
    assert Path(local).read_bytes() == next(p for p in on_disk if p.name == "surface.png").read_bytes()


LIGHTNING_2 = """
import lightning as L  # the user's code: Lightning 2.x, imported before the toolkit
from landscape.callbacks.landscape import LandscapeCallback
from landscape.analysis import AnalysisOptions
from landscape.models import model_config
from landscape.models.classifier import Classifier
from landscape.models.datamodule import ImageDataModule
from landscape.models.lightning_package import callbacks, loggers, pl
from landscape.models.lightning_package import NAME

assert NAME == "lightning.pytorch", NAME
options = AnalysisOptions(n_samples=40, grid_points=0, hessian=False, jackknife=0, zoom=0)
cb = LandscapeCallback(options, every_n_epochs=1, n_eval=100, figures=False, progress=False)
stop = L.pytorch.callbacks.EarlyStopping(monitor="landscape/dc_scalar", mode="max", stopping_threshold=-1e30,
                                         check_on_train_epoch_end=True)
trainer = L.Trainer(max_epochs=3, callbacks=[cb, stop], enable_progress_bar=False, enable_model_summary=False,
                    logger=L.pytorch.loggers.CSVLogger(OUT), default_root_dir=OUT)
trainer.fit(Classifier(model_config("mlp", (1, 8, 8), 10), epochs=3), datamodule=ImageDataModule("digits"))
print("DONE", cb.done_epochs, stop.stopped_epoch)
"""


def test_the_toolkit_works_with_lightning_2(tmp_path):
    """Written the Lightning 2.x way (``import lightning as L`` first, an ``L.Trainer``): the toolkit's Classifier,
    datamodule and callback are ``lightning.pytorch`` classes, the fit runs, the analysis reaches
    ``callback_metrics`` and EarlyStopping acts on it. A bad LANDSCAPE_LIGHTNING is one clear ImportError."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("lightning")
    root = Path(__file__).resolve().parents[1]
    code = f"OUT = {str(tmp_path)!r}\n" + LIGHTNING_2
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "DONE [0] 0" in run.stdout
    bad = subprocess.run([sys.executable, "-c", "import landscape.models.lightning_package"], cwd=root,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LANDSCAPE_LIGHTNING": "keras"})  # fmt: skip
    assert bad.returncode != 0 and "LANDSCAPE_LIGHTNING must be lightning or pytorch_lightning" in bad.stderr
    train = ["train", "--epochs", "1", "--out", str(tmp_path / "t")]
    cmd = subprocess.run([sys.executable, "-m", "landscape.cli.cli", *train], cwd=root, capture_output=True, text=True,
                         timeout=120,
                         env={**os.environ, "LANDSCAPE_LIGHTNING": "keras"})  # fmt: skip
    assert cmd.returncode == 2 and cmd.stderr.strip().splitlines() == [
        "landscape: error: train: LANDSCAPE_LIGHTNING must be lightning or pytorch_lightning, got 'keras'"
    ]  # the command: one line, exit 2, before it made its folder
    assert not (tmp_path / "t").exists()
