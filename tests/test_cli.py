"""The CLI: bad input gives one line naming the problem in flags, the last line on stderr, exit
status 2, and no output; flags are checked before Spark starts; every command has its job."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest

from spark_n2v.cli import flag_namer, main
from spark_n2v.errors import UserError
from tests.helpers import QUICK_JVM_ENV, fails, write_csv

SMALL = [("a", "b", 1), ("b", "c", 2), ("c", "a", 1), ("c", "d", 1)]
FAST = ["--walk-length", "3", "--num-walks", "1"]


@pytest.fixture()
def out(tmp_path):
    return str(tmp_path / "out")


def test_flags_are_checked_before_spark(capsys, tmp_path, out):
    edges = write_csv(tmp_path / "e.csv", SMALL)
    base = ["walk", "--edges", edges, "--output", out]
    fails(capsys, base + ["--p", "0"], "--p", "> 0")
    fails(capsys, base + ["--q", "-1"], "--q", "> 0")
    fails(capsys, base + ["--walk-length", "0"], "--walk-length", "at least 1")
    fails(capsys, base + ["--num-walks", "0"], "--num-walks", "at least 1")
    fails(capsys, ["walk", "--edges", str(tmp_path / "nope.csv"), "--output", out], "nope.csv",
          "no such file")
    fails(capsys, base + ["--src-col", "from"], "'from'", "columns found: src, dst, weight")
    no_weight = write_csv(tmp_path / "nw.csv", [(a, b) for a, b, _ in SMALL], header=("src", "dst"))
    fails(capsys, ["walk", "--edges", no_weight, "--output", out, "--weighted"], "--weighted",
          "'weight'", "columns found: src, dst")


def test_existing_output_is_left_untouched(spark, capsys, tmp_path):
    edges = write_csv(tmp_path / "e.csv", SMALL)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["walk", "--edges", edges, "--output", str(existing), *FAST]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (existing / "keep.txt").read_text() == "mine"
    assert main(["walk", "--edges", edges, "--output", str(existing), "--overwrite", *FAST]) == 0
    assert not (existing / "keep.txt").exists()
    assert pq.read_table(str(existing)).num_rows == 4


# The bad inputs of the pipeline issue, each run as a real process: (edge rows, extra flags,
# fragments of the error). None: the edges file is missing.
HEADER_ONLY = []
BAD_INPUTS = {
    "missing file": (None, [], ["nope.csv", "no such file or folder"]),
    "missing src column": (SMALL, ["--src-col", "from"], ["no column 'from'", "--src-col",
                                                          "columns found: src, dst, weight"]),
    "missing dst column": (SMALL, ["--dst-col", "to"], ["no column 'to'", "--dst-col"]),
    "weighted without a weight column": ([("a", "b")], ["--weighted"], ["--weighted needs a weight "
                                                                        "column: --weight-col"]),
    "non-numeric weight": ([("a", "b", 1), ("b", "c", "heavy")], ["--weighted"],
                           ["e.csv line 3: weight 'heavy' is not a number"]),
    "negative weight": ([("a", "b", -1)], ["--weighted"], ["line 2", "not positive"]),
    "NaN weight": ([("a", "b", "NaN")], ["--weighted"], ["line 2", "NaN"]),
    "infinite weight": ([("a", "b", "inf")], ["--weighted"], ["line 2", "infinite"]),
    "header only": (HEADER_ONLY, [], ["no edges (only a header"]),
    "self-loops only": ([("a", "a", 1)], [], ["no edges once self-loops are dropped"]),
    "ragged row": ([("a", "b", 1), ("b", "c", 1, 9)], [], ["line 3", "ragged row"]),
    "p <= 0": (SMALL, ["--p", "0"], ["--p must be a finite number > 0"]),
    "q <= 0": (SMALL, ["--q", "-1"], ["--q must be a finite number > 0"]),
    "walk length < 1": (SMALL, ["--walk-length", "0"], ["--walk-length must be at least 1"]),
    "number of walks < 1": (SMALL, ["--num-walks", "0"], ["--num-walks must be at least 1"]),
    "existing output": (SMALL, [], ["--output", "already exists", "--overwrite"]),
}


def _run_cli(folder, case: str) -> subprocess.CompletedProcess:
    """A bad input (or, for "verbose", a self-loop-only graph with --verbose) in a real process."""
    rows, flags, _ = BAD_INPUTS.get(case, ([("a", "a", 1)], ["--verbose"], []))
    folder.mkdir()
    header = ("src", "dst") if rows and len(rows[0]) == 2 else ("src", "dst", "weight")
    edges = str(folder / "nope.csv") if rows is None else write_csv(folder / "e.csv", rows, header)
    if case == "existing output":
        (folder / "o").mkdir()
        (folder / "o" / "keep.txt").write_text("mine")
    return subprocess.run(
        [sys.executable, "-m", "spark_n2v.cli", "walk", "--edges", edges, "--output",
         str(folder / "o"), "--master", "local[1]", "--conf", "spark.ui.enabled=false", *flags],
        capture_output=True, text=True, timeout=600, env=QUICK_JVM_ENV)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Every bad input and the verbose run, each its own process, two at a time: (folder, result)
    by case."""
    root = tmp_path_factory.mktemp("cli")
    cases = [*BAD_INPUTS, "verbose"]
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(_run_cli, root / f"case{k}", case) for k, case in enumerate(cases)]
    return {case: (root / f"case{k}", run.result()) for k, (case, run) in enumerate(zip(cases, runs))}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_error_is_the_last_line_of_a_real_process(cli_runs, case):
    """Exit status 2, the error as the last line on stderr (no Spark or JVM line after it, no
    start-up notices before it), no stack trace, and nothing at the output path."""
    folder, result = cli_runs[case]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("spark-n2v: error: "), result.stderr
    for fragment in BAD_INPUTS[case][2]:
        assert fragment in lines[-1], lines[-1]
    assert lines == [lines[-1]], f"stderr holds more than the error: {lines}"
    assert result.stdout == ""
    assert not (folder / ".o.work").exists() and not (folder / ".o.incomplete").exists()
    if case == "existing output":
        assert sorted(p.name for p in (folder / "o").iterdir()) == ["keep.txt"]
    else:
        assert not (folder / "o").exists()


