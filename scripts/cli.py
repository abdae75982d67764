"""The ``landscape`` console command: one subcommand per task."""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS = {
    "train": "scripts.train",
    "validate": "scripts.validate",
    "analyze": "scripts.analyze",
    "demo": "scripts.demo",
    "compare": "scripts.compare",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="landscape", description="Loss-landscape curvature toolkit.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        mod = importlib.import_module(module_name)
        sp = sub.add_parser(name, help=mod.DESCRIPTION, description=mod.DESCRIPTION)
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args._run(args)


if __name__ == "__main__":
    raise SystemExit(main())
