"""`spark-n2v export` (word2vec text, Embedding Projector TSVs) and `spark-n2v plot`: files hold
exactly the table's vectors, in id order, with labels where given; bad input is refused."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_n2v.cli import main
from tests.helpers import fails


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Integer ids in an order that sorts differently as text (2 < 10 < 100), two files."""
    folder = tmp_path_factory.mktemp("exp") / "emb"
    folder.mkdir()
    rng = np.random.default_rng(0)
    ids = [100, 2, 10, 7, 55, 3]
    vectors = rng.normal(size=(len(ids), 5)).astype(np.float32)
    for k, part in enumerate((slice(0, 3), slice(3, 6))):
        pq.write_table(pa.table({"id": ids[part], "embedding": [v.tolist() for v in vectors[part]]}),
                       str(folder / f"part-{k}.parquet"))
    return str(folder), dict(zip(ids, vectors))


def test_word2vec_text_format(spark, table, tmp_path):
    folder, vectors = table
    out = tmp_path / "w2v"
    assert main(["export", "--embeddings", folder, "--output", str(out), "--format", "word2vec"]) == 0
    lines = (out / "embeddings.txt").read_text().splitlines()
    assert lines[0] == "6 5"
    ids = [int(line.split(" ")[0]) for line in lines[1:]]
    assert ids == sorted(vectors)  # numeric order
    for line in lines[1:]:
        fields = line.split(" ")
        np.testing.assert_array_equal(np.array(fields[1:], np.float32), vectors[int(fields[0])])
    assert sorted(p.name for p in out.iterdir()) == ["_run.json", "embeddings.txt"]


def test_projector_files_with_labels(spark, table, tmp_path):
    folder, vectors = table
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n2,a\n10,b\n10,c\n100,a\n")
    out = tmp_path / "proj"
    assert main(["export", "--embeddings", folder, "--output", str(out), "--labels",
                 str(labels)]) == 0
    meta = (out / "metadata.tsv").read_text().splitlines()
    rows = (out / "vectors.tsv").read_text().splitlines()
    assert meta[0] == "id\tlabel"
    assert meta[1:] == ["2\ta", "3\t", "7\t", "10\tb,c", "55\t", "100\ta"]
    for line, id_ in zip(rows, sorted(vectors)):
        np.testing.assert_array_equal(np.array(line.split("\t"), np.float32), vectors[id_])
    plain = tmp_path / "plain"
    assert main(["export", "--embeddings", folder, "--output", str(plain)]) == 0
    assert (plain / "metadata.tsv").read_text().splitlines() == [str(i) for i in sorted(vectors)]


def test_plot_draws_a_png_of_a_sample(spark, table, tmp_path):
    folder, vectors = table
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n2,a\n10,b\n100,a\n")
    out = tmp_path / "plot"
    assert main(["plot", "--embeddings", folder, "--output", str(out), "--labels", str(labels),
                 "--max-points", "4"]) == 0
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "_run.json").read_text())
    assert record["counts"] == {"nodes": 6, "drawn": 4}


def test_bad_export_input_is_refused(spark, table, tmp_path, capsys):
    folder, _ = table
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit):
        main(["export", "--embeddings", folder, "--output", out, "--format", "glove"])
    assert "--format: invalid choice" in capsys.readouterr().err
    spaced = tmp_path / "spaced"
    spaced.mkdir()
    pq.write_table(pa.table({"id": ["a b", "c"], "embedding": [[1.0], [2.0]]}),
                   str(spaced / "p.parquet"))
    fails(capsys, ["export", "--embeddings", str(spaced), "--output", out, "--format", "word2vec"],
          "'a b'", "whitespace", "--format projector")
    fails(capsys, ["plot", "--embeddings", folder, "--output", out, "--max-points", "0"],
          "--max-points")
    holes = tmp_path / "holes"
    holes.mkdir()
    pq.write_table(pa.table({"id": [1, 2, 3], "embedding": [[1.0, 2.0], None, [3.0, None]]}),
                   str(holes / "p.parquet"))
    fails(capsys, ["export", "--embeddings", str(holes), "--output", out], "--embeddings",
          "2 rows have no embedding or a null in it")