def test_verbose_shows_sparks_own_log(cli_runs):
    _, result = cli_runs["verbose"]
    assert result.returncode == 2
    assert " INFO SparkContext: Running Spark version" in result.stderr
    assert "WARNING: Using incubator modules" in result.stderr
    assert "spark-n2v: error: " in result.stderr  # verbose: Spark's shutdown lines may follow


def test_library_errors_name_parameters_and_the_cli_its_flags():
    error = UserError("{walk.engine=local}: no; use {walk.engine=auto}, lower {train.partitions}, "
                      "{input.header=False}, {overwrite=True}, {labels} {path}", path="{x}.csv")
    assert str(error) == ("walk.engine=local: no; use walk.engine=auto, lower train.partitions, "
                          "input.header=False, overwrite=True, labels {x}.csv")
    assert error.render(flag_namer("walk")) == (
        "--engine local: no; use --engine auto, lower --partitions, --no-header, --overwrite, "
        "--labels {x}.csv")
    assert error.render(flag_namer("run")).split(", ")[1] == "lower --train-partitions"


def test_every_command_has_a_spark_submit_job():
    import pathlib

    from spark_n2v.stages import STAGES
    jobs = pathlib.Path(__file__).resolve().parent.parent / "jobs"
    for name in STAGES:
        text = (jobs / f"{name}.py").read_text()
        assert f'main(["{name}", *sys.argv[1:]])' in text, name


def _on_a_terminal(argv: list[str]) -> str:
    """Run the CLI with stderr on a pseudo-terminal; returns what the terminal received."""
    import pty
    terminal, stderr = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "spark_n2v.cli", *argv],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                               env=QUICK_JVM_ENV)
    os.close(stderr)
    received = bytearray()
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(terminal)
    assert process.wait(timeout=60) == 0, received.decode(errors="replace")[-2000:]
    return received.decode("utf-8", errors="replace")


def test_progress_is_one_line_rewritten_in_place_on_a_terminal(tmp_path):
    rows = [(f"n{i}", f"n{(i * 7 + 1) % 60}", 1) for i in range(60)] + \
        [(f"n{i}", f"n{i + 1}", 1) for i in range(59)]
    edges = write_csv(tmp_path / "e.csv", rows)
    shown = _on_a_terminal(["walk", "--edges", edges, "--output", str(tmp_path / "o"),
                            "--master", "local[1]", "--conf", "spark.ui.enabled=false",
                            "--engine", "sharded", "--walk-length", "8", "--num-walks", "1"])
    lines = shown.replace("\x1b[K", "").replace("\r\n", "\n").split("\n")
    walk = [line for line in lines if "walk step" in line]
    assert len(walk) == 1, lines  # every step on one line...
    updates = walk[0].split("\r")
    steps = [u for u in updates if u.startswith("walk step ")]
    assert [s.split()[2] for s in steps] == [f"{k}/7:" for k in range(1, 8)], updates
    assert all("live walkers" in s and "steps/s" in s and "ETA" in s for s in steps)
    assert updates[-1].startswith("walk: 60 walks in "), updates  # ...that ends with the summary
    assert any(line.split("\r")[-1].startswith("prepare: 60 nodes") for line in lines), lines
