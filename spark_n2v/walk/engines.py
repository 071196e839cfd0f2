"""The walk engines: one interface, one registry, one automatic choice.

Every engine walks the same graph store (store.py: CSR shards written once by Spark); an engine
opens it as a prepared graph, which writes walks into a folder, resumably. The stages call only this
interface, so they never know which engine runs. Every engine runs the same kernels (kernels.py) on
the same random streams, so every engine gives the same walks for the same graph and seed
(tests/walk: the law, walk, same-walks and resume tests run for every engine in ENGINES).

Adding an engine: a module in this package with a subclass of Engine (and of PreparedGraph), and
its line in ENGINES.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # the engines use the configs; the configs list ENGINES' names
    from pyspark.sql import SparkSession

    from spark_n2v.config import WalkConfig
    from spark_n2v.walk.graph import GraphStats
    from spark_n2v.walk.starts import Starts
    from spark_n2v.walk.store import GraphStore

# name -> "module:class". By name, not imported here: config.py checks --engine against these
# names, and the engines import the configs. `auto` takes the first that fits the store, in this
# order; the last must walk any graph.
ENGINES = {
    "replicated": "spark_n2v.walk.replicated:ReplicatedEngine",
    "sharded": "spark_n2v.walk.sharded:ShardedEngine",
}
# The engines' earlier names, still accepted: the broadcast engine became the replicated one, the
# group-and-join engine the sharded one.
ALIASES = {"local": "replicated", "distributed": "sharded"}


class PreparedGraph(ABC):
    """A graph an engine opened: its statistics, the walks it writes, what it holds."""

    engine: ClassVar[str]  # the engine's name, recorded in _run.json
    stats: GraphStats

    @abstractmethod
    def write_walks(self, spark: SparkSession, cfg: WalkConfig, walks_dir: str, work_dir: str,
                    starts: Starts | None = None) -> None:
        """Write the walks table (walk_id, walk: node ids in the input's type) into walks_dir:
        every node's walks, or only those of `starts` (the same walks, walk ids included).

        Resumable: the engine keeps its resume points in work_dir, and a rerun over the same
        work_dir with the same graph and cfg continues after the last one (record.OutputPath
        makes sure it is the same). The graph stays prepared: tune walks it once per (p, q)."""

    @abstractmethod
    def release(self) -> None:
        """Free what the graph holds on the cluster (cached tables, broadcast copies)."""


class Engine(ABC):
    """How walks run: opens a graph store as its PreparedGraph."""

    name: ClassVar[str]

    def fits(self, spark: SparkSession, store: GraphStore, cfg: WalkConfig) -> bool:
        """Whether the automatic choice may take this engine for this store."""
        return True

    @abstractmethod
    def open(self, spark: SparkSession, store: GraphStore, cfg: WalkConfig) -> PreparedGraph:
        """The store, ready to walk."""


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


def engine(name: str) -> Engine:
    module, _, cls = ENGINES[canonical(name)].partition(":")
    return getattr(importlib.import_module(module), cls)()


def choose(spark: SparkSession, store: GraphStore, cfg: WalkConfig) -> Engine:
    """The engine cfg.engine names, or (auto) the first in ENGINES that fits the store."""
    if cfg.engine != "auto":
        return engine(cfg.engine)
    *preferred, last = ENGINES
    for name in preferred:
        candidate = engine(name)
        if candidate.fits(spark, store, cfg):
            return candidate
    return engine(last)  # the last engine walks any graph


def default_partitions(spark: SparkSession, cfg: WalkConfig) -> int:
    """Partitions of the walk's tasks and tables (and the store's shards): --partitions, or
    2 x Spark's parallelism."""
    return cfg.partitions or 2 * spark.sparkContext.defaultParallelism
