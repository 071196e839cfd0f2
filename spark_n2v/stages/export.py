"""`spark-n2v export`: the embeddings as text for other tools, or into Redis for online serving.

- word2vec text format: a "nodes dim" line, then "id v1 ... vd" per node (gensim's
  KeyedVectors.load_word2vec_format reads it).
- TensorFlow Embedding Projector: vectors.tsv (one vector per line, tab-separated) and
  metadata.tsv (the id, or a header "id<TAB>label" and both), lines in the same order.

- Redis: one key per node, its vector as float32 bytes (io/keyvalue.py); the output folder holds
  the run's `_run.json` with the keys written and the stale keys deleted.

Text files are written by Spark (one task, rows sorted by id) and moved into place, so a table
larger than the driver's memory still exports.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.config import ExportConfig
from spark_n2v.errors import UserError
from spark_n2v.io import keyvalue
from spark_n2v.io.tables import read_embeddings, read_labels
from spark_n2v.progress import describe
from spark_n2v.stages.stage import EMBEDDINGS_INPUT, Context, Stage

log = logging.getLogger(__name__)


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


def _refuse_ids(embeddings: DataFrame, pattern: str, what: str, fmt: str, advice: str) -> None:
    """A text format has no quoting: ids its separators would split are refused, not mangled."""
    bad = embeddings.where(F.col(C.ID).cast("string").rlike(pattern)).select(C.ID).first()
    if bad is not None:
        raise UserError("{export.format=" + fmt + "}: id {id!r} contains " + what + ", which this "
                        "text format cannot hold; " + advice, id=bad[0])


def word2vec_lines(embeddings: DataFrame, nodes: int, dim: int) -> DataFrame:
    """The word2vec text format. Ids with whitespace would break it: refused."""
    _refuse_ids(embeddings, r"\s", "whitespace", "word2vec", "use {export.format=projector}")
    return _lines(embeddings, F.concat_ws(" ", F.col(C.ID).cast("string"), _vector_text(" ")),
                  f"{nodes} {dim}")


def projector_lines(embeddings: DataFrame, labels: DataFrame | None) -> tuple[DataFrame, DataFrame]:
    """(vectors.tsv lines, metadata.tsv lines), both in id order. A node's labels are joined by
    commas; a node without a label gets an empty one. Ids with tabs or line breaks would break
    the lines: refused."""
    _refuse_ids(embeddings, r"[\t\r\n]", "a tab or a line break", "projector",
                "read the embeddings table (Parquet) instead")
    if labels is None:  # one column: no header (the projector's convention)
        return (_lines(embeddings, _vector_text("\t")),
                _lines(embeddings, F.col(C.ID).cast("string")))
    joined = labels.groupBy(C.ID).agg(
        F.array_join(F.array_sort(F.collect_set(C.LABEL)), ",").alias(C.LABEL))
    rows = embeddings.join(joined, C.ID, "left").fillna({C.LABEL: ""})
    return (_lines(rows, _vector_text("\t")),
            _lines(rows, F.concat_ws("\t", F.col(C.ID).cast("string"), C.LABEL),
                   f"{C.ID}\t{C.LABEL}"))


# --- the stage ----------------------------------------------------------------------------------

def _to_redis(emb: DataFrame, cfg, dim: int) -> dict[str, int]:
    written = keyvalue.write_embeddings(emb, cfg.redis_url, cfg.prefix, cfg.ttl, dim)
    describe(emb.sparkSession, "spark-n2v export: redis, stale keys")
    return {"keys_written": written,
            "keys_deleted": keyvalue.delete_stale(emb, cfg.redis_url, cfg.prefix)}


def _run(ctx: Context) -> None:
    """embeddings -> vectors.tsv + metadata.tsv, embeddings.txt, or Redis keys."""
    spark, cfg, record, out = ctx.spark, ctx.configs["export"], ctx.record, ctx.out
    if cfg.format != "redis" and (cfg.redis_url or cfg.ttl is not None
                                  or cfg.prefix != ExportConfig.prefix):
        raise UserError("{export.redis_url}, {export.ttl} and {export.prefix} are for "
                        "{export.format=redis}; add it, or leave them out")
    if cfg.format == "redis":
        if not cfg.redis_url:
            raise UserError("{export.format=redis} needs {export.redis_url}: the server's URL, "
                            "redis://HOST:PORT/DB (a password goes after the scheme: :PASSWORD@)")
        keyvalue.check_server(cfg.redis_url)
    with record.timed("export"):
        describe(spark, f"spark-n2v export: {cfg.format}")
        emb, nodes, dim = read_embeddings(spark, ctx.inputs["embeddings"])
        if cfg.format == "redis":
            record.counts.update(_to_redis(emb, cfg, dim))
        elif cfg.format == "word2vec":
            out.write_text("embeddings.txt", word2vec_lines(emb, nodes, dim))
        else:
            labels = read_labels(spark, cfg.labels, emb.schema[C.ID].dataType, "export.labels") \
                if cfg.labels else None
            vectors, metadata = projector_lines(emb, labels)
            out.write_text("vectors.tsv", vectors)
            out.write_text("metadata.tsv", metadata)
    record.counts.update({"nodes": nodes, "dim": dim})
    log.info("export: %s vectors of %d dimensions (%s) in %.1f s", f"{nodes:,}", dim, cfg.format,
             record.seconds["export"])


STAGE = Stage("export", "embeddings -> DIR/vectors.tsv + DIR/metadata.tsv (TensorFlow Embedding "
              "Projector), DIR/embeddings.txt (word2vec text format), or Redis keys (one a node, "
              "float32 bytes; DIR holds the run's record)", _run,
              configs=("export",), inputs=(EMBEDDINGS_INPUT,))
