"""What the tests share: small graphs written by hand, the CLI's error check, and the walk engines
run on test-sized graphs (results brought back to check them)."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile

import numpy as np
import pyarrow.parquet as pq

from spark_n2v.cli import main
from spark_n2v.config import EdgeInput, WalkConfig
from spark_n2v.io.edges import inspect_local, read_edges
from spark_n2v.walk import engines, store

ENGINES = tuple(engines.ENGINES)  # every engine runs the same walk tests
_work = itertools.count()
_STORES = tempfile.mkdtemp(prefix="spark-n2v-test-stores-")  # prepared()'s graph stores
atexit.register(shutil.rmtree, _STORES, ignore_errors=True)


# Short runs spend most of their time starting a JVM: its fast compiler only, one GC thread
# (SPARK_SUBMIT_OPTS reaches the driver's JVM without a notice on stderr, unlike JAVA_TOOL_OPTIONS).
QUICK_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
QUICK_JVM_ENV = {**os.environ, "SPARK_SUBMIT_OPTS": QUICK_JVM}


def write_csv(path, rows, header=("src", "dst", "weight")) -> str:
    """Write a small CSV edge list (tests build their graphs by hand)."""
    with open(path, "w", newline="") as handle:
        if header:
            handle.write(",".join(header) + "\n")
        for row in rows:
            handle.write(",".join(str(x) for x in row) + "\n")
    return str(path)


def fails(capsys, argv, *expected) -> str:
    """Run the CLI, expect exit 2 and one stderr line mentioning every expected fragment, and
    nothing left at the output path or beside it."""
    output = argv[argv.index("--output") + 1]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "spark-n2v: error" in line]
    assert len(err) == 1, err
    for fragment in expected:
        assert fragment in err[0], err[0]
    assert not os.path.exists(output)
    parent = os.path.dirname(output)
    if os.path.isdir(parent):
        assert not [n for n in os.listdir(parent) if n.endswith((".incomplete", ".work"))]
    return err[0]


class Crash(Exception):
    """Stands for a killed driver."""


def crash_after_round(monkeypatch, rounds: int):
    """Make the sgns trainer's driver die right after it records `rounds` finished rounds;
    returns the function that undoes it (the rerun that resumes)."""
    from spark_n2v.record import ResumePoints
    real_mark = ResumePoints.mark

    def crash(self, name, **info):
        real_mark(self, name, **info)
        if name == "rounds" and info["done"] == rounds:
            raise Crash()

    monkeypatch.setattr(ResumePoints, "mark", crash)
    return lambda: monkeypatch.setattr(ResumePoints, "mark", real_mark)


def crash_after_marks(monkeypatch, state: str, marks: int):
    """Make the driver die right after the resume points of the file `state` (_walk.json:
    the sharded engine's steps; _local.json: the replicated engine's batches) number `marks`;
    returns the function that undoes it."""
    from spark_n2v.record import ResumePoints
    real_mark = ResumePoints.mark

    def crash(self, name, **info):
        real_mark(self, name, **info)
        if self.state.endswith(state) and len(self.done()) == marks:
            raise Crash()

    monkeypatch.setattr(ResumePoints, "mark", crash)
    return lambda: monkeypatch.setattr(ResumePoints, "mark", real_mark)


BLOCKS, SIZE = 4, 30


def planted_partition(seed=0, p_in=0.3, p_out=0.01):
    """A planted partition of BLOCKS blocks of SIZE nodes (string ids): (edges, {id: block})."""
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(BLOCKS), SIZE)
    n = len(block)
    i, j = np.triu_indices(n, 1)
    keep = rng.random(len(i)) < np.where(block[i] == block[j], p_in, p_out)
    edges = [(f"v{a}", f"v{b}", 1) for a, b in zip(i[keep], j[keep])]
    return edges, {f"v{k}": int(block[k]) for k in range(n)}


def macro_f1(truth, predicted) -> float:
    scores = []
    for c in set(truth):
        tp = sum(t == c and p == c for t, p in zip(truth, predicted))
        fp = sum(t != c and p == c for t, p in zip(truth, predicted))
        fn = sum(t == c and p != c for t, p in zip(truth, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def edge_table(spark, path: str, directed: bool = False, weighted: bool = False):
    """(checked edges, their input settings) of an edge file."""
    cfg = EdgeInput(path=path, directed=directed, weighted=weighted)
    return read_edges(spark, cfg, inspect_local(cfg)), cfg


def prepared(spark, path: str, directed: bool, weighted: bool, partitions: int = 2,
             engine: str = "sharded"):
    """The graph the given engine opens (its PreparedGraph), its store in a new folder."""
    table, cfg = edge_table(spark, path, directed, weighted)
    walk_cfg = WalkConfig(engine=engine, partitions=partitions)
    graph = store.write(spark, table, directed, weighted, partitions,
                        tempfile.mkdtemp(prefix="store-", dir=_STORES))
    return engines.choose(spark, graph, walk_cfg).open(spark, graph, walk_cfg)


def walks_of(spark, graph, tmp_path, **walk_args) -> dict:
    """{walk_id: walk} for a test-sized corpus, written by the engine's write_walks."""
    run = tmp_path / f"walks-{next(_work)}"
    graph.write_walks(spark, WalkConfig(**walk_args), str(run / "walks"), str(run / "work"))
    return read_walks(run / "walks")


def read_walks(path) -> dict:
    """{walk_id: walk} of a walks table folder."""
    table = pq.read_table(str(path)).to_pydict()
    return dict(zip(table["walk_id"], table["walk"]))
