"""``hybrid-asr`` entry point: builds the sub-command parsers and turns errors into one line."""

import argparse
import logging
import os
import sys
from typing import List, Optional

# torch 1.13's MKL takes a slow generic code path on AMD CPUs unless this is set before torch
# loads (single-thread sgemm measured 34 -> 86 GFLOP/s on AMD EPYC; harmless on Intel). Set by the
# command, not by importing the package, so that a library user's environment is left alone.
os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")

from hybrid_asr.errors import HybridAsrError
from hybrid_asr.utils import setup_logging

log = logging.getLogger("hybrid_asr")


def build_parser() -> argparse.ArgumentParser:
    from hybrid_asr.cli import commands
    from hybrid_asr.cli.options import OneLineParser, number

    parser = OneLineParser(prog="hybrid-asr", description="Hybrid DNN-HMM speech recognition with k2.")
    parser.add_argument("--num-threads", type=number(int, ge=1), default=1,
                        help="torch intra-op threads (default 1: fastest on a shared 2-core machine)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in commands.REGISTRY:
        try:
            register(sub)
        except ImportError as e:  # the command's code needs a package this environment lacks (e.g. k2)
            _register_unavailable(sub, register.__name__[len("add_"):].replace("_", "-"), e)
    return parser


def _register_unavailable(sub, name: str, error: ImportError) -> None:
    """Register ``name`` as a command that fails with one line naming the package it needs, so
    the others work where one package is missing (training runs where torch has no k2 build)."""
    package = error.name or str(error)
    p = sub.add_parser(name, help=f"unavailable here: needs the Python package {package}", add_help=False)
    p.add_argument("ignored", nargs=argparse.REMAINDER)

    def unavailable(args) -> int:
        raise HybridAsrError(f"needs the Python package {package}, which cannot be imported here ({error})")

    p.set_defaults(func=unavailable)


def main(argv: Optional[List[str]] = None) -> int:
    """Run one sub-command; returns the process exit status (0 ok, 1 error, 2 partial failure or
    a usage error such as an option out of range, reported in one line before any work)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        return int(e.code or 0)
    setup_logging(args.verbose)
    import torch

    torch.set_num_threads(args.num_threads)
    try:
        return int(args.func(args) or 0)
    except HybridAsrError as e:
        print(f"hybrid-asr {args.command}: error: {e}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:  # a package this command needs is not installed (e.g. k2)
        print(f"hybrid-asr {args.command}: error: needs the Python package {e.name}, which is not installed "
              f"({e})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
