"""Two runs on one output: the second stops with a line naming the first (host, pid, start), a
lock left by a dead run is taken over, and a finished run leaves no lock behind."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import pytest

from spark_n2v.cli import main
from spark_n2v.record import RunLock, _process_start
from tests.helpers import QUICK_JVM_ENV, fails, planted_partition, write_csv

FAST = ["--walk-length", "3", "--num-walks", "1"]


@pytest.fixture()
def edges(tmp_path):
    return write_csv(tmp_path / "e.csv", [("a", "b", 1), ("b", "c", 1), ("c", "a", 1)])


def _lock(output, host: str, pid: int, started: str | None, age: float = 0.0) -> str:
    path = os.path.join(os.path.dirname(output), f".{os.path.basename(output)}.lock")
    with open(path, "w") as handle:
        json.dump({"host": host, "pid": pid, "started": started, "since": "2026-12-02 10:00:00"},
                  handle)
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_a_live_run_on_this_host_holds_the_output(spark, capsys, tmp_path, edges):
    output = str(tmp_path / "out")
    other = subprocess.Popen(["sleep", "600"])
    try:
        lock = _lock(output, platform.node(), other.pid, _process_start(other.pid))
        fails(capsys, ["walk", "--edges", edges, "--output", output, *FAST],
              "is being written by another run", f"host {platform.node()}", f"pid {other.pid}",
              "since 2026-12-02 10:00:00")
        assert os.path.exists(lock)  # the other run's lock is left alone
    finally:
        other.kill()
        other.wait()
    # the same pid with another start time is another process: the holder is gone
    _lock(output, platform.node(), os.getpid(), "1")
    assert main(["walk", "--edges", edges, "--output", output, *FAST]) == 0
    assert not os.path.exists(lock)


def test_a_dead_runs_lock_is_taken_over(spark, tmp_path, edges):
    output = str(tmp_path / "out")
    ended = subprocess.Popen(["true"])
    ended.wait()
    lock = _lock(output, platform.node(), ended.pid, "12345")
    assert main(["walk", "--edges", edges, "--output", output, *FAST]) == 0
    assert os.path.isdir(output) and not os.path.exists(lock)


def test_another_hosts_lock_holds_while_it_beats(spark, capsys, tmp_path, edges):
    output = str(tmp_path / "out")
    _lock(output, "elsewhere.example", 4242, "7", age=RunLock.STALE / 2)
    fails(capsys, ["walk", "--edges", edges, "--output", output, *FAST],
          "host elsewhere.example", "pid 4242")
    lock = _lock(output, "elsewhere.example", 4242, "7", age=RunLock.STALE * 2)
    assert main(["walk", "--edges", edges, "--output", output, *FAST]) == 0
    assert not os.path.exists(lock)


def test_two_processes_on_one_output(tmp_path):
    """A scheduler's retry beside a run that is still alive: the retry stops, the run finishes."""
    rows, _ = planted_partition(seed=1)
    edges = write_csv(tmp_path / "e.csv", rows)
    output = str(tmp_path / "out")
    command = [sys.executable, "-m", "spark_n2v.cli", "walk", "--edges", edges, "--output", output,
               "--master", "local[1]", "--conf", "spark.ui.enabled=false", "--engine", "sharded",
               "--walk-length", "60", "--num-walks", "2"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=QUICK_JVM_ENV)
    try:
        lock = os.path.join(str(tmp_path), ".out.lock")
        deadline = time.monotonic() + 300
        while not os.path.exists(lock) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        second = subprocess.run(command, capture_output=True, text=True, timeout=300, env=QUICK_JVM_ENV)
        assert first.poll() is None, "the first run ended before the second started: make it longer"
        assert second.returncode == 2, second.stderr
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith("spark-n2v: error: ") and f"pid {first.pid}," in last, last
        assert first.wait(timeout=600) == 0, first.stderr.read()
    finally:
        first.kill()
    assert os.path.isdir(output) and not os.path.exists(lock)
