"""Edge input: every supported format reads (CRLF, duplicates, SNAP comments, headerless TSV,
Parquet with other column names), and bad rows are refused with one line naming the line."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_n2v.cli import main
from tests.helpers import fails, write_csv

FAST = ["--walk-length", "3", "--num-walks", "1"]


@pytest.fixture()
def out(tmp_path):
    return str(tmp_path / "out")


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
    pq.write_table(pa.table({"from": [1, 2, 3], "to": [2, 3, 1], "w": [1.0, 2.0, 3.0]}),
                   str(tmp_path / "e.parquet"))
    assert main(["run", "--edges", str(tmp_path / "e.parquet"), "--src-col", "from",
                 "--dst-col", "to", "--weight-col", "w", "--weighted", "--output",
                 str(tmp_path / "o4"), "--dim", "4", *FAST]) == 0
    emb = pq.read_table(str(tmp_path / "o4" / "embeddings")).to_pydict()
    assert sorted(emb["id"]) == [1, 2, 3] and {len(e) for e in emb["embedding"]} == {4}
    assert os.path.exists(tmp_path / "o4" / "_run.json")
