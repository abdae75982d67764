"""Faults as inputs (issue 12): stale outputs, signals, NaN weights, bad data files, the callback's inputs, file
modes, help text. Each test failed before its fix."""

import csv
import gzip
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from landscape.analysis import analyze_model
from landscape.callbacks.landscape import LandscapeCallback
from landscape.cli import cli
from landscape.cli.analyze import result_names
from landscape.data import DataError, read_idx
from landscape.evaluation import as_eval_subset
from landscape.exceptions import LandscapeWarning
from landscape.models import build_model, model_config
from landscape.models.datamodule import ImageDataModule
from tests.test_callbacks import FAST, fit

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--samples", "40", "--grid", "0", "--n-eval", "100", "--no-hessian", "--jackknife", "0", "--quiet"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    assert cli.main(["train", "--widths", "8", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    return out / "checkpoints" / "last.ckpt"


def nan_copy(src: Path, dst: Path) -> Path:
    c = torch.load(src, weights_only=True)
    key = next(k for k in c["state_dict"] if k.endswith("weight"))
    c["state_dict"][key][0, 0] = float("inf")
    torch.save(c, dst)
    return dst


def test_nan_checkpoint_does_not_stop_the_batch(tmp_path, ckpt, capsys):
    bad = nan_copy(ckpt, tmp_path / "diverged.ckpt")
    base = ["--samples", "40", "--grid", "5", "--n-eval", "100", "--jackknife", "0", "--quiet"]
    for extra in (["--top-k", "1", "--trace-samples", "2"], ["--no-hessian"]):
        out = tmp_path / f"out{len(extra)}"
        assert cli.main(["analyze", str(bad), str(ckpt), "--out", str(out), *base, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert "diverged.ckpt: 1 weights are NaN or infinite" in err[0] and "1 of 2" in err[-1]
        rows = list(csv.DictReader(open(out / "summary.csv")))
        assert [r["checkpoint"] for r in rows] == [str(ckpt)]
        assert not (out / "diverged").exists()


def test_rerun_replaces_stale_outputs(tmp_path, ckpt):
    out = tmp_path / "out"
    assert cli.main(["analyze", str(ckpt), "--out", str(out), *QUICK, "--grid", "5"]) == 0
    assert (out / "last" / "surface.png").is_file()
    (out / "last" / "stale.png").write_bytes(b"old figure")
    assert cli.main(["analyze", str(ckpt), "--out", str(out), *QUICK]) == 0  # no surface this time
    assert not (out / "last" / "surface.png").exists() and not (out / "last" / "stale.png").exists()
    assert (out / "last" / "results.json").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left
    (out / "last" / "notes.txt").write_text("mine")  # a folder that holds a user's file is never replaced
    assert cli.main(["analyze", str(ckpt), "--out", str(out), *QUICK]) == 2
    assert (out / "last" / "notes.txt").read_text() == "mine"
    assert not (out / "summary.csv").exists()  # the earlier run's summary does not stand beside the new folders
    # a user's folder of figures whose name matches a checkpoint's (no results.json: not an analysis) is refused too
    mine = tmp_path / "mine"
    (mine / "last").mkdir(parents=True)
    (mine / "last" / "figure.png").write_bytes(b"the user's own figure")
    assert cli.main(["analyze", str(ckpt), "--out", str(mine), *QUICK]) == 2
    assert (mine / "last" / "figure.png").read_bytes() == b"the user's own figure"


def test_result_names_are_distinct():
    names = result_names(["x/a_b/last.ckpt", "x/a/b/last.ckpt", "y/last.ckpt"])
    assert len(set(names)) == 3
    assert result_names(["a/one.ckpt", "b/two.ckpt"]) == ["one", "two"]
    # a checkpoint named after one of the run's own files gets another folder name (summary.csv.ckpt used to make a
    # folder summary.csv that broke every later run into that --out)
    assert result_names(["x/summary.csv.ckpt", "x/history.png.ckpt"]) == ["summary.csv_", "history.png_"]


def test_files_follow_the_umask(tmp_path, ckpt):
    old = os.umask(0o022)
    try:
        assert cli.main(["analyze", str(ckpt), "--out", str(tmp_path / "o"), *QUICK]) == 0
    finally:
        os.umask(old)
    for p in [tmp_path / "o" / "summary.csv", tmp_path / "o" / "last" / "results.json"]:
        assert p.stat().st_mode & 0o777 == 0o644, p
    assert (tmp_path / "o" / "last").stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("command", ["train", "analyze", "demo", "compare", "validate"])
def test_out_under_a_file(tmp_path, capsys, command, ckpt):
    (tmp_path / "f").write_text("x")
    argv = [command, "--out", str(tmp_path / "f" / "sub")] + ([str(ckpt)] if command == "analyze" else [])
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, not a folder" in err[0]


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 300)" in text and "(default: 1000)" in text and "(default: filter)" in text


def _run_until(cmd: list[str], cwd: Path, ready, sig: int, timeout: float = 240) -> tuple[int, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not ready() and proc.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_sigterm_during_training_exits_143_and_resumes(tmp_path):
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    cmd = [sys.executable, "-m", "landscape.cli.cli", "train", "--model", "convnet", "--epochs", "100000"]
    code, err = _run_until([*cmd, "--out", "run", "--quiet"], tmp_path, last.is_file, signal.SIGTERM)
    assert code == 143, err
    lines = [ln for ln in err.splitlines() if ln.startswith("landscape:")]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "--resume" in lines[0]
    epoch = torch.load(last, weights_only=True)["epoch"]
    resumed = subprocess.run(
        [*cmd[:-1], str(epoch + 2), "--out", "run", "--quiet", "--resume"],
        cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)), capture_output=True, text=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(last, weights_only=True)["epoch"] == epoch + 1


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_analysis_leaves_nothing_complete(tmp_path, ckpt, sig, code):
    cmd = [sys.executable, "-m", "landscape.cli.cli", "analyze", str(ckpt), "--out", "o", "--samples", "200000"]
    started = lambda: (tmp_path / "o").is_dir()
    rc, err = _run_until([*cmd, "--grid", "0", "--no-hessian", "--quiet"], tmp_path, started, sig)
    assert rc == code, err
    assert err.strip().splitlines()[-1].startswith("landscape: error: analyze interrupted by")
    assert "Traceback" not in err
    assert not list((tmp_path / "o").rglob("results.json")) and not (tmp_path / "o" / "summary.csv").exists()


# ---------------------------------------------------------------------------------------- data files
def test_corrupt_deflate_block_and_empty_and_negative_labels(tmp_path):
    raw = bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(5)
    blob = bytearray(gzip.compress(raw))
    blob[12:16] = b"\xff\xff\xff\xff"  # inside the deflate stream: zlib.error, not BadGzipFile
    (tmp_path / "x.gz").write_bytes(bytes(blob))
    with pytest.raises(DataError, match="cannot read"):
        try:
            read_idx(tmp_path / "x.gz")
        except zlib.error:  # pragma: no cover - the failure this test guards against
            pytest.fail("zlib.error escaped")
    from landscape.data import load_mnist
    from tests.test_data import make_mnist, write_idx

    raw_dir = make_mnist(tmp_path / "empty", 3)
    write_idx(raw_dir / "t10k-images-idx3-ubyte.gz", np.zeros((0, 28, 28)), gz=True)
    write_idx(raw_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(0), gz=True)
    with pytest.raises(DataError, match="holds no images"):
        load_mnist(tmp_path / "empty")
    raw_dir = make_mnist(tmp_path / "neg", 3)
    header = bytes([0, 0, 0x09, 1]) + (3).to_bytes(4, "big")
    (raw_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + np.array([1, -2, 3], np.int8).tobytes()))
    with pytest.raises(DataError, match="labels outside 0..9"):
        load_mnist(tmp_path / "neg")


