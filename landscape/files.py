"""Files written atomically (a temporary name, then a rename: no half-written file ever looks complete), with
the permissions ``open`` would give them (0666 less the umask): bytes, JSON, CSV and NPZ."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np


def current_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it: set and restore
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place; the file gets the mode an
    ordinary ``open`` would give it (0666 less the umask), not ``mkstemp``'s private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as strict JSON: NaN and ±infinity (a non-finite loss, a verdict without a value) become ``null``,
    which every JSON reader accepts, instead of the bare ``NaN`` tokens Python writes by default."""
    text = json.dumps(_strict(obj), indent=2, default=_jsonable, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def _strict(o: Any) -> Any:
    """``o`` with every non-finite float (Python or numpy, in dicts, lists, tuples and arrays) replaced by None."""
    if isinstance(o, dict):
        return {k: _strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_strict(v) for v in o]
    if isinstance(o, np.ndarray):
        return _strict(o.tolist())
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    return o


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def atomic_write_csv(path: str | Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def atomic_write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **cast(dict[str, Any], arrays))  # the stubs type **kwds as allow_pickle's bool
    atomic_write_bytes(path, buf.getvalue())
