"""The one write path for analysis results (used by the callback and every command).

An analysis folder is built beside its destination (``.NAME.partial-*``), figures first and ``results.json``
last, and only then moved into place: an earlier result in the same folder is replaced whole (no stale figure
survives next to new numbers), and an interrupted write leaves only the hidden partial folder, never a folder that
looks complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..files import atomic_write_csv, current_umask

RESULT_MARK = "results.json"  # present only in a complete analysis folder
_OURS = {".png", ".npz", ".json", ".csv", ".html", ".vtu"}


def _replaceable(folder: Path) -> bool:
    """An earlier analysis folder that may be replaced: empty, or an analysis's own (its ``results.json`` is there:
    a folder is moved into place whole, results.json included) holding only the kinds of file an analysis writes.
    A folder of the user's (figures of their own with no results.json, a note, a subfolder) makes the write fail
    instead: a name that happens to match a checkpoint's never costs the user their files."""
    entries = list(folder.iterdir())
    if not entries:
        return True
    return (folder / RESULT_MARK).is_file() and all(p.is_file() and p.suffix in _OURS for p in entries)


def write_analysis(
    result: Any, folder: str | Path, label: str = "", figures: bool = True, html: bool = False, vtk: bool = False
) -> Path:
    """Write ``result`` (an :class:`~landscape.analysis.AnalysisResult`) to ``folder``: figures (``figures``; with
    ``html`` the interactive surface too),
    the sample and field arrays (with ``vtk`` also ``surface.vtu``/``samples.vtu`` for ParaView), ``results.json``
    last. ``ValueError`` if ``folder`` holds files that are not an
    earlier analysis (nothing is deleted then)."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or not _replaceable(folder)):
        raise ValueError(f"{folder} exists and holds other files than an analysis; choose another output folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.partial-"))
    try:
        os.chmod(staging, 0o777 & ~current_umask())
        if figures:
            from .figures import analysis_figures

            analysis_figures(result, staging, label, html=html)
        result.save(staging)  # the field arrays go into the sample first: the VTK export reads them
        if vtk:
            from .vtk_export import write_vtk

            write_vtk(result, staging)
        old = None
        if folder.exists():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
            os.replace(folder, old / "x")
        os.replace(staging, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def write_summary(path: str | Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """The summary table as CSV, atomically."""
    atomic_write_csv(path, rows, columns)
    return Path(path)


def clear_stale(paths: list[Path]) -> None:
    """Remove the summary files an earlier run left (before the new run starts, so an interrupted run never
    leaves an old summary beside new folders)."""
    for p in paths:
        if p.is_file():
            p.unlink()
