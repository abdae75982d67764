"""The ``landscape`` console command: one subcommand per task.

Interrupts end a command with one line and exit status 130 (SIGINT) or 143 (SIGTERM); every result file is
written atomically and ``results.json`` last, so an interrupted run leaves nothing that looks complete.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings

from landscape.exceptions import LandscapeWarning

from .common import release_output_locks, write_error

SUBCOMMANDS = {
    "train": "landscape.cli.train",
    "validate": "landscape.cli.validate",
    "analyze": "landscape.cli.analyze",
    "demo": "landscape.cli.demo",
    "compare": "landscape.cli.compare",
    "interpolate": "landscape.cli.interpolate",
    "trajectory": "landscape.cli.trajectory",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (a KeyboardInterrupt, so cleanup code treats both alike)."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


class OneLineParser(argparse.ArgumentParser):
    """argparse with the project's error contract: a bad flag or value is one line on stderr (which command, what
    was wrong, where the help is) and exit status 2, not the usage block."""

    def error(self, message: str):  # type: ignore[override]
        line = " ".join(f"{self.prog}: error: {message} (see {self.prog} --help)".split())
        print(line, file=sys.stderr, flush=True)
        raise SystemExit(2)


def build_parser(preset: tuple[str, str] | None = None) -> argparse.ArgumentParser:
    """The command line; ``preset`` = (command, name): that command's ``PRESETS[name]`` become its defaults, so
    that flags given beside ``--preset`` still win."""
    p = OneLineParser(prog="landscape", description="Loss-landscape curvature toolkit.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        mod = importlib.import_module(module_name)
        sp = sub.add_parser(
            name,
            help=mod.DESCRIPTION,
            description=mod.DESCRIPTION,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
        if preset is not None and preset[0] == name:
            sp.set_defaults(**mod.PRESETS[preset[1]])
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; a command's ``--preset`` supplies defaults, the flags given beside it win."""
    args = build_parser().parse_args(argv)
    if getattr(args, "preset", None) is not None:  # parsed again with the preset's defaults under the given flags
        args = build_parser((args.command, args.preset)).parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        with warnings.catch_warnings():  # the commands print each caveat as a line of their own
            warnings.filterwarnings("ignore", category=LandscapeWarning)
            return args._run(args)
    except KeyboardInterrupt as exc:
        sigterm = isinstance(exc, Terminated)
        print(
            f"landscape: error: {args.command} interrupted by {'SIGTERM' if sigterm else 'SIGINT'}; "
            "no partial result was left that looks complete (results.json marks a finished analysis)",
            file=sys.stderr,
            flush=True,
        )
        return 143 if sigterm else 130
    except ImportError as exc:  # a missing or mis-chosen package (LANDSCAPE_LIGHTNING): one line, not a traceback
        print(f"landscape: error: {args.command}: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:  # a full or read-only disk: one line, and what was written is complete or absent
        print(f"landscape: error: {args.command}: {write_error(exc)}", file=sys.stderr, flush=True)
        return 1
    finally:
        release_output_locks()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
