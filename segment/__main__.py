"""``python -m segment``: the same command line as ``segment``."""

from segment.cli import app

app(prog_name="segment")
