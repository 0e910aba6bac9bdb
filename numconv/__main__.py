"""Command line: ``python -m numconv demo`` and ``python -m numconv bench``."""

from __future__ import annotations

import argparse
import json
import sys


def _bench(args) -> int:
    import numba

    from .bench import runner
    from .bench.ops import OPS
    from .bench.suite import suite_cases

    ops = tuple(args.ops.split(","))
    if not set(ops) <= set(OPS):
        print(f"--ops takes a comma-separated subset of {OPS}; got {args.ops!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    numba.set_num_threads(args.threads)
    torch = runner.optional_torch(args.threads)
    if torch is None:
        print("PyTorch is not installed: numconv's figures only", file=sys.stderr)
    repeats = 3 if args.quick else args.repeats
    ceiling = runner.gemm_ceiling(1024 if args.quick else 2048)
    shapes = "small shapes" if args.quick else "full shapes"
    print(f"suite {args.suite} ({shapes}), float32, {args.threads} threads, median of {repeats};"
          f" GEMM ceiling measured now: {ceiling:.0f} GFLOP/s; {runner.blas_description()}",
          file=sys.stderr)  # fmt: skip
    cases = suite_cases(args.suite, args.quick)
    rows = runner.run(cases, ops, repeats, torch, progress=runner.progress_to_stderr)
    print(runner.format_table(rows, ceiling))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runner.as_json(rows, ceiling, args.threads), f, indent=1)
    return 0


def main(argv=None) -> int:
    from .bench.suite import SUITES

    parser = argparse.ArgumentParser(prog="python -m numconv")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="walk through numconv's convolution (no PyTorch needed)")
    bench = commands.add_parser("bench", help="time numconv against PyTorch, side by side")
    bench.add_argument(
        "--suite",
        choices=[*SUITES, "all"],
        default="performance",
        help="shape suite (default: performance, the convolution layers); all: every suite",
    )
    bench.add_argument("--ops", default="fwd,dx,dw", help="comma-separated: fwd,dx,dw")
    bench.add_argument("--quick", action="store_true",
                       help="the suite's small shapes, 3 repetitions")  # fmt: skip
    bench.add_argument("--threads", type=int, default=2, help="threads for both libraries")
    bench.add_argument("--repeats", type=int, default=7, help="timed repetitions per figure")
    bench.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        run()
        return 0
    return _bench(args)


if __name__ == "__main__":
    sys.exit(main())
