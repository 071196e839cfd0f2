"""`spark-n2v run` end to end: embeddings of a planted-partition graph separate its blocks."""

from __future__ import annotations

import pyarrow.parquet as pq
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector

from spark_n2v.cli import main
from tests.helpers import macro_f1, planted_partition, write_csv


def test_macro_f1_helper_matches_a_hand_computation():
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 1, fp 1, fn 1 -> 0.5; class 2: tp 1 -> 1.0
    assert abs(macro_f1([0, 0, 1, 1, 2], [0, 1, 1, 0, 2]) - 2 / 3) < 1e-12


def test_embeddings_separate_planted_blocks(spark, tmp_path):
    edges, labels = planted_partition()
    out = tmp_path / "run"
    assert main(["run", "--edges", write_csv(tmp_path / "pp.csv", edges), "--output", str(out),
                 "--walk-length", "10", "--num-walks", "10", "--p", "1", "--q", "0.5",
                 "--dim", "16", "--window", "5", "--epochs", "3", "--seed", "1"]) == 0
    table = pq.read_table(str(out / "embeddings")).to_pydict()
    assert sorted(table["id"]) == sorted(labels), "one embedding per node"
    assert pq.read_table(str(out / "_update" / "edges")).num_rows == len(edges)
    assert not (out / "_update" / "model").exists(), "MLlib's model cannot warm start"
    rows = [(i, float(labels[i]), e, int(i[1:]) % 2) for i, e in zip(table["id"], table["embedding"])]
    df = spark.createDataFrame(rows, "id string, label double, embedding array<float>, half int")
    df = df.withColumn("features", array_to_vector("embedding"))
    model = LogisticRegression(maxIter=200).fit(df.where("half = 0"))
    test = model.transform(df.where("half = 1")).select("label", "prediction").collect()
    f1 = macro_f1([r.label for r in test], [r.prediction for r in test])
    print(f"planted partition macro-F1 {f1:.3f} (chance 0.25)")
    assert f1 > 0.8
