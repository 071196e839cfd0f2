"""Resume after a crash: a killed walk (or run) rerun with the same command finishes with exactly
the walks an uninterrupted run gives; other parameters over the unfinished work are refused; the
output path is never visible incomplete and the work folder goes on success."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from spark_n2v.cli import main
from spark_n2v.stages import run as run_stage
from spark_n2v.walk import replicated
from tests.helpers import Crash, crash_after_marks, read_walks, write_csv


def _graph(tmp_path, nodes: int = 300) -> str:
    """A ring with chords: every node has degree >= 2, so second-order steps matter."""
    rng = np.random.default_rng(3)
    rows = [(v, (v + 1) % nodes, 1) for v in range(nodes)]
    rows += [(int(a), int(b), 1) for a, b in rng.integers(0, nodes, (nodes, 2)) if a != b]
    return write_csv(tmp_path / "edges.csv", rows)


WALK = ["--walk-length", "9", "--num-walks", "2", "--p", "0.5", "--q", "2", "--seed", "7"]
# Each engine's resume state, and the launcher of the process to kill: the replicated engine's walks
# come in batches of 100 there (600 walks: 6 batches), which the rerun here uses too.
RESUME = {
    "sharded": ("_walk.json", "resuming after step"),
    "replicated": ("_local.json", "resuming after"),
}
_SMALL_BATCHES = ("import sys; from spark_n2v.walk import replicated; "
                  "replicated.RESUME_WALKERS = 100; from spark_n2v.cli import main; "
                  "sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("engine", ["sharded", "replicated"])
def test_killed_walk_resumes_to_the_same_walks(spark, tmp_path, caplog, capsys, monkeypatch,
                                               engine):
    monkeypatch.setattr(replicated, "RESUME_WALKERS", 100)
    edges = _graph(tmp_path)
    out = tmp_path / "walks"
    argv = ["walk", "--edges", edges, "--output", str(out), "--engine", engine, *WALK]
    state_file, resume_line = RESUME[engine]
    state = tmp_path / ".walks.work" / state_file
    # a real process, killed with SIGKILL (JVM included) once two resume points are written
    process = subprocess.Popen([sys.executable, "-c", _SMALL_BATCHES, *argv, "--master",
                                "local[2]"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    written = 0
    while written < 2:
        assert process.poll() is None, "the walk ended before it could be killed"
        assert time.monotonic() < deadline, "no resume point written in 300 s"
        time.sleep(0.05)
        try:
            written = len(json.loads(state.read_text())["done"])
        except (FileNotFoundError, ValueError):
            continue
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()  # the output is only ever visible complete
    assert (tmp_path / ".walks.work" / "store" / "_store.json").exists()

    # other parameters over the unfinished work: refused, the work kept
    assert main([*argv, "--p", "1"]) == 2
    err = capsys.readouterr().err
    assert "unfinished run" in err and "return_p" in err and "--overwrite" in err
    assert state.exists()

    with caplog.at_level(logging.INFO, logger="spark_n2v"):
        assert main(argv) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any("graph store of the unfinished run is reused" in line for line in lines)
    resumed = [re.search(r"after (?:step )?(\d+)", line) for line in lines if resume_line in line]
    assert resumed and int(resumed[0].group(1)) >= 2
    assert not (tmp_path / ".walks.work").exists() and not (tmp_path / ".walks.incomplete").exists()

    whole = ["walk", "--edges", edges, "--output", str(tmp_path / "whole"), *WALK]
    assert main([*whole, "--engine", engine]) == 0
    assert read_walks(out) == read_walks(tmp_path / "whole")
    assert len(read_walks(out)) == 2 * 300


def test_run_resumes_local_walk_batches_then_skips_the_walk(spark, tmp_path, monkeypatch, caplog):
    edges = _graph(tmp_path, nodes=120)
    common = ["--engine", "replicated", "--walk-length", "10", "--num-walks", "4", "--seed", "5",
              "--trainer", "sgns", "--dim", "8", "--epochs", "1", "--chunks", "1"]
    monkeypatch.setattr(replicated, "RESUME_WALKERS", 100)  # 480 walks: 5 batches
    argv = ["run", "--edges", edges, "--output", str(tmp_path / "run"), *common]

    revive = crash_after_marks(monkeypatch, "_local.json", 2)
    with pytest.raises(Crash):
        main(argv)
    revive()
    assert not (tmp_path / "run").exists()

    real_train = run_stage.train_walks
    monkeypatch.setattr(run_stage, "train_walks", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with caplog.at_level(logging.INFO):
        with pytest.raises(Crash):
            main(argv)  # walks batches 3..5, then dies in training
    assert any("resuming after 2 of 5 batches" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(run_stage, "train_walks", real_train)

    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    assert any("done before the restart" in r.getMessage() for r in caplog.records)
    record = json.loads((tmp_path / "run" / "_run.json").read_text())
    assert record["counts"]["walks"] == 480 and record["graph"]["nodes"] == 120
    assert record["inputs"]["--edges"]["files"] == 1

    assert main(["run", "--edges", edges, "--output", str(tmp_path / "whole"), *common]) == 0
    assert read_walks(tmp_path / "run" / "walks") == read_walks(tmp_path / "whole" / "walks")
    got = pq.read_table(str(tmp_path / "run" / "embeddings")).sort_by("id").to_pydict()
    want = pq.read_table(str(tmp_path / "whole" / "embeddings")).sort_by("id").to_pydict()
    assert got == want
