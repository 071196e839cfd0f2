"""The walk engines: one interface, one registry, one automatic choice.

An engine prepares a graph from checked edges; the prepared graph writes walks into a folder,
resumably, and releases what it holds. The stages call only this interface, so they never know which
engine runs. Every engine runs the same kernels (kernels.py) on the same random streams, so every
engine gives the same walks for the same graph and seed (tests/walk: the law and walk tests run for
every engine in ENGINES; the same-walks and resume tests compare and kill local and distributed).

Adding an engine: a module in this package with a subclass of Engine (and of PreparedGraph), and
its line in ENGINES.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from spark_n2v.errors import UserError

if TYPE_CHECKING:  # the engines use the configs; the configs list ENGINES' names
    from pyspark.sql import SparkSession

    from spark_n2v.config import EdgeInput, WalkConfig
    from spark_n2v.io.edges import EdgeTable
    from spark_n2v.walk.graph import GraphStats

# name -> "module:class". By name, not imported here: config.py checks --engine against these
# names, and the engines import the configs. `auto` takes the first that supports and fits the
# graph, in this order; the last must walk any graph.
ENGINES = {
    "local": "spark_n2v.walk.local:LocalEngine",
    "distributed": "spark_n2v.walk.distributed:DistributedEngine",
}


class PreparedGraph(ABC):
    """A graph an engine prepared: its statistics, the walks it writes, what it holds."""

    engine: ClassVar[str]  # the engine's name, recorded in _run.json
    stats: GraphStats

    @abstractmethod
    def write_walks(self, spark: SparkSession, cfg: WalkConfig, walks_dir: str, work_dir: str
                    ) -> None:
        """Write the walks table (walk_id, walk: node ids in the input's type) into walks_dir.

        Resumable: the engine keeps its resume points in work_dir, and a rerun over the same
        work_dir with the same graph and cfg continues after the last one (record.OutputPath
        makes sure it is the same). The graph stays prepared: tune walks it once per (p, q)."""

    @abstractmethod
    def release(self) -> None:
        """Free what the graph holds on the cluster (cached tables, broadcast copies)."""


class Engine(ABC):
    """How walks run: prepares graphs for its PreparedGraph."""

    name: ClassVar[str]

    def unsupported(self, table: EdgeTable) -> str | None:
        """Why this engine cannot walk these edges, or None."""
        return None

    def fits(self, table: EdgeTable, edges: EdgeInput, cfg: WalkConfig) -> bool:
        """Whether the automatic choice may take this engine for this graph."""
        return True

    @abstractmethod
    def prepare(self, spark: SparkSession, table: EdgeTable, edges: EdgeInput, cfg: WalkConfig
                ) -> PreparedGraph:
        """Checked edges -> the prepared graph: ids indexed 0..V-1 by sort order, self-loops
        dropped, duplicates merged (weights summed in ascending order), sorted neighbour lists and
        cumulative weights; bit for bit the same in every engine, so the walks are too."""


def engine(name: str) -> Engine:
    module, _, cls = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def choose(table: EdgeTable, edges: EdgeInput, cfg: WalkConfig) -> Engine:
    """The engine cfg.engine names, or (auto) the first in ENGINES that supports and fits."""
    if cfg.engine != "auto":  # a name from ENGINES (config.py checks it): safe in a template
        chosen = engine(cfg.engine)
        problem = chosen.unsupported(table)
        if problem:
            others = " or ".join(n for n in ENGINES if n != cfg.engine)
            raise UserError("{walk.engine=" + cfg.engine + "}: {problem}; use {walk.engine=auto} "
                            "or {others}", problem=problem, others=others)
        return chosen
    *preferred, last = ENGINES
    for name in preferred:
        candidate = engine(name)
        if candidate.unsupported(table) is None and candidate.fits(table, edges, cfg):
            return candidate
    return engine(last)  # the last engine walks any graph


def default_partitions(spark: SparkSession, cfg: WalkConfig) -> int:
    """Partitions of the walk's tasks and tables: --partitions, or 2 x Spark's parallelism."""
    return cfg.partitions or 2 * spark.sparkContext.defaultParallelism
