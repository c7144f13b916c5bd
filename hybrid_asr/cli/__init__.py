"""The ``hybrid-asr`` command line: thin argparse wrappers over the package's stage functions."""

from hybrid_asr.cli.main import main

__all__ = ["main"]
