"""`spark-n2v plot`: the embeddings projected on their first two principal components (MLlib
PCA, fitted on every node), a seeded sample of at most `max_points` drawn, coloured by label. The
picture is the one thing collected to the driver: the sample, never the table. Needs matplotlib
(the plot extra), as tune's heat map does.
"""

from __future__ import annotations

import logging
import os
import tempfile

from pyspark.ml.feature import PCA
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v import streams
from spark_n2v.errors import UserError
from spark_n2v.io.tables import read_embeddings, read_labels
from spark_n2v.progress import describe
from spark_n2v.stages.stage import EMBEDDINGS_INPUT, Context, Stage

log = logging.getLogger(__name__)


def projection(embeddings: DataFrame, labels: DataFrame | None, max_points: int, seed: int
               ) -> tuple[list, list, list, list[float]]:
    """(xs, ys, labels, explained variance of the 2 axes) for a seeded sample of the nodes."""
    vectors = embeddings.select(C.ID, array_to_vector(C.EMBEDDING).alias("v"))
    model = PCA(k=2, inputCol="v", outputCol="xy").fit(vectors)
    points = model.transform(vectors).select(C.ID, vector_to_array("xy").alias("xy"))
    if labels is not None:
        first = labels.groupBy(C.ID).agg(F.min(C.LABEL).alias(C.LABEL))
        points = points.join(first, C.ID, "left")
    else:
        points = points.withColumn(C.LABEL, F.lit(None).cast("string"))
    order = streams.column_hash(streams.PLOT_SAMPLE, C.ID, seed=seed)
    sample = (points.orderBy(order, C.ID).limit(max_points)
              .select("xy", C.LABEL).collect())  # at most max_points rows
    return ([r["xy"][0] for r in sample], [r["xy"][1] for r in sample],
            [r[C.LABEL] for r in sample], list(model.explainedVariance.toArray()))


def draw(path: str, xs: list, ys: list, labels: list, title: str, variance: list[float]) -> None:
    """A scatter plot PNG, one colour per label (the 20 most frequent; the rest grey)."""
    plt = pyplot()
    from collections import Counter
    fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    counts = Counter(lab for lab in labels if lab is not None)
    top = [lab for lab, _ in counts.most_common(20)]
    other = [i for i, lab in enumerate(labels) if lab not in top]
    if other:
        ax.scatter([xs[i] for i in other], [ys[i] for i in other], s=4, c="lightgrey",
                   label="other" if counts else None)
    cmap = plt.get_cmap("tab20")
    for k, lab in enumerate(top):
        at = [i for i, x in enumerate(labels) if x == lab]
        ax.scatter([xs[i] for i in at], [ys[i] for i in at], s=6, color=cmap(k % 20), label=lab)
    if top:
        ax.legend(markerscale=3, fontsize=8, loc="best")
    ax.set_xlabel(f"PC1 ({variance[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({variance[1]:.0%} of variance)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def pyplot():
    """matplotlib's pyplot on a file-only backend; an optional extra."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("pictures need matplotlib: pip install 'spark-n2v[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# --- the stage ----------------------------------------------------------------------------------

def _run(ctx: Context) -> None:
    """embeddings -> plot.png."""
    spark, cfg, record, path = ctx.spark, ctx.configs["plot"], ctx.record, ctx.inputs["embeddings"]
    with record.timed("plot"):
        pyplot()  # fail early, before any Spark work, when matplotlib is missing
        describe(spark, "spark-n2v plot: PCA and sample")
        emb, nodes, _ = read_embeddings(spark, path)
        labels = read_labels(spark, cfg.labels, emb.schema[C.ID].dataType, "plot.labels") \
            if cfg.labels else None
        xs, ys, names, variance = projection(emb, labels, cfg.max_points, cfg.seed)
        name = path if isinstance(path, str) else "embeddings"
        title = (f"{name}: {len(xs):,} of {nodes:,} nodes" if len(xs) < nodes
                 else f"{name}: {nodes:,} nodes")
        with tempfile.TemporaryDirectory() as tmp:
            picture = os.path.join(tmp, "plot.png")
            draw(picture, xs, ys, names, title, variance)
            ctx.out.put_file(picture, "plot.png")
    record.counts.update({"nodes": nodes, "drawn": len(xs)})
    log.info("plot: %s of %s nodes drawn in %.1f s", f"{len(xs):,}", f"{nodes:,}",
             record.seconds["plot"])


STAGE = Stage("plot", "embeddings -> DIR/plot.png: the first two principal components, coloured "
              "by label", _run, configs=("plot",),
              inputs=(EMBEDDINGS_INPUT,))
