"""`spark-n2v tune`: one result per (p, q), the best pair is the best score, the heat map exists."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from spark_n2v.cli import main
from tests.helpers import fails, planted_partition, write_csv


def test_tune_grid(spark, tmp_path):
    edges, labels = planted_partition(seed=4)
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("id,label\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    out = tmp_path / "tune"
    assert main(["tune", "--edges", write_csv(tmp_path / "pp.csv", edges), "--labels",
                 str(labels_csv), "--output", str(out), "--grid-p", "0.5,2", "--grid-q", "1,4",
                 "--walk-length", "10", "--num-walks", "5", "--dim", "8", "--window", "3"]) == 0
    results = pq.read_table(str(out / "results")).to_pylist()
    assert sorted((r["p"], r["q"]) for r in results) == [(0.5, 1), (0.5, 4), (2, 1), (2, 4)]
    assert all(0 <= r["macro_f1"] <= 1 for r in results)
    best = json.loads((out / "metrics.json").read_text())["best"]
    assert best["macro_f1"] == max(r["macro_f1"] for r in results)
    assert best["macro_f1"] > 0.8, results  # planted blocks separate at any of these (p, q)
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_grid_is_refused(spark, tmp_path, capsys):
    edges = write_csv(tmp_path / "e.csv", [(1, 2, 1)])
    labels = tmp_path / "l.csv"
    labels.write_text("id,label\n1,a\n2,b\n")
    out = str(tmp_path / "out")
    fails(capsys, ["tune", "--edges", edges, "--labels", str(labels), "--output", out,
                   "--grid-p", "1,x"], "--grid-p", "comma-separated numbers")
    fails(capsys, ["tune", "--edges", edges, "--labels", str(labels), "--output", out,
                   "--grid-q", "0,1"], "--grid-q", "numbers > 0")
