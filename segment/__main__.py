"""``python -m segment``: the same command line as ``segment``."""

from segment.cli import run

run()
