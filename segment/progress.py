"""Progress reporting, injected into long-running library calls by the command line.

Library code never prints: it calls the methods of a :class:`Progress` it is
given. :class:`NullProgress` shows nothing (the default, and what a script or
a non-terminal stderr gets); :class:`RichProgress` draws a bar with the count,
the rate and the time left on stderr. :func:`make_progress` picks one.
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    """What a long-running call reports while it works.

    ``start`` is called once with the number of steps, ``advance`` after each
    step, ``stop`` at the end (also after an error or an interruption).
    ``write`` shows a line (an error, a note) without disturbing the bar.
    """

    def start(self, total: int, description: str = "") -> None:
        """Begin a run of ``total`` steps."""

    def advance(self, steps: int = 1) -> None:
        """Record that ``steps`` more steps are done."""

    def write(self, line: str) -> None:
        """Show one line of text on stderr."""

    def stop(self) -> None:
        """End the run; the bar, if any, stays on screen as it last was."""


class NullProgress:
    """No bar. ``write`` still puts its line on stderr (errors must be seen)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def start(self, total: int, description: str = "") -> None:
        """Nothing to show."""

    def advance(self, steps: int = 1) -> None:
        """Nothing to show."""

    def write(self, line: str) -> None:
        """Write ``line`` to stderr."""
        stream = self.stream if self.stream is not None else sys.stderr
        print(line, file=stream, flush=True)

    def stop(self) -> None:
        """Nothing to show."""


class RichProgress:
    """A rich progress bar on stderr: done/total, images per second, elapsed and time left."""

    def __init__(self, unit: str = "img") -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.unit = unit
        self._progress = None
        self._task = None

    def start(self, total: int, description: str = "") -> None:
        """Show the bar."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress as RichBar,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        unit = self.unit

        class RateColumn(ProgressColumn):
            """Steps per second over the recent past."""

            def render(self, task) -> Text:
                speed = task.finished_speed or task.speed
                return Text("-- " + unit + "/s" if speed is None else f"{speed:.2f} {unit}/s", style="progress.data.speed")

        self._progress = RichBar(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        """Move the bar on."""
        if self._progress is not None:
            self._progress.advance(self._task, steps)

    def write(self, line: str) -> None:
        """Print ``line`` above the bar."""
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        """Stop refreshing the bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def make_progress(quiet: bool = False, stream: TextIO | None = None) -> Progress:
    """A :class:`RichProgress` when stderr is a terminal and not ``quiet``, else a :class:`NullProgress`."""
    stream = stream if stream is not None else sys.stderr
    if quiet or not getattr(stream, "isatty", lambda: False)():
        return NullProgress(stream)
    return RichProgress()