# ---------------------------------------------------------------------------------------- the callback
class DictBatches(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": self.y[i]}


def test_eval_data_forms_and_n_eval():
    sub = ImageDataModule("digits").eval_subset(90)
    a = as_eval_subset((sub.x, sub.y), 40)
    b = as_eval_subset(DataLoader(DictBatches(sub.x, sub.y), batch_size=16), 40)
    c = as_eval_subset(sub, 40)
    assert len(a) == len(b) == len(c) == 40
    assert torch.equal(a.x, b.x) and torch.equal(a.y, c.y)
    with pytest.raises(ValueError, match="dict batches need a target key"):
        as_eval_subset(DataLoader([{"pixels": sub.x[0], "class": sub.y[0]}]), 5)
    keywords = as_eval_subset(DataLoader([{"pixels": sub.x[:4], "y": sub.y[:4]}], batch_size=None), 5)
    assert isinstance(keywords.x, dict) and list(keywords.x) == ["pixels"]  # no input key: a keyword batch
    with pytest.raises(ValueError, match=r"cannot be called as model\(\*\*batch\) with keywords pixels"):
        analyze_model(build_model(model_config("mlp", (1, 8, 8), 10)), keywords)


def test_callback_checks_inputs_at_setup(tmp_path):
    """Without eval_data and without a datamodule the error comes before the first epoch, not after it."""
    import pytorch_lightning as pl
    from torch.utils.data import TensorDataset

    from tests.test_callbacks import TinyBN

    sub = ImageDataModule("digits").eval_subset(64)
    seen = []

    class Spy(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            seen.append(trainer.current_epoch)

    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        callbacks=[LandscapeCallback(FAST, model_attr="net"), Spy()],
    )
    with pytest.raises(ValueError, match="needs evaluation data"):
        trainer.fit(TinyBN(), DataLoader(TensorDataset(sub.x, sub.y), batch_size=32))
    assert seen == []


def test_callback_survives_nan_weights_and_uses_dict_batches(tmp_path):
    """Weights that go NaN make the analysis fail; the callback says so, logs landscape/failed, and training
    finishes its epochs."""
    import pytorch_lightning as pl

    class Diverging(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 0:
                with torch.no_grad():
                    pl_module.net[1].weight[0, 0] = float("nan")

    sub = ImageDataModule("digits").eval_subset(200)
    loader = DataLoader(DictBatches(sub.x, sub.y), batch_size=50)
    cb = LandscapeCallback(FAST, every_n_epochs=1, eval_data=loader, n_eval=100, model_attr="net", figures=False)
    with pytest.warns(LandscapeWarning, match="analysis failed, training goes on"):
        trainer, _ = fit(tmp_path, None, epochs=2, name="nan", extra=[Diverging(), cb])
    assert trainer.current_epoch == 2  # both epochs ran
    assert cb.failed_epochs == [0, 1] and cb.done_epochs == []
    assert len(cb._subset) == 100  # n_eval applies to a DataLoader of dict batches


@pytest.mark.parametrize("error", [TypeError, KeyError, IndexError, AttributeError])
def test_a_loss_that_raises_anything_fails_the_analysis_not_the_training(tmp_path, error):
    """The user's loss raising inside an analysis (any Exception, not only the numeric ones) is one failed analysis:
    reported, logged, and both epochs still train."""

    def broken(logits, y):
        raise error("the user's loss is broken")

    cb = LandscapeCallback(FAST, every_n_epochs=1, n_eval=100, model_attr="net", figures=False, loss_fn=broken)
    with pytest.warns(LandscapeWarning) as record:  # through warnings.warn, where Lightning users look
        trainer, _ = fit(tmp_path, cb, epochs=2, name=f"loss-{error.__name__}")
    assert trainer.current_epoch == 2 and cb.failed_epochs == [0, 1] and cb.done_epochs == []
    failed = [str(w.message) for w in record if "analysis failed, training goes on" in str(w.message)]
    assert len(failed) == 2 and all("the user's loss is broken" in m for m in failed)


def test_sigterm_during_the_end_of_fit_analysis_stops_the_run(tmp_path):
    """SIGTERM while the end-of-training analysis runs (Lightning checks for it only between batches) stops it at
    once with Lightning's SIGTERMException, after the handler in place has seen it, and leaves no results.json for
    the interrupted analysis. (Before, the analysis ran on and the fit ended normally.)"""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    calls = []

    def loss_then_sigterm(logits, y):
        calls.append(1)
        if len(calls) == 5:  # inside the analysis: a few evaluations in
            os.kill(os.getpid(), signal.SIGTERM)
        return torch.nn.functional.cross_entropy(logits, y)

    cb = LandscapeCallback(
        FAST, at_epochs=(), at_fit_end=True, n_eval=100, model_attr="net", figures=False, loss_fn=loss_then_sigterm
    )
    seen = []
    user = lambda *_: seen.append("user's handler")  # a training script's own handler
    before = signal.signal(signal.SIGTERM, user)
    try:
        with pytest.raises(SIGTERMException):
            fit(tmp_path, cb, epochs=1, name="sigterm")
        assert signal.getsignal(signal.SIGTERM) is user  # the analysis's handler is gone again
    finally:
        signal.signal(signal.SIGTERM, before)
    assert seen == ["user's handler"]  # the handler it replaced still saw the signal
    assert cb.done_epochs == [] and cb.failed_epochs == []
    assert not list(tmp_path.rglob("results.json"))


def test_two_callbacks_into_one_folder_are_refused_before_training(tmp_path):
    """Two callbacks with different schedules used to overwrite each other's epoch folders and history.csv: the
    second one into the same dirname is refused at setup, before the first epoch; with their own dirnames both
    run and keep their own histories."""
    a = LandscapeCallback(FAST, every_n_epochs=1, n_eval=100, model_attr="net", figures=False)
    b = LandscapeCallback(FAST, every_n_epochs=2, at_fit_end=False, n_eval=100, model_attr="net", figures=False)
    with pytest.raises(ValueError, match="same folder 'landscape'"):
        fit(tmp_path, None, epochs=1, name="twins", extra=[a, b])
    assert a.done_epochs == [] and b.done_epochs == []
    c = LandscapeCallback(FAST, every_n_epochs=1, n_eval=100, model_attr="net", figures=False, dirname="every")
    d = LandscapeCallback(FAST, every_n_epochs=2, at_fit_end=False, n_eval=100, model_attr="net", figures=False,
                          dirname="second")  # fmt: skip
    trainer, _ = fit(tmp_path, None, epochs=2, name="apart", extra=[c, d])
    assert c.done_epochs == [0, 1] and d.done_epochs == [1]
    root = Path(trainer.log_dir)
    assert (root / "every" / "history.csv").is_file() and (root / "second" / "history.csv").is_file()


def test_two_callbacks_keep_separate_state():
    a = LandscapeCallback(FAST, every_n_epochs=1)
    b = LandscapeCallback(FAST, every_n_epochs=2)
    assert a.state_key != b.state_key


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, capsys):
    """One writer per --out (issue 26): while another process holds the folder (a run in progress), a command into
    it exits 2 with one line and writes nothing; once that process is gone (killed, not cleaned up: the kernel
    drops its lock) the folder is usable again."""
    out = tmp_path / "shared-out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from landscape.cli.common import output_folder;"
         " output_folder(sys.argv[1]); print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["interpolate", str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt"), "--out", str(out)]
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is being written by another landscape run" in err[0]
        assert sorted(p.name for p in out.iterdir()) == [".landscape.lock"]
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(SystemExit):  # the lock went with its process: now the missing checkpoints are the problem
        cli.main(argv)
    assert "no such checkpoint" in capsys.readouterr().err


