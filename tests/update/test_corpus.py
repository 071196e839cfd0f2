"""An update's corpus: the previous walks kept and renumbered, the new walks, the token counts."""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest

from spark_n2v import columns as C
from spark_n2v.update import corpus


def _write(spark, rows, folder, id_type, files):
    (spark.createDataFrame(rows, f"walk_id long, walk array<{id_type}>").repartition(files)
     .write.parquet(folder))


def _folder(spark, ids, folder, id_type):
    spark.createDataFrame([(i,) for i in ids], f"id {id_type}").write.parquet(folder)


@pytest.mark.parametrize("id_type, old_ids, new_ids, storage", [
    ("long", [10, 20, 30, 40], [10, 25, 30, 35, 40], "local"),
    ("string", ["b", "c", "d", "é"], ["b", "ca", "d", "dd", "é"], "local"),
    ("string", ["b", "c", "d", "é"], ["b", "ca", "d", "dd", "é"], "hdfs"),
    ("long", [10, 20, 30, 40], [10, 25, 30, 35, 40], "s3")])
def test_the_corpus_keeps_renumbers_and_counts(spark, tmp_path, remote, id_type, old_ids,
                                               new_ids, storage):
    """Node 1 of old_ids vanishes, two new ones arrive (one before and one after node 2, which
    is walked again): the walks kept are those of nodes 0 and 3, at their new places. On HDFS
    and S3 Spark does the tasks' I/O, with the same result."""
    root = str(tmp_path) if storage == "local" else remote(storage)
    a, gone, c, d = old_ids
    first_new, second_new = new_ids[1], new_ids[3]
    previous = [(r * 4 + v, [node, old_ids[(v + 1) % 4], node])
                for r in range(3) for v, node in enumerate(old_ids)]
    walked = [(r * 5 + v, [node, c]) for r in range(3) for v, node in enumerate(new_ids)
              if node in (first_new, c, second_new)]
    _write(spark, previous, f"{root}/previous", id_type, 3)
    _write(spark, walked, f"{root}/new-walks", id_type, 2)
    _folder(spark, [first_new, c, second_new], f"{root}/changes/{corpus.AGAIN}", id_type)
    _folder(spark, [first_new, second_new], f"{root}/changes/{C.NEW}", id_type)
    _folder(spark, [gone], f"{root}/changes/{C.VANISHED}", id_type)
    changes = corpus.Changes(f"{root}/changes", previous_nodes=4, nodes=5)
    out = f"{root}/corpus"
    changed = {r[C.ID]: r[C.COUNT] for r in corpus.write(
        spark, f"{root}/previous", f"{root}/new-walks", out, changes, id_type
    ).groupBy(C.ID).sum(C.COUNT).withColumnRenamed(f"sum({C.COUNT})", C.COUNT).collect()}
    walks = {r[C.WALK_ID]: list(r[C.WALK]) for r in spark.read.parquet(out).collect()}
    expected = {r * 5 + new_ids.index(w[0]): w for k, w in previous if w[0] in (a, d)
                for r in [k // 4]}
    expected.update(dict(walked))
    assert walks == expected
    assert all(w[0] == new_ids[k % 5] for k, w in walks.items()), "numbered as a run numbers"
    lost = Counter(t for _, w in previous if w[0] in (gone, c) for t in w)
    gained = Counter(t for _, w in walked for t in w)
    net = {k: gained[k] - lost[k] for k in lost | gained}
    assert {k: v for k, v in changed.items() if v} == {k: v for k, v in net.items() if v}
    if storage == "local":
        assert pq.read_table(out).num_rows == len(expected), "the tasks' files are whole Parquet"
