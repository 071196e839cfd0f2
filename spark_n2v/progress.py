"""Where a run is while it runs: log lines (stderr) and Spark job descriptions (the Spark UI).

On a terminal, progress updates (logged with `LIVE`) rewrite one line in place and the stage's
next line (its summary) replaces it (`LiveLine`); elsewhere (Airflow, spark-submit logs) every
update is a log line of its own.

The sharded engine reports each step as it completes (step i of L, live walkers, steps/s, ETA).
The replicated engine walks whole walks inside tasks, so there is no global step to report: it reports the
walks finished (counted by an accumulator as tasks end), with the same rate and ETA.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from typing import IO, Iterator

from pyspark import Accumulator
from pyspark.sql import SparkSession

log = logging.getLogger("spark_n2v.progress")

LIVE = {"live": True}  # `extra=` of a progress update: the live line on a terminal


class LiveLine(logging.Handler):
    """A terminal's log handler: a progress update (a record logged with extra=LIVE) rewrites the
    current line (cut to the terminal's width, so that it never wraps); any other record replaces
    that line and ends it. `finish` ends a pending line before something else is printed."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream = stream
        self.pending = False

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        live = getattr(record, "live", False)
        if live:
            text = text[: max(shutil.get_terminal_size().columns - 1, 20)]
        self.stream.write("\r" + text + "\x1b[K" + ("" if live else "\n"))
        self.stream.flush()
        self.pending = live

    def finish(self) -> None:
        if self.pending:
            self.stream.write("\n")
            self.stream.flush()
            self.pending = False


def live_line() -> LiveLine | None:
    """The live line's handler, when the CLI installed one (a terminal)."""
    return next((h for h in logging.getLogger("spark_n2v").handlers if isinstance(h, LiveLine)),
                None)


def finish_live_line() -> None:
    """End the live line, if any, before printing outside logging (an error, a summary)."""
    handler = live_line()
    if handler is not None:
        handler.finish()


def _report_every() -> float:
    """Seconds between the replicated engine's reports: often on a live line, else a log line
    every 10 s."""
    return 10.0 if live_line() is None else 1.0


def describe(spark: SparkSession, text: str) -> None:
    """Name the Spark jobs that follow (in the Spark UI), until the next call; the stage runner
    clears it when the stage ends (stages.stage.execute)."""
    spark.sparkContext.setJobDescription(text)


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class StepProgress:
    """Progress of the sharded engine's step loop."""

    def __init__(self, steps: int, first: int = 0) -> None:
        self.steps = steps
        self.first = first  # steps done before this run started (a resumed walk)
        self.started = time.perf_counter()
        self.last = self.started

    def step(self, done: int, live_before: int, live_after: int) -> None:
        now = time.perf_counter()
        rate = live_before / max(now - self.last, 1e-9)
        eta = (now - self.started) / max(done - self.first, 1) * max(self.steps - done, 0)
        self.last = now
        if done > self.steps:  # rare: walkers whose every candidate so far was rejected
            log.info("walk: extra round %d for %s walkers", done - self.steps, f"{live_before:,}")
            return
        log.info("walk step %d/%d: %s live walkers, %.2fM steps/s, ETA %s", done, self.steps,
                 f"{live_after:,}", rate / 1e6, duration(eta), extra=LIVE)


@contextlib.contextmanager
def walks_progress(spark: SparkSession, description: str, walkers: int, walk_length: int,
                   finished: Accumulator, every: float | None = None) -> Iterator[None]:
    """Log the walks finished so far (`finished`, added to by the tasks as they end) until the
    block ends, then the total."""
    sc = spark.sparkContext
    sc.setJobDescription(description)
    stop = threading.Event()
    started = time.perf_counter()

    every = every or _report_every()

    def report() -> None:
        shown = 0
        while not stop.wait(every):
            done = finished.value
            if done == shown:
                continue
            shown = done
            elapsed = time.perf_counter() - started
            log.info("walk (replicated engine): %s of %s walks, %.2fM steps/s, ETA %s", f"{done:,}",
                     f"{walkers:,}", done * (walk_length - 1) / elapsed / 1e6,
                     duration(elapsed / done * (walkers - done)), extra=LIVE)

    thread = threading.Thread(target=report, name="spark-n2v progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sc.setJobDescription(None)
    elapsed = time.perf_counter() - started
    log.info("walk (replicated engine): %s walks in %s, %.2fM steps/s", f"{walkers:,}",
             duration(elapsed), walkers * (walk_length - 1) / elapsed / 1e6)