def test_json_files_are_strict_json_with_null_for_non_finite_values(tmp_path):
    """results.json and every other JSON file the toolkit writes parse as strict JSON: NaN and ±inf (a non-finite
    loss, a verdict without a value) are null, not Python's bare NaN tokens that other readers reject."""
    import json

    from landscape.files import atomic_write_json

    nan, inf = float("nan"), float("inf")
    atomic_write_json(
        tmp_path / "r.json",
        {"a": nan, "b": [1.5, inf, -inf], "c": np.array([nan, 2.0]), "d": np.float32("nan"), "e": (np.float64(3),)},
    )

    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    got = json.loads((tmp_path / "r.json").read_text(), parse_constant=refuse)
    assert got == {"a": None, "b": [1.5, None, None], "c": [None, 2.0], "d": None, "e": [3.0]}


def test_an_absurd_architecture_in_a_checkpoint_is_refused_before_allocation(tmp_path, capsys):
    """A checkpoint whose config asks for an MLP of 10⁶-wide layers (terabytes of weights) is refused by the size
    check on meta tensors, with one line, in analyze (it used to try to allocate the network)."""
    from landscape.models.registry import model_config

    huge = model_config("mlp", (1, 8, 8), 10, widths=[1_000_000] * 5)
    path = tmp_path / "huge.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"model_cfg": huge}}, path)
    assert cli.main(["analyze", str(path), "--out", str(tmp_path / "o"), *QUICK]) == 2
    err = capsys.readouterr().err
    assert "huge.ckpt: bad model config" in err and "choose a smaller architecture" in err


