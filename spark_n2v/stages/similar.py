"""`spark-n2v similar`: cosine nearest neighbours of every node, exact (blocked) or approximate
(random-hyperplane LSH), the approximate search's recall measured against exact on a sample.

Exact: the queries are dealt into Q blocks and the candidates into G groups (by a hash of the id,
so the answer does not depend on how the table is partitioned); task (q, g) holds one query block
and one candidate group, scores them by matrix products in slices that keep the score matrix near
64 MB, and keeps each query's k best; a final window keeps the k best of the G partial lists. No
V x V matrix exists anywhere, and nothing graph-sized goes through the driver.

Approximate: each of `tables` hash tables signs every vector against `bits` random hyperplanes
(Charikar's SimHash: two vectors share a bit with probability 1 - angle / pi); nodes that share a
bucket in any table are candidates, scored exactly. Buckets larger than `max_bucket` are cut into
pieces (by a hash of the id), which bounds the quadratic work per bucket at some cost in recall.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_n2v import columns as C
from spark_n2v import streams
from spark_n2v.config import SimilarConfig
from spark_n2v.errors import UserError
from spark_n2v.io.tables import read_embeddings, read_ids
from spark_n2v.progress import describe
from spark_n2v.stages.stage import EMBEDDINGS_INPUT, Context, Stage

log = logging.getLogger(__name__)

GROUP_BYTES = 256 << 20   # candidate vectors one exact task holds
QUERY_BYTES = 64 << 20    # query vectors one exact task holds
SCORE_CELLS = 1 << 24     # query x candidate scores computed at once (64 MB of float32)


def neighbor_schema(id_type: T.DataType) -> T.StructType:
    return T.StructType([T.StructField(C.ID, id_type), T.StructField(C.NEIGHBOR, id_type),
                         T.StructField(C.SIMILARITY, T.FloatType())])


def _unit(vectors: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """(n, dim) float32 rows scaled to length 1 (zero vectors stay zero: similarity 0)."""
    flat = pc.list_flatten(vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray)
                           else vectors)
    x = flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _top_k(queries: pa.Table, candidates: pa.Table, k: int, dim: int) -> pa.Table:
    """Each query's k most similar candidates (itself excluded), as (id, neighbor, similarity)."""
    q_ids, c_ids = queries.column(C.ID), candidates.column(C.ID)
    if len(q_ids) == 0 or len(c_ids) == 0:
        return pa.table({C.ID: q_ids.slice(0, 0), C.NEIGHBOR: c_ids.slice(0, 0),
                         C.SIMILARITY: pa.array([], pa.float32())})
    Q, X = _unit(queries.column(C.EMBEDDING), dim), _unit(candidates.column(C.EMBEDDING), dim)
    self_at = pc.fill_null(pc.index_in(q_ids, value_set=c_ids.combine_chunks()), -1).to_numpy()
    keep = min(k, len(c_ids))
    step = max(1, SCORE_CELLS // len(c_ids))
    rows, cols, sims = [], [], []
    for a in range(0, len(Q), step):
        S = Q[a:a + step] @ X.T
        own = np.flatnonzero(self_at[a:a + step] >= 0)
        S[own, self_at[a:a + step][own]] = -np.inf
        best = np.argpartition(-S, keep - 1, axis=1)[:, :keep] if keep < S.shape[1] else \
            np.broadcast_to(np.arange(S.shape[1]), S.shape)
        score = np.take_along_axis(S, best, axis=1)
        valid = np.isfinite(score)
        rows.append(np.nonzero(valid)[0] + a)
        cols.append(best[valid])
        sims.append(score[valid])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return pa.table({C.ID: q_ids.take(pa.array(rows)), C.NEIGHBOR: c_ids.take(pa.array(cols)),
                     C.SIMILARITY: pa.array(np.concatenate(sims).astype(np.float32))})


def rank_top_k(pairs: DataFrame, k: int) -> DataFrame:
    """(id, neighbor, similarity) candidates -> each id's k best with rank 1..k; ties by neighbor."""
    order = Window.partitionBy(C.ID).orderBy(F.col(C.SIMILARITY).desc(), F.col(C.NEIGHBOR))
    return (pairs.withColumn(C.RANK, F.row_number().over(order))
            .where(F.col(C.RANK) <= k))


def exact_neighbors(embeddings: DataFrame, k: int, dim: int, queries: DataFrame | None = None,
                    parallelism: int = 2) -> DataFrame:
    """(id, neighbor, similarity, rank): every query's k nearest by cosine among all nodes.
    `queries` (id, embedding) defaults to every node."""
    queries = embeddings if queries is None else queries
    nodes, asked = embeddings.count(), queries.count()
    groups = max(1, math.ceil(nodes * dim * 4 / GROUP_BYTES))
    blocks = max(math.ceil(asked * dim * 4 / QUERY_BYTES), math.ceil(parallelism / groups))
    key = F.col("q") * groups + F.col("g")
    cands = (embeddings.select(C.ID, C.EMBEDDING,
                               F.pmod(streams.column_hash(streams.SIMILAR_GROUP, C.ID), groups).alias("g"))
             .withColumn("q", F.explode(F.sequence(F.lit(0), F.lit(blocks - 1))))
             # new names: the queries may be a subset of the same table, and cogrouping a table
             # with itself under the same column names is an ambiguous self-join to Spark
             .select(key.alias("key"), F.col(C.ID).alias("c_id"), F.col(C.EMBEDDING).alias("c_vec")))
    qs = (queries.select(C.ID, C.EMBEDDING,
                         F.pmod(streams.column_hash(streams.SIMILAR_QUERY, C.ID), blocks).alias("q"))
          .withColumn("g", F.explode(F.sequence(F.lit(0), F.lit(groups - 1))))
          .select(key.alias("key"), C.ID, C.EMBEDDING))
    schema = neighbor_schema(embeddings.schema[C.ID].dataType)
    pairs = (qs.groupBy("key").cogroup(cands.groupBy("key"))
             .applyInArrow(lambda q, c: _top_k(q, c.rename_columns(["key", C.ID, C.EMBEDDING]),
                                               k, dim), schema))
    return rank_top_k(pairs, k)


def _hyperplanes(seed: int, tables: int, bits: int, dim: int) -> np.ndarray:
    generator = streams.hyperplane_generator(seed)
    return generator.standard_normal((tables, bits, dim)).astype(np.float32)


def _codes(seed: int, tables: int, bits: int, dim: int, batches):
    planes = _hyperplanes(seed, tables, bits, dim)
    weights = (1 << np.arange(bits, dtype=np.int64))
    for batch in batches:
        X = _unit(batch.column(C.EMBEDDING), dim)
        signs = np.einsum("nd,tbd->ntb", X, planes) > 0          # (n, tables, bits)
        codes = (signs * weights).sum(axis=2)                     # (n, tables)
        n = len(X)
        repeat = pa.array(np.repeat(np.arange(n), tables))
        yield pa.RecordBatch.from_arrays([
            pa.array(np.tile(np.arange(tables, dtype=np.int32), n)),
            pa.array(codes.ravel()),
            batch.column(C.ID).take(repeat), batch.column(C.EMBEDDING).take(repeat)],
            names=["table", "code", C.ID, C.EMBEDDING])


def _bucket_top_k(bucket: pa.Table, k: int, dim: int, max_bucket: int) -> pa.Table:
    """All pairs within an LSH bucket (or within its pieces, when it is larger than max_bucket)."""
    if bucket.num_rows <= max_bucket:
        return _top_k(bucket, bucket, k, dim)
    order = np.argsort(bucket.column("piece").to_numpy(), kind="stable")
    bucket = bucket.take(pa.array(order))
    parts = [bucket.slice(a, max_bucket) for a in range(0, bucket.num_rows, max_bucket)]
    return pa.concat_tables([_top_k(p, p, k, dim) for p in parts])


def approx_neighbors(embeddings: DataFrame, k: int, dim: int, tables: int, bits: int, seed: int,
                     max_bucket: int) -> DataFrame:
    """(id, neighbor, similarity, rank): the k best among each node's LSH candidates."""
    id_type = embeddings.schema[C.ID].dataType
    coded = embeddings.select(C.ID, C.EMBEDDING).mapInArrow(
        lambda it: _codes(seed, tables, bits, dim, it),
        T.StructType([T.StructField("table", T.IntegerType()), T.StructField("code", T.LongType()),
                      T.StructField(C.ID, id_type),
                      T.StructField(C.EMBEDDING, T.ArrayType(T.FloatType()))]))
    coded = coded.withColumn("piece", streams.column_hash(streams.SIMILAR_PIECE, C.ID))
    pairs = (coded.groupBy("table", "code")
             .applyInArrow(lambda t: _bucket_top_k(t, k, dim, max_bucket), neighbor_schema(id_type))
             .dropDuplicates([C.ID, C.NEIGHBOR]))
    return rank_top_k(pairs, k)


def recall_at_k(approx: DataFrame, exact: DataFrame) -> float:
    """Mean over the exact table's queries of |approx top-k & exact top-k| / |exact top-k|."""
    found = exact.join(approx.select(C.ID, C.NEIGHBOR), [C.ID, C.NEIGHBOR], "left_semi").count()
    total = exact.count()
    return found / total if total else float("nan")


def auto_bits(nodes: int, bucket: int = 1024) -> int:
    """Bits per table so that a bucket holds about `bucket` nodes on average. Measured on 20k
    sgns embeddings (d = 128), 16 tables: recall@10 0.95 at 4 bits (~1250 per bucket), 0.87 at
    5; 8 tables of 8 bits (~80 per bucket) found 0.24."""
    return max(1, min(62, round(math.log2(max(nodes / bucket, 1)))))


def recall_sample(queries: DataFrame, size: int, seed: int) -> DataFrame:
    """A seeded pseudo-random sample of `size` query ids, whatever the partitioning."""
    order = streams.column_hash(streams.SIMILAR_RECALL, C.ID, seed=seed)
    return queries.select(C.ID).orderBy(order, C.ID).limit(size)


def approx_recall(embeddings: DataFrame, written: DataFrame, queries: DataFrame, k: int, dim: int,
                  size: int, seed: int, parallelism: int) -> tuple[float, int]:
    """(recall@k of the approximate neighbours `written` against exact, queries sampled): queries
    that approx found nothing for count as recall 0."""
    sample = recall_sample(queries, size, seed)
    exact = exact_neighbors(embeddings, k, dim, embeddings.join(sample, C.ID, "left_semi"),
                            parallelism)
    return recall_at_k(written, exact), sample.count()


# --- the stage ----------------------------------------------------------------------------------

def _run(ctx: Context) -> None:
    """embeddings -> neighbours table (id, neighbor, similarity, rank)."""
    spark, cfg, record = ctx.spark, ctx.configs["similar"], ctx.record
    with record.timed("similar"):
        describe(spark, "spark-n2v similar: check embeddings")
        emb, nodes, dim = read_embeddings(spark, ctx.inputs["embeddings"])
        queries = None if not cfg.ids else _known_queries(ctx, emb)
        parallelism = spark.sparkContext.defaultParallelism
        describe(spark, f"spark-n2v similar: {cfg.method} top {cfg.top_k}")
        if cfg.method == "exact":
            neighbours = exact_neighbors(emb, cfg.top_k, dim, queries, parallelism)
        else:
            bits = cfg.lsh_bits or auto_bits(nodes)
            record.counts["lsh_bits"] = bits
            neighbours = approx_neighbors(emb, cfg.top_k, dim, cfg.lsh_tables, bits, cfg.seed,
                                          cfg.max_bucket)
            if queries is not None:
                neighbours = neighbours.join(queries.select(C.ID), C.ID, "left_semi")
        neighbours.write.mode("overwrite").parquet(ctx.out.staging)
        written = spark.read.parquet(ctx.out.staging)
        record.counts["nodes"] = nodes
        record.counts["rows"] = written.count()
        if cfg.method == "approx" and cfg.recall_sample > 0:
            describe(spark, "spark-n2v similar: recall against exact")
            recall, sampled = approx_recall(emb, written, emb if queries is None else queries,
                                            cfg.top_k, dim, cfg.recall_sample, cfg.seed,
                                            parallelism)
            record.counts["recall_sample"] = sampled
            record.quality["recall_at_k"] = round(recall, 4)
            log.info("similar: approx recall@%d %.4f against exact on %d sampled queries",
                     cfg.top_k, recall, sampled)
    log.info("similar: %s rows in %.1f s", f"{record.counts['rows']:,}", record.seconds["similar"])


def _known_queries(ctx: Context, emb: DataFrame) -> DataFrame:
    """The embeddings of the ids in the --ids file; unknown ids are counted and logged."""
    cfg: SimilarConfig = ctx.configs["similar"]
    ids = read_ids(ctx.spark, cfg.ids, emb.schema[C.ID].dataType, "similar.ids")
    queries = emb.join(ids, C.ID, "left_semi")
    asked, known = ids.count(), queries.count()
    ctx.record.counts["ids_unknown"] = asked - known
    if known == 0:
        raise UserError("{similar.ids} {path}: none of its {asked} ids has an embedding",
                        path=cfg.ids, asked=asked)
    if asked > known:
        log.warning("similar: %d of the %d ids in %s have no embedding and are skipped",
                    asked - known, asked, cfg.ids)
    return queries


STAGE = Stage("similar", "embeddings -> neighbours table (id, neighbor, similarity, rank): the "
              "top-k nodes by cosine similarity, self excluded", _run, configs=("similar",),
              inputs=(EMBEDDINGS_INPUT,))
