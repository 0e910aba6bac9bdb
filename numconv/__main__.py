"""Command line: ``python -m numconv demo`` and ``python -m numconv bench``."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m numconv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="walk through numconv's convolution (no PyTorch needed)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
