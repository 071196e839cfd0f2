"""`spark-n2v classify`: F1 against a hand computation, macro-F1 within 0.05 of scikit-learn on
the same split of a planted-partition graph, a stratified seeded split, multi-label one-vs-rest,
labelled nodes without an embedding reported, and bad input refused with one line."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from spark_n2v.cli import main
from spark_n2v.stages import classify
from tests.helpers import fails, planted_partition, write_csv


def test_f1_metrics_match_a_hand_computation(spark):
    # true a a b b c, predicted a b b b a (test rows) plus a train row that must not count:
    # a: tp 1, support 2, predicted 2 -> P 1/2, R 1/2, F1 1/2; b: tp 2, support 2, predicted 3 ->
    # P 2/3, R 1, F1 4/5; c: tp 0 -> 0. macro (1/2 + 4/5 + 0) / 3; micro = accuracy = 3/5
    rows = [(["a"], ["a"], "test"), (["a"], ["b"], "test"), (["b"], ["b"], "test"),
            (["b"], ["b"], "test"), (["c"], ["a"], "test"), (["c"], ["c"], "train")]
    df = spark.createDataFrame(rows, "labels array<string>, predicted array<string>, split string")
    m = classify.f1_metrics(df, ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["micro_f1"] == pytest.approx(0.6) and m["accuracy"] == pytest.approx(0.6)
    assert m["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8,
                                                 "support": 2})


@pytest.fixture(scope="module")
def planted(spark, tmp_path_factory):
    """Embeddings of a 4-block planted partition (blocks overlap enough that F1 < 1), labels."""
    tmp = tmp_path_factory.mktemp("classify")
    edges, labels = planted_partition(seed=1, p_in=0.2, p_out=0.03)
    out = tmp / "run"
    assert main(["run", "--edges", write_csv(tmp / "pp.csv", edges), "--output", str(out),
                 "--walk-length", "20", "--num-walks", "10", "--dim", "16", "--window", "5",
                 "--trainer", "sgns", "--epochs", "3", "--learning-rate", "0.05"]) == 0
    labels_csv = tmp / "labels.csv"
    labels_csv.write_text("id,label\n" + "".join(f"{k},block{v}\n" for k, v in labels.items()))
    return str(out / "embeddings"), str(labels_csv), labels


def test_classify_matches_scikit_learn_on_the_same_split(spark, planted, tmp_path):
    embeddings, labels_csv, labels = planted
    out = tmp_path / "cls"
    assert main(["classify", "--embeddings", embeddings, "--labels", labels_csv, "--output",
                 str(out), "--seed", "7"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    predictions = pq.read_table(str(out / "predictions")).to_pydict()
    assert sorted(predictions) == ["id", "label", "prediction", "split"]
    split = dict(zip(predictions["id"], predictions["split"]))
    assert sorted(split) == sorted(labels)
    # stratified: each block of 30 nodes trains 15
    for block in range(4):
        assert sum(split[k] == "train" for k, v in labels.items() if v == block) == 15
    table = pq.read_table(embeddings).to_pydict()
    vectors = dict(zip(table["id"], table["embedding"]))
    train = [k for k in labels if split[k] == "train"]
    test = [k for k in labels if split[k] == "test"]
    # the same model: MLlib's default logistic regression has no penalty
    model = LogisticRegression(C=np.inf, max_iter=5000).fit([vectors[k] for k in train],
                                                            [labels[k] for k in train])
    sk_f1 = f1_score([labels[k] for k in test], model.predict([vectors[k] for k in test]),
                     average="macro")
    print(f"classify macro-F1 {metrics['macro_f1']:.4f}, scikit-learn {sk_f1:.4f}")
    assert metrics["macro_f1"] > 0.7, metrics
    assert abs(metrics["macro_f1"] - sk_f1) <= 0.05, (metrics["macro_f1"], sk_f1)
    assert metrics["counts"] == {"train": 60, "test": 60, "classes": 4,
                                 "labelled_without_embedding": 0}
    # the same seed gives the same split; another seed another one
    again = tmp_path / "again"
    assert main(["classify", "--embeddings", embeddings, "--labels", labels_csv, "--output",
                 str(again), "--seed", "7"]) == 0
    other = tmp_path / "other"
    assert main(["classify", "--embeddings", embeddings, "--labels", labels_csv, "--output",
                 str(other), "--seed", "8"]) == 0
    def splits(path):
        t = pq.read_table(str(path / "predictions")).to_pydict()
        return dict(zip(t["id"], t["split"]))
    assert splits(again) == split and splits(other) != split


def test_multi_label_one_vs_rest_and_missing_embeddings(spark, tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=(n, 4)).astype(np.float32)
    emb = tmp_path / "emb"
    emb.mkdir()
    pq.write_table(pa.table({"id": list(range(n)), "embedding": [v.tolist() for v in x]}),
                   str(emb / "p.parquet"))
    # label "pos0" when x0 > 0, "pos1" when x1 > 0, "none" when neither: 0 to 2 labels per node
    rows = [(i, f"pos{d}") for i in range(n) for d in (0, 1) if x[i, d] > 0]
    rows += [(i, "none") for i in range(n) if x[i, 0] <= 0 and x[i, 1] <= 0]
    rows += [(n + 5, "pos0")]  # labelled, no embedding
    pq.write_table(pa.table({"id": [r[0] for r in rows], "label": [r[1] for r in rows]}),
                   str(tmp_path / "labels.parquet"))
    out = tmp_path / "cls"
    assert main(["classify", "--embeddings", str(emb), "--labels",
                 str(tmp_path / "labels.parquet"), "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["multi_label"] is True
    assert metrics["counts"]["labelled_without_embedding"] == 1
    t = pq.read_table(str(out / "predictions")).to_pydict()
    assert all(len(p) == len(lab) for p, lab in zip(t["prediction"], t["label"]))
    assert metrics["micro_f1"] > 0.85, metrics  # linearly separable labels


def test_bad_classify_input_is_refused(spark, planted, tmp_path, capsys):
    embeddings, labels_csv, _ = planted
    out = str(tmp_path / "out")
    base = ["classify", "--embeddings", embeddings, "--output", out]
    fails(capsys, base + ["--labels", labels_csv, "--train-fraction", "1.5"], "--train-fraction")
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("id,class\nv1,a\n")
    fails(capsys, base + ["--labels", str(no_label)], "--labels", "no column 'label'")
    one = tmp_path / "one.csv"
    one.write_text("id,label\nv1,a\nv2,a\n")
    fails(capsys, base + ["--labels", str(one)], "--labels", "at least 2 labels")
    fails(capsys, base + ["--labels", str(tmp_path / "none.csv")], "--labels", "no such file")
