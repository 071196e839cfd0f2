"""`spark-n2v tune`: node2vec's advice (try p, q in {0.25, 1, 4} and keep the best), automated: the
graph is prepared once, then walked, embedded and classified for each (p, q) of the grid.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time

import numpy as np
from pyspark.sql import DataFrame

from spark_n2v import columns as C
from spark_n2v.errors import UserError
from spark_n2v.io.edges import EdgeSource
from spark_n2v.io.tables import read_labels, shown
from spark_n2v.progress import describe
from spark_n2v.record import RunRecord
from spark_n2v.stages import classify
from spark_n2v.stages.plot import pyplot
from spark_n2v.stages.stage import LABELS_INPUT, Context, Stage
from spark_n2v.stages.train import train_walks
from spark_n2v.stages.walk import prepare, walk_graph
from spark_n2v.walk.engines import PreparedGraph

log = logging.getLogger(__name__)


def best_point(results: list[dict]) -> dict:
    """The best (p, q): highest macro-F1, then micro-F1, then the smaller p and q."""
    return max(results, key=lambda r: (r["macro_f1"], r["micro_f1"], -r["p"], -r["q"]))


def heatmap(path: str, ps, qs, scores: dict, best: dict) -> None:
    """tune's picture: macro-F1 over the (p, q) grid, the best cell outlined."""
    plt = pyplot()
    grid = np.array([[scores[(p, q)] for q in qs] for p in ps])
    fig, ax = plt.subplots(figsize=(1.2 * len(qs) + 3, 1.0 * len(ps) + 2), dpi=100)
    image = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto")
    ax.set_xticks(range(len(qs)), [f"{q:g}" for q in qs])
    ax.set_yticks(range(len(ps)), [f"{p:g}" for p in ps])
    ax.set_xlabel("q (in-out)")
    ax.set_ylabel("p (return)")
    for i in range(len(ps)):
        for j in range(len(qs)):
            ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center",
                    color="white" if grid[i, j] < grid.mean() else "black", fontsize=9)
    bi, bj = list(ps).index(best["p"]), list(qs).index(best["q"])
    ax.add_patch(plt.Rectangle((bj - 0.5, bi - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
    fig.colorbar(image, ax=ax, label="macro-F1")
    ax.set_title(f"best: p = {best['p']:g}, q = {best['q']:g}, macro-F1 {best['macro_f1']:.3f}")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


# --- the stage ----------------------------------------------------------------------------------

def _run(ctx: Context) -> None:
    """edges + labels -> DIR/results, DIR/heatmap.png and DIR/metrics.json."""
    spark, cfg, record, out = ctx.spark, ctx.configs["tune"], ctx.record, ctx.out
    labels_input = ctx.inputs["labels"]
    started = time.perf_counter()  # reading the edges and labels counts as preparing
    with record.timed("tune"):
        pyplot()  # the heat map needs matplotlib: fail before the work, not after
        describe(spark, "spark-n2v tune: read edges and labels")
        table = ctx.edges.read(spark)
        labels = read_labels(spark, labels_input, table.edges.schema[C.SRC].dataType).cache()
        if labels.select(C.LABEL).distinct().count() < 2:
            raise UserError("{labels} {path}: classification needs at least 2 labels",
                            path=shown(labels_input))
        graph = prepare(spark, EdgeSource(ctx.edges.cfg, table=table), ctx.configs["walk"],
                        out.work, record, since=started)
        try:
            results = [_grid_point(ctx, graph, labels, p, q) for p in cfg.ps for q in cfg.qs]
        finally:
            graph.release()
        spark.createDataFrame(results, "p double, q double, macro_f1 double, micro_f1 double, "
                              "seconds double").coalesce(1).write.mode("overwrite") \
            .parquet(out.sub("results"))
        best = best_point(results)
        with tempfile.TemporaryDirectory() as tmp:
            picture = os.path.join(tmp, "heatmap.png")
            heatmap(picture, cfg.ps, cfg.qs,
                    {(r["p"], r["q"]): r["macro_f1"] for r in results}, best)
            out.put_file(picture, "heatmap.png")
        out.write_json("metrics.json", {"best": best, "grid": results})
    record.quality["best"] = {k: best[k] for k in ("p", "q", "macro_f1")}
    log.info("tune: best p %g, q %g: macro-F1 %.4f", best["p"], best["q"], best["macro_f1"])


def _grid_point(ctx: Context, graph: PreparedGraph, labels: DataFrame, p: float, q: float
                ) -> dict:
    """Walk, embed and classify at one (p, q): its scores and seconds."""
    spark, cfg = ctx.spark, ctx.configs["tune"]
    walk_cfg = dataclasses.replace(ctx.configs["walk"], return_p=p, inout_q=q)
    point = RunRecord(command="")
    folder = f"{ctx.out.work}/p{p}-q{q}"
    with point.timed("point"):
        walk_graph(spark, graph, walk_cfg, f"{folder}/walks", f"{folder}/walk", point)
        train_walks(spark, f"{folder}/walks", ctx.configs["train"], f"{folder}/embeddings",
                    f"{folder}/train", point)
        emb = spark.read.parquet(f"{folder}/embeddings")
        data = classify.split_nodes(labels, emb, cfg.train_fraction, walk_cfg.seed)
        scores = classify.f1_metrics(classify.predict(data), data.classes)
    log.info("tune: p %g, q %g: macro-F1 %.4f, micro-F1 %.4f (%.1f s)", p, q,
             scores["macro_f1"], scores["micro_f1"], point.seconds["point"])
    return {"p": p, "q": q, "macro_f1": scores["macro_f1"], "micro_f1": scores["micro_f1"],
            "seconds": point.seconds["point"]}


STAGE = Stage("tune", "edges + labels -> DIR/results (p, q, macro_f1, ...), DIR/metrics.json (the "
              "best pair) and DIR/heatmap.png: walk, train and classify for every (p, q) of the "
              "grid", _run, configs=("input", "walk", "train", "tune"),
              inputs=(LABELS_INPUT,))
