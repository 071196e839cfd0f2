"""`spark-n2v linkpred`: the held-out split keeps an edge at every node, ROC AUC and average
precision equal scikit-learn's, a planted-partition graph's links are predicted well, and bad
input is refused with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from spark_n2v.cli import main
from spark_n2v.stages import linkpred
from tests.helpers import fails, planted_partition, write_csv


def test_ranking_metrics_equal_scikit_learn(spark):
    rng = np.random.default_rng(0)
    labels = (rng.random(300) < 0.4).astype(float)
    scores = rng.random(300) + 0.3 * labels  # informative, no ties
    df = spark.createDataFrame([(int(i), int(i) + 1, float(y), float(s))
                                for i, (y, s) in enumerate(zip(labels, scores))],
                               "u long, v long, label double, score double")
    got = linkpred.ranking_metrics(df, 2)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert got["average_precision"] == pytest.approx(average_precision_score(labels, scores),
                                                     abs=1e-12)
    assert (got["positives"], got["negatives"]) == (int(labels.sum()), int(300 - labels.sum()))


def test_split_keeps_an_edge_at_every_node(spark):
    edges, _ = planted_partition(seed=2)
    df = spark.createDataFrame([(a, b, 1.0) for a, b, _ in edges] + [("v0", "v0", 1.0)],
                               "src string, dst string, weight double")
    split = linkpred.split_edges(df, directed=False, test_fraction=0.3, seed=5)
    train = {tuple(sorted((r.src, r.dst))) for r in split.train.collect()}
    test = {(r.u, r.v) for r in split.test.collect()}
    nodes = {n for a, b, _ in edges for n in (a, b)}
    assert not train & test
    assert train | test == {tuple(sorted((a, b))) for a, b, _ in edges}  # self-loop dropped
    assert {n for e in train for n in e} == nodes
    assert abs(len(test) - 0.3 * len(edges)) < 0.05 * len(edges), (len(test), len(edges))
    again = linkpred.split_edges(df, directed=False, test_fraction=0.3, seed=5)
    assert {(r.u, r.v) for r in again.test.collect()} == test


def test_linkpred_on_a_planted_partition(spark, tmp_path):
    edges, _ = planted_partition(seed=3)
    out = tmp_path / "lp"
    assert main(["linkpred", "--edges", write_csv(tmp_path / "pp.csv", edges), "--output",
                 str(out), "--walk-length", "20", "--num-walks", "10", "--dim", "16",
                 "--window", "5", "--trainer", "sgns", "--epochs", "3"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    counts = metrics["counts"]
    print(f"linkpred ROC AUC {metrics['roc_auc']:.4f}, AP {metrics['average_precision']:.4f}")
    assert counts["edges"] == len(edges)
    assert counts["held_out"] > 0 and counts["pairs_without_embedding"] == 0
    assert counts["test_pairs"] == 2 * counts["held_out"]
    # chance is 0.5. Knowing the blocks alone gives about 0.83: 90% of edges are within a block
    # but so are 25% of the uniform non-edges, which no block-level signal can tell from edges
    assert metrics["roc_auc"] > 0.7 and metrics["average_precision"] > 0.65, metrics
    assert sorted(p.name for p in out.iterdir()) == ["_run.json", "metrics.json"]


def test_bad_linkpred_input_is_refused(spark, tmp_path, capsys):
    star = write_csv(tmp_path / "star.csv", [(0, k, 1) for k in range(1, 6)])
    out = str(tmp_path / "out")
    # a star: every edge is some leaf's only edge, so none can be held out
    fails(capsys, ["linkpred", "--edges", star, "--output", out, "--test-fraction", "0.5"],
          "--test-fraction", "every node keeps one")
    fails(capsys, ["linkpred", "--edges", star, "--output", out], "--test-fraction 0.1 of 5 edges",
          "holds out no edge")
    fails(capsys, ["linkpred", "--edges", star, "--output", out, "--test-fraction", "0"],
          "--test-fraction", "between 0 and 1")
