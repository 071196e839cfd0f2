"""`spark-n2v similar`: exact top-k equals numpy's cosine top-k (also when the work is split into
several query blocks and candidate groups), --ids limits the queries, approx reports a recall that
is checked against exact, and bad input is refused with one line."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_n2v.cli import main
from spark_n2v.stages import similar
from tests.helpers import fails


def _clustered(n=240, dim=8, clusters=6, seed=0):
    """Vectors around a few random centres, so neighbours are meaningful and ties are absent."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[np.arange(n) % clusters] + 0.4 * rng.normal(size=(n, dim))
    return x.astype(np.float32)


def _write_embeddings(path, ids, vectors):
    pq.write_table(pa.table({"id": ids, "embedding": [v.tolist() for v in vectors]}),
                   str(path) + ".parquet")
    return str(path)


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("emb") / "embeddings"
    folder.mkdir()
    vectors = _clustered()
    ids = [f"n{i}" for i in range(len(vectors))]
    _write_embeddings(folder / "part-0", ids[:100], vectors[:100])  # two files, as Spark writes
    _write_embeddings(folder / "part-1", ids[100:], vectors[100:])
    return str(folder), ids, vectors


def _numpy_top_k(vectors, k):
    unit = vectors.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


def _read(out):
    table = pq.read_table(str(out)).to_pydict()
    rows = sorted(zip(table["id"], table["rank"], table["neighbor"], table["similarity"]))
    found: dict = {}
    for id_, rank, neighbor, sim in rows:
        found.setdefault(id_, []).append((rank, neighbor, sim))
    return found


@pytest.mark.parametrize("split", [False, True], ids=["one-block", "many-blocks"])
def test_exact_matches_numpy(spark, embeddings, tmp_path, monkeypatch, split):
    folder, ids, vectors = embeddings
    if split:  # force 4+ candidate groups and as many query blocks: the merge must be right
        monkeypatch.setattr(similar, "GROUP_BYTES", 2000)
        monkeypatch.setattr(similar, "QUERY_BYTES", 2000)
    out = tmp_path / "nn"
    assert main(["similar", "--embeddings", folder, "--output", str(out), "--top-k", "5"]) == 0
    found = _read(out)
    order, sims = _numpy_top_k(vectors, 5)
    assert sorted(found) == sorted(ids)
    for i, id_ in enumerate(ids):
        assert [r for r, _, _ in found[id_]] == [1, 2, 3, 4, 5]
        assert [n for _, n, _ in found[id_]] == [ids[j] for j in order[i]], id_
        np.testing.assert_allclose([s for _, _, s in found[id_]], sims[i], atol=1e-5)
    schema = pq.read_schema(next(str(p) for p in out.glob("*.parquet")))
    assert [f.name for f in schema] == ["id", "neighbor", "similarity", "rank"]
    assert str(schema.field("similarity").type) == "float"
    assert json.loads((out / "_run.json").read_text())["counts"]["rows"] == 5 * len(ids)


def test_ids_limit_the_queries_and_unknown_ids_are_counted(spark, embeddings, tmp_path):
    folder, ids, vectors = embeddings
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("n3\n\nn17\nnobody\n")
    out = tmp_path / "nn"
    assert main(["similar", "--embeddings", folder, "--output", str(out), "--top-k", "3",
                 "--ids", str(ids_file)]) == 0
    found = _read(out)
    assert sorted(found) == ["n17", "n3"]
    order, _ = _numpy_top_k(vectors, 3)
    assert [n for _, n, _ in found["n3"]] == [ids[j] for j in order[3]]
    assert json.loads((out / "_run.json").read_text())["counts"]["ids_unknown"] == 1


def test_approx_reports_its_recall_against_exact(spark, embeddings, tmp_path):
    folder, ids, vectors = embeddings
    out = tmp_path / "approx"
    assert main(["similar", "--embeddings", folder, "--output", str(out), "--top-k", "5",
                 "--method", "approx", "--lsh-bits", "3", "--recall-sample", "60"]) == 0
    found = _read(out)
    order, _ = _numpy_top_k(vectors, 5)
    index = {id_: i for i, id_ in enumerate(ids)}
    truth = {id_: {ids[j] for j in order[i]} for i, id_ in enumerate(ids)}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for id_, rows in found.items():  # whatever it finds, its similarities are the true cosines
        for _, neighbor, sim in rows:
            assert neighbor != id_
            assert abs(sim - unit[index[id_]] @ unit[index[neighbor]]) < 1e-5
    record = json.loads((out / "_run.json").read_text())
    reported = record["quality"]["recall_at_k"]
    assert record["counts"]["recall_sample"] == 60
    # the reported recall is that of the written table on its sample; over every node it must be
    # close, and LSH with 8 tables of 3 bits on 6 clusters must find most true neighbours
    overall = np.mean([len(truth[i] & {n for _, n, _ in found.get(i, [])}) / 5 for i in ids])
    assert overall > 0.8, overall
    assert abs(reported - overall) < 0.1, (reported, overall)


def test_bad_similar_input_is_refused(spark, embeddings, tmp_path, capsys):
    folder, _, vectors = embeddings
    out = str(tmp_path / "out")
    fails(capsys, ["similar", "--embeddings", folder, "--output", out, "--top-k", "0"],
          "--top-k", "at least 1")
    fails(capsys, ["similar", "--embeddings", str(tmp_path / "none"), "--output", out],
          "--embeddings", "no such file or folder")
    fails(capsys, ["similar", "--embeddings", folder, "--output", out, "--ids",
                   str(tmp_path / "none.txt")], "--ids", "no such file")
    ragged = tmp_path / "ragged"
    ragged.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "embedding": [[0.1, 0.2], [0.3]]}),
                   str(ragged / "p.parquet"))
    fails(capsys, ["similar", "--embeddings", str(ragged), "--output", out], "--embeddings",
          "same length")
    int_ids = tmp_path / "int_ids"
    int_ids.mkdir()
    _write_embeddings(int_ids / "p", list(range(len(vectors))), vectors)
    bad_ids = tmp_path / "bad.txt"
    bad_ids.write_text("3\nseven\n")
    fails(capsys, ["similar", "--embeddings", str(int_ids), "--output", out, "--ids",
                   str(bad_ids)], "--ids", "'seven'", "bigint")