@pytest.mark.parametrize("extra", [["--grid", "0"], ["--k", "3"]])
def test_html_without_a_surface_to_draw_is_refused_not_silently_skipped(tmp_path, ckpt, capsys, extra):
    with pytest.raises(SystemExit) as exc:
        cli.main(["analyze", str(ckpt), "--out", str(tmp_path / "o"), *QUICK, "--html", *extra])
    assert exc.value.code == 2 and "--html draws the 2-D loss surface" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before any work


def _full_disk_under(monkeypatch, folder: Path, names: tuple[str, ...] = ()) -> None:
    """Every atomic write under ``folder`` (of the files named ``names``, or of every file) fails as a full disk
    does (ENOSPC when its temporary file is created), wherever the machine cannot mount a small filesystem."""
    import errno
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, prefix=None, **kwargs):
        hit = dir is not None and Path(dir).resolve().is_relative_to(folder.resolve())
        if hit and (not names or any(str(prefix).startswith(f".{n}.") for n in names)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, dir=dir, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_a_full_disk_fails_each_checkpoint_with_one_line_and_leaves_nothing(tmp_path, ckpt, capsys, monkeypatch):
    """No checkpoint's folder can be written: one line each naming the folder and the fix, no traceback, exit 2,
    and nothing left in --out (no staging folder, no half-written file)."""
    out = tmp_path / "out"
    _full_disk_under(monkeypatch, out)
    assert cli.main(["analyze", str(ckpt), str(ckpt), "--out", str(out), *QUICK]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("No space left on device" in line and "free some space" in line for line in err[:2])
    assert str(out / "last") in err[0] and "2 of 2" in err[-1]
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_full_disk_at_the_summary_is_one_line_and_exit_1(tmp_path, ckpt, capsys, monkeypatch):
    """The checkpoints' folders are written (complete, results.json last); summary.csv cannot be: one line, exit 1,
    no summary.csv and no temporary file beside them."""
    out = tmp_path / "out"
    _full_disk_under(monkeypatch, out, names=("summary.csv",))
    assert cli.main(["analyze", str(ckpt), "--out", str(out), *QUICK]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("landscape: error: analyze: could not write") and "space" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["last"] and (out / "last" / "results.json").is_file()


def test_a_full_disk_during_training_keeps_the_last_complete_checkpoint(tmp_path, capsys, monkeypatch):
    """The epoch-1 checkpoint cannot be written: one line naming last.ckpt, exit 1; the epoch-0 checkpoint stays
    whole and loads, and no .partial file is left (it used to be)."""
    import pytorch_lightning as pl

    real, calls = pl.Trainer.save_checkpoint, []

    def save(trainer, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"half")  # what a copy cut short by the full disk leaves
            raise OSError(28, "No space left on device")
        return real(trainer, path, *args, **kwargs)

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", save)
    out = tmp_path / "run"
    assert cli.main(["train", "--widths", "8", "--epochs", "2", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"landscape: error: train: could not write {out / 'checkpoints' / 'last.ckpt'}: No space left "
                       "on device; free some space or choose another --out")  # fmt: skip
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"]
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0


def test_a_real_full_filesystem(tmp_path, ckpt, capsys):
    """The same on a real 64 KiB tmpfs, where this machine lets the test mount one (root): every checkpoint gets
    its line, exit 2, nothing half-written stays. The injected tests above cover machines that cannot mount."""
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root); the injected full-disk tests cover it")
    try:
        assert cli.main(["analyze", str(ckpt), str(ckpt), "--out", str(small / "out"), *QUICK]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 3 and all("No space left on device" in line for line in err[:2])
        assert [p.name for p in (small / "out").iterdir()] == []
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_analyze_draws_a_history_only_for_one_run(tmp_path, capsys):
    """Epoch checkpoints of one run give history.csv; the same epochs from two runs do not (one line says why)."""
    for run in ("a", "b"):
        assert cli.main(["train", "--widths", "8", "--epochs", "2", "--save-every", "1", "--out", str(tmp_path / run),
                         "--quiet"]) == 0  # fmt: skip
    ck = lambda run, e: str(tmp_path / run / "checkpoints" / f"epoch={e}.ckpt")
    assert cli.main(["analyze", ck("a", 0), ck("a", 1), "--out", str(tmp_path / "one"), *QUICK]) == 0
    assert (tmp_path / "one" / "history.csv").is_file()
    capsys.readouterr()
    assert cli.main(["analyze", ck("a", 0), ck("b", 1), "--out", str(tmp_path / "two"), *QUICK]) == 0
    assert not (tmp_path / "two" / "history.csv").exists()
    assert "no curvature-over-training history" in capsys.readouterr().err


def test_vtk_export_reads_back_and_is_refused_off_the_plane(tmp_path, ckpt, capsys):
    """``--vtk``: surface.vtu (a quad mesh z = loss over the 5 × 5 grid) and samples.vtu (every sample at
    (u₁, u₂, loss) with the exact and diffusion curvature fields) read back with meshio equal to the run's own
    arrays; with --k 3 it is one error line."""
    meshio = pytest.importorskip("meshio")
    from landscape.sampling.sample import LandscapeSample

    out = tmp_path / "out"
    argv = ["analyze", str(ckpt), "--out", str(out), "--samples", "40", "--grid", "5", "--n-eval", "100",
            "--no-hessian", "--jackknife", "0", "--exact-field", "--quiet", "--vtk"]  # fmt: skip
    assert cli.main(argv) == 0
    surface = meshio.read(out / "last" / "surface.vtu")
    grid = LandscapeSample.load(out / "last" / "surface")
    assert surface.points.shape == (25, 3) and surface.cells_dict["quad"].shape == (16, 4)
    np.testing.assert_allclose(np.sort(surface.point_data["loss"]), np.sort(grid.losses), rtol=1e-12)
    np.testing.assert_allclose(surface.points[:, 2], surface.point_data["loss"])
    corners = surface.points[surface.cells_dict["quad"][0], :2]  # one cell: four grid neighbours
    assert len({tuple(c) for c in np.round(corners, 9)}) == 4
    samples = meshio.read(out / "last" / "samples.vtu")
    sample = LandscapeSample.load(out / "last" / "sample")
    assert samples.points.shape == (41, 3)
    np.testing.assert_allclose(samples.points[:, :2], sample.coords, rtol=1e-12)
    np.testing.assert_allclose(samples.point_data["exact_scalar"], sample.arrays["exact_scalar"], rtol=1e-12)
    assert np.isfinite(samples.point_data["exact_scalar"]).all()
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv[:3], str(tmp_path / "k3"), "--k", "3", "--vtk", "--quiet"])
    assert exc.value.code == 2 and "--vtk writes the 2-D surface" in capsys.readouterr().err
