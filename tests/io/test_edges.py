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


# RFC 4180 CSV, as Spark's CSV reader reads it: quoted fields hold the delimiter, doubled quotes,
# tabs and line breaks; a UTF-8 byte-order mark may start the file. Ids are kept exactly.
QUOTED_CSV = ('\ufeffsrc,dst\r\n"Smith, J.","O""Neil"\r\n"O""Neil",b\r\nb,"tab\there"\r\n'
              '"line\nbreak","Smith, J."\r\n')
QUOTED_TSV = 'src\tdst\n"Smith, J.\t2"\t"O""Neil"\n"O""Neil"\t b \n'


@pytest.mark.parametrize("name,text,ids", [
    ("quoted.csv", QUOTED_CSV, {"Smith, J.", 'O"Neil', "b", "tab\there", "line\nbreak"}),
    ("one-line.csv", QUOTED_CSV.rsplit('"line', 1)[0], {"Smith, J.", 'O"Neil', "b", "tab\there"}),
    ("quoted.tsv", QUOTED_TSV, {"Smith, J.\t2", 'O"Neil', "b"}),
])
def test_quoted_fields_and_a_bom_are_read_as_rfc_4180(spark, capsys, tmp_path, name, text, ids):
    (tmp_path / name).write_bytes(text.encode("utf-8"))
    output = tmp_path / "out"
    assert main(["run", "--edges", str(tmp_path / name), "--output", str(output), "--trainer",
                 "sgns", "--dim", "4", "--epochs", "1", *FAST]) == 0
    walks = pq.read_table(str(output / "walks")).to_pydict()["walk"]
    assert {node for walk in walks for node in walk} == ids
    assert set(pq.read_table(str(output / "embeddings")).to_pydict()["id"]) == ids
    if any("\t" in i or "\n" in i for i in ids):  # text formats without quoting refuse them
        fails(capsys, ["export", "--embeddings", str(output / "embeddings"), "--output",
                       str(tmp_path / "export")], "contains a tab or a line break")


def test_a_bad_row_after_a_quoted_line_break_is_named_by_its_line(spark, capsys, tmp_path, out):
    (tmp_path / "e.csv").write_text('src,dst\n"two\nlines",b\n\nc,d,e\n')
    fails(capsys, ["walk", "--edges", str(tmp_path / "e.csv"), "--output", out, *FAST],
          "e.csv line 5: ragged row: expected 2 fields, found 3")


def _parquet_folder(folder, extra: dict[str, bytes]) -> str:
    """A folder of Parquet part files (a triangle a-b-c and an edge c-d) plus `extra` files."""
    os.makedirs(folder)
    pq.write_table(pa.table({"src": ["a", "b"], "dst": ["b", "c"]}), str(folder / "part-0.parquet"))
    pq.write_table(pa.table({"src": ["c", "c"], "dst": ["a", "d"]}), str(folder / "part-1.parquet"))
    good = (folder / "part-0.parquet").read_bytes()
    for name, data in extra.items():
        path = folder / name
        os.makedirs(path.parent, exist_ok=True)
        path.write_bytes(good[: len(good) // 2] if data == b"truncated" else data)
    return str(folder)


@pytest.mark.parametrize("name,data", [("part-2.parquet", b"truncated"),
                                       ("part-2.parquet", b"src,dst\na,b\n")])
def test_a_damaged_file_among_parquet_parts_is_named(spark, capsys, tmp_path, out, name, data):
    edges = _parquet_folder(tmp_path / "edges", {name: data})
    fails(capsys, ["walk", "--edges", edges, "--output", out, *FAST],
          "cannot read its file", name, "remove or replace that file")


def test_empty_and_nested_part_files_are_read(spark, tmp_path):
    """A folder where a file could be (named edges.csv, edges.parquet): empty part files are
    skipped (Spark writes them for empty partitions), hidden ones too, and part files in
    sub-folders (partitions such as date=...) are read, as Spark reads them."""
    parquet = _parquet_folder(tmp_path / "edges.parquet", {"part-3.parquet": b"",
                                                           "_SUCCESS": b""})
    folder = tmp_path / "edges.csv"  # a folder named like a file, as Spark names its outputs
    (folder / "day=1").mkdir(parents=True)
    (folder / "_SUCCESS").write_text("")
    (folder / "day=2").mkdir()
    (folder / "day=1" / "a-empty.csv").write_text("")
    (folder / "day=1" / "b.csv").write_text("src,dst\na,b\nb,c\n")
    (folder / "day=2" / "c.csv").write_text("src,dst\nc,a\nc,d\n")
    for edges, name in ((parquet, "p"), (str(folder), "c")):
        output = tmp_path / name
        assert main(["walk", "--edges", edges, "--output", str(output), *FAST]) == 0
        walks = pq.read_table(str(output)).to_pydict()["walk"]
        assert sorted(w[0] for w in walks) == ["a", "b", "c", "d"]


def test_an_output_whose_folder_cannot_be_written_is_refused(spark, capsys, tmp_path, edges=None):
    edges = write_csv(tmp_path / "e.csv", [("a", "b", 1)])
    (tmp_path / "plain-file").write_text("not a folder")
    fails(capsys, ["walk", "--edges", edges, "--output", str(tmp_path / "plain-file" / "out"),
                   *FAST], "plain-file is a file")
    if os.access("/sys", os.W_OK) and not os.path.exists("/sys/kernel"):
        pytest.skip("no read-only folder here")
    argv = ["walk", "--edges", edges, "--output", "/sys/spark-n2v-out", *FAST]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "cannot write in /sys" in err, err
    assert not os.path.exists("/sys/spark-n2v-out")
