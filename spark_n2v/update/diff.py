"""What changed between two edge tables, as the walks see it, and which nodes are near it.

Both tables are checked edges (src, dst, weight; io.edges). They are compared as the graph store
prepares them (walk.store): self-loops dropped, duplicate rows merged with their weights summed,
both arcs of an undirected edge; weights only when the graph is weighted. A node is any id of a
row, self-loops included (a node with only a self-loop walks one-node walks).

An arc's change moves the walks through both its ends: a walker at src draws from src's arcs, and
one that came from src weighs its next step by src's arcs (the return and in-out terms). So the
changed nodes are both ends of every added, removed or reweighted arc, and the nodes near a
change are those with a path of at most `radius` arcs to a changed node in the new graph: their
walks may reach the change within that many steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_n2v import columns as C
from spark_n2v.errors import UserError

# Merged weights that differ by less than this (relative) are the same weight: sums of the same
# rows in another order differ in the last bits.
WEIGHT_TOLERANCE = 1e-9


def arcs(edges: DataFrame, directed: bool, weighted: bool) -> DataFrame:
    """Checked edges -> the graph's arcs (src, dst, weight): self-loops dropped, duplicates merged
    (weights summed; 1.0 when unweighted), both arcs of an undirected edge."""
    merged = _edges(edges, directed, weighted, unique=False)
    return merged if directed else both_ways(merged)


def both_ways(rows: DataFrame) -> DataFrame:
    """Rows of undirected edges (src, dst, ...), one per edge -> one per arc: each also reversed."""
    return rows.union(rows.select(F.col(C.DST).alias(C.SRC), F.col(C.SRC).alias(C.DST),
                                  *rows.columns[2:]))


@dataclass(frozen=True)
class DiffCounts:
    """How much changed (edges: undirected edges count once). `_run.json` records these."""

    added_edges: int
    removed_edges: int
    reweighted_edges: int
    new_nodes: int
    vanished_nodes: int
    changed_nodes: int  # ends of added, removed and reweighted edges that are in the new graph

    @property
    def nothing(self) -> bool:
        return not (self.added_edges or self.removed_edges or self.reweighted_edges
                    or self.new_nodes or self.vanished_nodes)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GraphDiff:
    """Two edge tables' differences: arcs (src, dst, change: added, removed, reweighted), nodes
    (id, change: new, vanished), the changed nodes of the new graph (id), and their counts."""

    arcs: DataFrame
    nodes: DataFrame
    changed: DataFrame
    counts: DiffCounts

    def ids(self, change: str) -> DataFrame:
        """The nodes (id) of one kind of change: C.NEW or C.VANISHED."""
        return self.nodes.where(F.col(C.CHANGE) == change).select(C.ID)

    def release(self) -> None:
        """Free the cached changes."""
        self.arcs.unpersist()
        self.nodes.unpersist()


def check_same_ids(old: DataFrame, new: DataFrame) -> None:
    """Both tables' ids must be of one type: an update keeps the previous run's ids."""
    was, now = old.schema[C.SRC].dataType, new.schema[C.SRC].dataType
    if was != now:
        raise UserError("the new edges' node ids are {now} where the previous run's were {was}: "
                        "an update keeps the ids' type; run the whole pipeline again (spark-n2v "
                        "run) instead", now=now.simpleString(), was=was.simpleString())


def _edges(edges: DataFrame, directed: bool, weighted: bool, unique: bool) -> DataFrame:
    """Checked edges -> one row per edge as the store merges them (src, dst, weight): self-loops
    dropped, duplicates merged; an undirected edge once, its smaller id first (its two arcs
    carry the same merged weight, so comparing edges compares arcs at half the rows)."""
    rows = edges.where(F.col(C.SRC) != F.col(C.DST))
    if not directed:
        rows = rows.select(F.least(C.SRC, C.DST).alias(C.SRC),
                           F.greatest(C.SRC, C.DST).alias(C.DST), C.WEIGHT)
    if unique:  # nothing to merge: spare the aggregate's hashing of every edge
        return rows.select(C.SRC, C.DST, (F.col(C.WEIGHT) if weighted else F.lit(1.0))
                           .cast("double").alias(C.WEIGHT))
    weight = F.sum(C.WEIGHT) if weighted else F.lit(1.0)
    return rows.groupBy(C.SRC, C.DST).agg(weight.alias(C.WEIGHT))


def diff(old: DataFrame, new: DataFrame, directed: bool, weighted: bool,
         unique: bool = False) -> GraphDiff:
    """Checked edges of the previous run (old) and of now (new) -> what changed; `unique`: each
    table holds an edge once (their graphs merged no duplicates). The changed arcs
    and nodes (a small share of the graph) are cached, as the counts and the caller read them
    again (release() frees them). Two shuffles of the edges (merged once per side, joined on the
    same keys) and one of the node ids."""
    check_same_ids(old, new)
    before = _edges(old, directed, weighted, unique).withColumnRenamed(C.WEIGHT, "_before")
    after = _edges(new, directed, weighted, unique).withColumnRenamed(C.WEIGHT, "_after")
    b, a = F.col("_before"), F.col("_after")
    change = (F.when(b.isNull(), F.lit(C.ADDED)).when(a.isNull(), F.lit(C.REMOVED))
              .when(F.abs(a - b) > F.lit(WEIGHT_TOLERANCE) * F.greatest(F.abs(a), F.abs(b)),
                    F.lit(C.REWEIGHTED)))
    changed_edges = (before.join(after, [C.SRC, C.DST], "full_outer")
                     .select(C.SRC, C.DST, change.alias(C.CHANGE))
                     .where(F.col(C.CHANGE).isNotNull()))
    if not directed:  # both arcs of a changed edge
        changed_edges = both_ways(changed_edges)
    # cached as few partitions: a shuffle's 200 would each be a task at every read (AQE does not
    # coalesce a cached plan's partitions; frames.cached_count)
    tasks = old.sparkSession.sparkContext.defaultParallelism
    changed_arcs = changed_edges.coalesce(tasks).persist(StorageLevel.MEMORY_AND_DISK)
    # each id with where it is (1: old, 2: new, 3: both), partial sums before the shuffle
    side = F.when(F.col("_side") == 1, F.lit(C.VANISHED)).when(F.col("_side") == 2,
                                                                  F.lit(C.NEW))
    changed_nodes = (_ids(old, 1).union(_ids(new, 2)).groupBy(C.ID)
                     .agg(F.bit_or("_side").alias("_side"))
                     .select(C.ID, side.alias(C.CHANGE)).where(F.col(C.CHANGE).isNotNull())
                     .coalesce(tasks).persist(StorageLevel.MEMORY_AND_DISK))
    ends = (changed_arcs.select(F.col(C.SRC).alias(C.ID))
            .union(changed_arcs.select(F.col(C.DST).alias(C.ID))).distinct())
    in_new = ends.join(changed_nodes.where(F.col(C.CHANGE) == C.VANISHED), C.ID, "left_anti")
    return GraphDiff(changed_arcs, changed_nodes, in_new, _counts(changed_arcs, changed_nodes,
                                                                  in_new, directed))


def _ids(edges: DataFrame, side: int) -> DataFrame:
    """(id, _side) for both ends of every row."""
    return (edges.select(F.col(C.SRC).alias(C.ID)).union(edges.select(F.col(C.DST).alias(C.ID)))
            .withColumn("_side", F.lit(side)))


def _counts(changed_arcs: DataFrame, changed_nodes: DataFrame, changed: DataFrame,
            directed: bool) -> DiffCounts:
    arc_counts = {r[C.CHANGE]: r["n"] for r in
                  changed_arcs.groupBy(C.CHANGE).agg(F.count("*").alias("n")).collect()}  # 3 rows
    node_counts = {r[C.CHANGE]: r["n"] for r in
                   changed_nodes.groupBy(C.CHANGE).agg(F.count("*").alias("n")).collect()}
    per_edge = 1 if directed else 2  # an undirected edge is two arcs
    return DiffCounts(
        added_edges=arc_counts.get(C.ADDED, 0) // per_edge,
        removed_edges=arc_counts.get(C.REMOVED, 0) // per_edge,
        reweighted_edges=arc_counts.get(C.REWEIGHTED, 0) // per_edge,
        new_nodes=node_counts.get(C.NEW, 0), vanished_nodes=node_counts.get(C.VANISHED, 0),
        changed_nodes=changed.count())


def near(graph_arcs: DataFrame, changed: DataFrame, radius: int) -> DataFrame:
    """The nodes with a path of at most `radius` arcs of graph_arcs to a changed node: (id, hops),
    hops the fewest such arcs (0 for the changed nodes themselves). One join per hop: the frontier
    steps back along the arcs (a walker at src reaches dst). A plan, not cached: radii are a few
    hops, and the plan's joins grow with their square."""
    reached = changed.select(C.ID, F.lit(0).alias(C.HOPS))
    frontier = changed.select(C.ID)
    back = graph_arcs.select(F.col(C.DST).alias(C.ID), F.col(C.SRC).alias("_from"))
    for hop in range(1, radius + 1):
        frontier = (back.join(frontier, C.ID).select(F.col("_from").alias(C.ID)).distinct()
                    .join(reached, C.ID, "left_anti"))
        reached = reached.union(frontier.select(C.ID, F.lit(hop).alias(C.HOPS)))
    return reached
