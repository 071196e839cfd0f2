"""The CLI: bad input gives one line naming the problem, exit status 2, and no output; good input
in every supported format runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from spark_n2v.cli import main
from tests.conftest import write_csv

SMALL = [("a", "b", 1), ("b", "c", 2), ("c", "a", 1), ("c", "d", 1)]
FAST = ["--walk-length", "3", "--num-walks", "1"]


def fails(capsys, argv, *expected):
    """Run the CLI, expect exit 2 and one stderr line mentioning every expected fragment."""
    output = argv[argv.index("--output") + 1]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "spark-n2v: error" in line]
    assert len(err) == 1, err
    for fragment in expected:
        assert fragment in err[0], err[0]
    assert not os.path.exists(output)
    assert not [n for n in os.listdir(os.path.dirname(output)) if n.endswith((".incomplete", ".work"))]
    return err[0]


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


@pytest.mark.parametrize("rows,fragments", [
    ([("a", "b", "x")], ["line 2", "weight 'x' is not a number"]),
    ([("a", "b", 1), ("b", "c", -2)], ["line 3", "not positive"]),
    ([("a", "b", "NaN")], ["line 2", "NaN"]),
    ([("a", "b", "inf")], ["line 2", "infinite"]),
    ([("a", "b", 1), ("b", "c", 1, 9)], ["line 3", "ragged row", "expected 3 fields, found 4"]),
    ([], ["no edges"]),
    ([("a", "a", 1), ("b", "b", 2)], ["no edges", "self-loop"]),
])
def test_bad_rows_are_named(spark, capsys, tmp_path, out, rows, fragments):
    edges = write_csv(tmp_path / "e.csv", rows)
    fails(capsys, ["walk", "--edges", edges, "--output", out, "--weighted", *FAST], *fragments)


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


def test_formats_crlf_duplicates_and_config(spark, capsys, tmp_path):
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"src,dst,weight\r\na,b,1\r\nb,a,2\r\nb,c,1\r\nc,c,1\r\n")
    assert main(["walk", "--edges", str(crlf), "--output", str(tmp_path / "o1"), "--weighted",
                 *FAST]) == 0
    assert "1 self-loops dropped, 1 duplicate edges merged" in capsys.readouterr().out
    snap = tmp_path / "graph.txt"
    snap.write_text("# SNAP edge list\n# FromNodeId\tToNodeId\n1\t2\n2\t3\n3 1\n")
    assert main(["walk", "--edges", str(snap), "--output", str(tmp_path / "o2"), "--directed",
                 *FAST]) == 0
    walks = pq.read_table(str(tmp_path / "o2")).to_pydict()
    assert sorted(w[0] for w in walks["walk"]) == [1, 2, 3]
    tsv = tmp_path / "e.tsv"
    tsv.write_text("x\ty\t0.5\ny\tz\t2\n")
    conf = tmp_path / "c.toml"
    conf.write_text("[walk]\nwalk_length = 4\nnum_walks = 2\n[input]\nheader = false\n")
    assert main(["walk", "--edges", str(tsv), "--output", str(tmp_path / "o3"), "--weighted",
                 "--config", str(conf), "--num-walks", "3"]) == 0
    walks = pq.read_table(str(tmp_path / "o3")).to_pydict()
    assert len(walks["walk"]) == 9 and {len(w) for w in walks["walk"]} == {4}
    pq.write_table(pq.read_table(str(tmp_path / "o3")).slice(0, 0), str(tmp_path / "x.parquet"))
    import pyarrow as pa
    pq.write_table(pa.table({"from": [1, 2, 3], "to": [2, 3, 1], "w": [1.0, 2.0, 3.0]}),
                   str(tmp_path / "e.parquet"))
    assert main(["run", "--edges", str(tmp_path / "e.parquet"), "--src-col", "from",
                 "--dst-col", "to", "--weight-col", "w", "--weighted", "--output",
                 str(tmp_path / "o4"), "--dim", "4", *FAST]) == 0
    emb = pq.read_table(str(tmp_path / "o4" / "embeddings")).to_pydict()
    assert sorted(emb["id"]) == [1, 2, 3] and {len(e) for e in emb["embedding"]} == {4}
    assert os.path.exists(tmp_path / "o4" / "_run.json")


def test_mllib_ceiling_is_checked_before_training(spark, capsys, tmp_path):
    edges = write_csv(tmp_path / "e.csv", SMALL)
    assert main(["walk", "--edges", edges, "--output", str(tmp_path / "w"), *FAST]) == 0
    err = fails(capsys, ["train", "--walks", str(tmp_path / "w"), "--output", str(tmp_path / "t"),
                         "--dim", str(2**31 // 4)], "MLlib", "--dim")
    assert "at most 536870911" in err


def test_process_exit_status_and_no_traceback(tmp_path):
    """Through a real process: exit status 2, one line, no Python or Java stack trace."""
    edges = write_csv(tmp_path / "e.csv", [("a", "b", 1), ("b", "c", "heavy")])
    result = subprocess.run(
        [sys.executable, "-m", "spark_n2v.cli", "walk", "--edges", edges, "--output",
         str(tmp_path / "o"), "--weighted", "--master", "local[1]"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "spark-n2v: error: e.csv line 3: weight 'heavy' is not a number" in result.stderr
    assert "Traceback" not in result.stderr and "\tat " not in result.stderr
    assert not (tmp_path / "o").exists()


def test_every_command_has_a_spark_submit_job():
    import pathlib

    from spark_n2v.cli import COMMANDS
    jobs = pathlib.Path(__file__).resolve().parent.parent / "jobs"
    for name in COMMANDS:
        text = (jobs / f"{name}.py").read_text()
        assert f'main(["{name}", *sys.argv[1:]])' in text, name
