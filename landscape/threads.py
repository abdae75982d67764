"""Thread count for torch's CPU kernels that never oversubscribes the machine.

On a 2-core machine whose cores are busy with other work (DataLoader workers, a second job), torch with 2 threads
ran one HVP 170–275× slower than with 1 thread: the threads wait for each other at every barrier. The rule here:
count the cores that are actually idle (``/proc/stat`` over 50 ms, the load average where that file is missing),
give small work one thread, and never more threads than idle cores. :func:`using_threads` sets the count for a
block of work and restores the caller's setting afterwards.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

import torch

SMALL_WORK = 2e7  # multiply-adds per operation below which one thread is fastest (thread start-up dominates)


def usable_cores() -> int:
    """Cores this process may run on (affinity mask, container limits included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    try:
        with open("/proc/stat") as fh:
            fields = [float(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return idle, sum(fields)


def idle_cores(window: float = 0.05) -> float:
    """Cores idle over the last ``window`` seconds (``/proc/stat``), else cores minus the 1-minute load average."""
    cores = usable_cores()
    first = _cpu_times()
    if first is not None:
        time.sleep(window)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            total_cpus = os.cpu_count() or cores
            idle = (second[0] - first[0]) / (second[1] - first[1]) * total_cpus
            return float(min(cores, idle))
    try:
        return float(max(0.0, cores - os.getloadavg()[0]))
    except OSError:
        return float(cores)


def choose_threads(work: float | None = None, requested: int | None = None) -> int:
    """``requested`` if given; otherwise 1 for small work (``work`` multiply-adds per operation below
    :data:`SMALL_WORK`), else the idle cores rounded down (at least 1)."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads must be ≥ 1, got {requested}")
        return int(requested)
    if work is not None and work < SMALL_WORK:
        return 1
    return max(1, min(usable_cores(), int(idle_cores() + 0.25)))


@contextmanager
def using_threads(n: int) -> Iterator[int]:
    """torch's intra-op thread count set to ``n`` inside the block, the caller's count restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
