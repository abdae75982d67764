"""A default analysis on a machine whose cores are all busy with other work: the automatic thread count
(landscape.threads.choose_threads) against 1 thread and against every core, in one run.

Starts one busy-loop process per core, then times analyze_model of a digits MLP-16 (1,000 images, default
options) with threads = auto, 1 and the core count; then the same with the cores idle.

Goal (issue 15): with every core busy, the automatic choice within 1.5× of the 1-thread time.

Usage: python benchmarks/busy_cores.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

from _common import best_time


def _spin(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def main() -> None:
    import torch

    from landscape.analysis import AnalysisOptions, analyze_model
    from landscape.data import load_digits_splits
    from landscape.models import build_model, model_config
    from landscape.threads import idle_cores, usable_cores

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()
    splits = load_digits_splits()
    data = splits.eval_subset(1000)
    torch.manual_seed(0)
    model = build_model(model_config("mlp", splits.input_shape, 10, widths=[16]))
    cores = usable_cores()

    def timed(threads):
        return best_time(lambda: analyze_model(model, data, options=AnalysisOptions(threads=threads)), a.repeat)

    for busy in (True, False):
        stop = mp.Event()
        procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(cores if busy else 0)]
        for proc in procs:
            proc.start()
        time.sleep(0.5)
        try:
            seen = idle_cores()
            t = {"auto": timed(None), "1": timed(1), str(cores): timed(cores)}
        finally:
            stop.set()
            for proc in procs:
                proc.join()
        label = f"{cores} busy-loop processes beside it" if busy else "cores idle"
        print(f"{label} (idle cores seen: {seen:.1f}): analysis auto {t['auto']:.2f} s, 1 thread {t['1']:.2f} s, "
              f"{cores} threads {t[str(cores)]:.2f} s -> auto / 1 thread = {t['auto'] / t['1']:.2f}x, "
              f"{cores} threads / 1 thread = {t[str(cores)] / t['1']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
