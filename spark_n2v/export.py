"""Pictures and exports of an embeddings table.

- word2vec text format: a "nodes dim" line, then "id v1 ... vd" per node (gensim's
  KeyedVectors.load_word2vec_format reads it).
- TensorFlow Embedding Projector: vectors.tsv (one vector per line, tab-separated) and
  metadata.tsv (the id, or a header "id<TAB>label" and both), lines in the same order.
- plot: the embeddings projected on their first two principal components (MLlib PCA, fitted on
  every node), a seeded sample of at most `max_points` drawn, coloured by label. The picture is
  the one thing collected to the driver: the sample, never the table.

Text files are written by Spark (one task, rows sorted by id) and moved into place, so a table
larger than the driver's memory still exports.
"""

from __future__ import annotations

from pyspark.ml.feature import PCA
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.errors import UserError

def _vector_text(sep: str) -> F.Column:
    """The embedding as text, floats in Java's shortest round-trip form."""
    return F.array_join(F.transform(C.EMBEDDING, lambda x: x.cast("string")), sep)


def _lines(rows: DataFrame, value: F.Column, header: str | None = None) -> DataFrame:
    """One `value` column: the header line (if any), then one line per row in id order
    (numerically for integer ids)."""
    body = rows.select(F.lit(1).alias("part"), F.col(C.ID).alias("key"), value.alias("value"))
    if header is not None:
        first = rows.sparkSession.range(1).select(
            F.lit(0).alias("part"), F.lit(None).cast(rows.schema[C.ID].dataType).alias("key"),
            F.lit(header).alias("value"))
        body = first.unionByName(body)
    return body.orderBy("part", "key").select("value")


def word2vec_lines(embeddings: DataFrame, nodes: int, dim: int) -> DataFrame:
    """The word2vec text format. Ids with whitespace would break it: refused."""
    bad = embeddings.where(F.col(C.ID).cast("string").rlike(r"\s")).select(C.ID).first()
    if bad is not None:
        raise UserError(f"--format word2vec: id {bad[0]!r} contains whitespace, which the word2vec "
                        "text format cannot hold; use --format projector")
    return _lines(embeddings, F.concat_ws(" ", F.col(C.ID).cast("string"), _vector_text(" ")),
                  f"{nodes} {dim}")


def projector_lines(embeddings: DataFrame, labels: DataFrame | None) -> tuple[DataFrame, DataFrame]:
    """(vectors.tsv lines, metadata.tsv lines), both in id order. A node's labels are joined by
    commas; a node without a label gets an empty one."""
    if labels is None:  # one column: no header (the projector's convention)
        return (_lines(embeddings, _vector_text("\t")),
                _lines(embeddings, F.col(C.ID).cast("string")))
    joined = labels.groupBy(C.ID).agg(
        F.array_join(F.array_sort(F.collect_set(C.LABEL)), ",").alias(C.LABEL))
    rows = embeddings.join(joined, C.ID, "left").fillna({C.LABEL: ""})
    return (_lines(rows, _vector_text("\t")),
            _lines(rows, F.concat_ws("\t", F.col(C.ID).cast("string"), C.LABEL),
                   f"{C.ID}\t{C.LABEL}"))


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
    sample = (points.orderBy(F.xxhash64(C.ID, F.lit(seed)), C.ID).limit(max_points)
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


def heatmap(path: str, ps, qs, scores: dict, best: dict) -> None:
    """tune's picture: macro-F1 over the (p, q) grid, the best cell outlined."""
    plt = pyplot()
    import numpy as np
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
