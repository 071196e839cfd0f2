"""Typed, frozen configuration: one dataclass per stage, validated at construction.

Command-line flags and `conf/*.toml` files map onto the same fields: each field's metadata names its
flag and its check, so the CLI is generated from these classes and a config file uses the field
names as keys, in the table named by the class's TABLE (also the key of `_run.json`'s parameters).
A bad value raises UserError naming the field as `{table.field}` (errors.py): the library says
`walk.return_p`, the CLI `--p`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from spark_n2v.errors import UserError
from spark_n2v.io.formats import EDGE_FORMATS
from spark_n2v.train.trainers import TRAINERS
from spark_n2v.walk.engines import ALIASES, ENGINES

ENGINE_NAMES = ("auto", *ENGINES, *ALIASES)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SIMILAR_METHODS = ("exact", "approx")
SGNS_LAYOUTS = ("graph", "frequency")  # sgns: where nodes' rows live (train/layout.py)
EXPORT_FORMATS = ("projector", "word2vec", "redis")
NEW_NODE_STARTS = ("neighbours", "trainer")  # update: where a new node's vectors start
# The sgns trainer stores a position's reduced window in 16 bits; no walk needs windows this wide.
MAX_WINDOW = 1000

# A check takes a field's value and returns what is wrong with it, or None.
Check = Callable[[Any], "str | None"]


def _opt(default: Any, flag: str, help: str, check: Check | tuple[Check, ...] = (),
         **extra: Any) -> Any:
    checks = check if isinstance(check, tuple) else (check,)
    return field(default=default, metadata={"flag": flag, "help": help, "checks": checks, **extra})


def _at_least(low: int) -> Check:
    return lambda v: None if v >= low else f"must be at least {low}, got {v}"


def _at_most(high: int) -> Check:
    return lambda v: None if v <= high else f"must be at most {high}, got {v}"


def _zero_or_more(v: int) -> str | None:
    return None if v >= 0 else f"must be 0 or more, got {v}"


def _optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


def _one_of(choices: tuple[str, ...]) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"


def _positive(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and math.isfinite(v) and v > 0
    return None if ok else f"must be a finite number > 0, got {v}"


def _fraction(v: float) -> str | None:
    ok = math.isfinite(v) and 0 < v < 1
    return None if ok else f"must be between 0 and 1 (exclusive), got {v}"


def _seed(v: int) -> str | None:
    return None if 0 <= v < 2**63 else f"must be in [0, 2^63), got {v}"


def _given(what: str) -> Check:
    return lambda v: None if v else what


def parse_grid(text: str) -> tuple[float, ...]:
    """'0.25,1,4' -> (0.25, 1.0, 4.0) (TuneConfig checks the text at construction)."""
    return tuple(float(x) for x in str(text).split(",") if x.strip())


def _grid(v: str) -> str | None:
    try:
        values = parse_grid(v)
    except ValueError:
        return f"must be comma-separated numbers, got {v!r}"
    if not values or not all(math.isfinite(x) and x > 0 for x in values):
        return f"must list numbers > 0, got {v!r}"
    return None


class _Config:
    """Runs each field's checks at construction; the first problem raises UserError."""

    TABLE: ClassVar[str]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            for check in f.metadata["checks"]:
                problem = check(getattr(self, f.name))
                if problem:
                    raise UserError(f"{{{self.TABLE}.{f.name}}} {{problem}}", problem=problem)


@dataclass(frozen=True)
class EdgeInput(_Config):
    """Where the edge table is and how to read it."""

    TABLE: ClassVar[str] = "input"
    path: str = _opt(None, "--edges", "edge table: Parquet, CSV, TSV or SNAP edge list (file or "
                     "folder)", _given("is required: give the edge table's path"))
    format: str | None = _opt(None, "--format", "parquet|csv|tsv|snap (default: by extension)",
                              _optional(_one_of(EDGE_FORMATS)), choices=EDGE_FORMATS)
    src_col: str = _opt("src", "--src-col", "source column (default src)",
                        _given("must not be empty"))
    dst_col: str = _opt("dst", "--dst-col", "target column (default dst)",
                        _given("must not be empty"))
    weight_col: str = _opt("weight", "--weight-col", "weight column (default weight)",
                           _given("must not be empty"))
    header: bool = _opt(True, "--no-header", "CSV/TSV without a header row: columns by position "
                        "(src, dst, weight)", action="store_false")
    directed: bool = _opt(False, "--directed", "treat edges as directed (default: symmetrise)",
                          action="store_true")
    weighted: bool = _opt(False, "--weighted", "use edge weights (default: every edge weighs 1)",
                          action="store_true")


@dataclass(frozen=True)
class WalkConfig(_Config):
    """node2vec's second-order random walks."""

    TABLE: ClassVar[str] = "walk"
    return_p: float = _opt(1.0, "--p", "return parameter p: 1/p weighs the step back (default 1)",
                           _positive)
    inout_q: float = _opt(1.0, "--q", "in-out parameter q: 1/q weighs steps away from the previous "
                          "node (default 1)", _positive)
    walk_length: int = _opt(80, "--walk-length", "nodes per walk, start included (default 80)",
                            _at_least(1))
    num_walks: int = _opt(10, "--num-walks", "walks started from every node (default 10)",
                          _at_least(1))
    seed: int = _opt(42, "--seed", "random seed; with the graph it fixes every walk (default 42)",
                     _seed)
    partitions: int | None = _opt(None, "--partitions", "shards of the graph store and "
                                  "partitions of the walk's tasks (default: 2 x Spark's default "
                                  "parallelism)", _optional(_at_least(1)))
    engine: str = _opt("auto", "--engine", "auto|replicated|sharded: replicated walks each "
                       "walker to its end inside a task on the whole graph, mapped by every "
                       "executor; sharded moves the walkers to the shard of their node at each "
                       "step; auto replicates when the store fits --replicate-max-mb. local and "
                       "distributed are the earlier names of replicated and sharded "
                       "(default auto)", _one_of(ENGINE_NAMES), choices=ENGINE_NAMES)
    replicate_max_mb: int | None = _opt(
        None, "--replicate-max-mb", "largest graph store (MB) the auto engine replicates: each "
        "executor maps one copy (default: spark.executor.pyspark.memory if set, else the "
        "executor's heap, spark.executor.memory; the driver's in local mode)",
        _optional(_zero_or_more), aliases=("--local-max-mb",))


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Skip-gram on the walks: our negative-sampling trainer or Spark MLlib Word2Vec."""

    TABLE: ClassVar[str] = "train"
    trainer: str = _opt("mllib", "--trainer", "sgns: skip-gram with negative sampling, partitioned "
                        "inside Spark (any size); mllib: Spark MLlib Word2Vec, hierarchical softmax, "
                        "model on the driver, at most 2^31 weights (default mllib)",
                        _one_of(tuple(TRAINERS)), choices=tuple(TRAINERS))
    dim: int = _opt(128, "--dim", "embedding dimension (default 128)", _at_least(1))
    window: int = _opt(10, "--window", "context window (default 10)",
                       (_at_least(1), _at_most(MAX_WINDOW)))
    epochs: int | None = _opt(None, "--epochs", "passes over the walks (default: mllib 1; sgns "
                              "as many as give each node about 400 training tokens, at most 5 "
                              "(gensim's default): 1 for 10 walks of 80 per node, 5 for 2 walks "
                              "of 40)", _optional(_at_least(1)))
    negatives: int = _opt(5, "--negatives", "sgns: negative samples per pair (default 5)",
                          _at_least(1))
    chunks: int = _opt(8, "--chunks", "sgns: each epoch's walks train in this many chunks of P "
                       "rounds; more chunks mix partitions better, each round rewrites the model "
                       "(default 8; use fewer for models of many GB)", _at_least(1))
    layout: str = _opt("frequency", "--layout", "sgns at P > 1: where nodes' rows live: frequency "
                       "deals nodes round-robin by count; graph puts the nodes of one community "
                       "(label propagation over the walks) in one partition and next to each "
                       "other, so more pairs train in the P tasks of one round, but the "
                       "negatives then come more from a node's own community: it can cost "
                       "quality (default frequency)",
                       _one_of(SGNS_LAYOUTS), choices=SGNS_LAYOUTS)
    min_count: int = _opt(0, "--min-count", "drop nodes seen fewer times; keep 0 so every node is "
                          "embedded (default 0)", _zero_or_more)
    learning_rate: float = _opt(0.025, "--learning-rate", "initial learning rate, decaying "
                                "linearly (default 0.025)",
                                lambda v: None if math.isfinite(v) and 0 < v <= 1
                                else f"must be a number in (0, 1], got {v}")
    partitions: int | None = _opt(None, "--partitions", "sgns: node partitions P (P tasks per "
                                  "round, each holding 2/P of the model; default: the fewest that "
                                  "keep a task near 1 GiB, 1 for small models); mllib: Word2Vec partitions, "
                                  "more is faster but averages copies and costs quality (default 1)",
                                  _optional(_at_least(1)), run_flag="--train-partitions")
    workers: int | None = _opt(None, "--workers", "sgns: processes per training task, sharing "
                               "each snapshot's batches; the embeddings do not depend on it "
                               "(default: the cores a task has, the executors' cores over P, at "
                               "most 2)", _optional(_at_least(1)))
    seed: int = _opt(42, "--seed", "random seed (default 42)", _seed)


@dataclass(frozen=True)
class SimilarConfig(_Config):
    """Cosine nearest neighbours of every node."""

    TABLE: ClassVar[str] = "similar"
    top_k: int = _opt(10, "--top-k", "neighbours per node (default 10)", _at_least(1))
    method: str = _opt("exact", "--method", "exact: every pair, in blocks; approx: random-hyperplane "
                       "LSH, for tables too big for exact; reports its recall@k against exact on a "
                       "sample (default exact)", _one_of(SIMILAR_METHODS), choices=SIMILAR_METHODS)
    ids: str | None = _opt(None, "--ids", "text file of node ids, one per line: find neighbours "
                           "for these nodes only (default: every node)")
    lsh_tables: int = _opt(16, "--lsh-tables", "approx: hash tables; more raise recall and work "
                           "(default 16)", _at_least(1))
    lsh_bits: int | None = _opt(None, "--lsh-bits", "approx: hyperplanes per table; fewer raise "
                                "recall and work (default: about 1024 nodes per bucket)",
                                _optional(lambda v: None if 1 <= v <= 62
                                          else f"must be in 1..62, got {v}"))
    max_bucket: int = _opt(2048, "--max-bucket", "approx: larger buckets are cut into pieces of "
                           "this size, bounding the work per bucket (default 2048)", _at_least(1))
    recall_sample: int = _opt(1000, "--recall-sample", "approx: queries checked against exact for "
                              "the recall report; 0 skips it (default 1000)", _zero_or_more)
    seed: int = _opt(42, "--seed", "random seed of the hyperplanes and the recall sample "
                     "(default 42)", _seed)


@dataclass(frozen=True)
class ClassifyConfig(_Config):
    """Node classification: logistic regression on a stratified split."""

    TABLE: ClassVar[str] = "classify"
    train_fraction: float = _opt(0.5, "--train-fraction", "share of each class's nodes that "
                                 "trains; the rest is scored (default 0.5)", _fraction)
    seed: int = _opt(42, "--seed", "random seed of the split (default 42)", _seed)


@dataclass(frozen=True)
class ExportConfig(_Config):
    """Export the embeddings as text for other tools, or to Redis for online serving."""

    TABLE: ClassVar[str] = "export"
    format: str = _opt("projector", "--format", "projector: TensorFlow Embedding Projector's "
                       "vectors.tsv + metadata.tsv; word2vec: the word2vec text format, "
                       "embeddings.txt; redis: one key per node, {prefix}{id}, its vector as "
                       "little-endian float32 bytes (default projector)", _one_of(EXPORT_FORMATS),
                       choices=EXPORT_FORMATS)
    labels: str | None = _opt(None, "--labels", "projector: labels table (id, label) to add to "
                              "metadata.tsv (Parquet, or CSV/TSV with a header)")
    redis_url: str | None = _opt(None, "--redis-url", "redis: the server, "
                                 "redis://[:PASSWORD@]HOST:PORT/DB (rediss:// for TLS)")
    prefix: str = _opt("emb:", "--prefix", "redis: the keys' prefix, the export's own namespace: "
                       "after an export the keys under it are exactly the table's ids "
                       "(default emb:)", _given("must not be empty"))
    ttl: int | None = _opt(None, "--ttl", "redis: seconds until the keys expire (default: never)",
                           _optional(_at_least(1)))


@dataclass(frozen=True)
class PlotConfig(_Config):
    """A 2-D picture of the embeddings (needs the plot extra: matplotlib)."""

    TABLE: ClassVar[str] = "plot"
    labels: str | None = _opt(None, "--labels", "labels table (id, label) to colour the points by "
                              "(Parquet, or CSV/TSV with a header)")
    max_points: int = _opt(20000, "--max-points", "nodes drawn, a seeded sample (default 20000)",
                           _at_least(1))
    seed: int = _opt(42, "--seed", "random seed of the sample (default 42)", _seed)


@dataclass(frozen=True)
class UpdateConfig(_Config):
    """An incremental update: walk again near the changes, train from the previous model."""

    TABLE: ClassVar[str] = "update"
    radius: int = _opt(0, "--radius", "walk again from the nodes within this many hops of a "
                       "changed edge's ends (0: the ends themselves; each hop takes in the "
                       "neighbours, most of a graph of average degree 20 at 1; default 0)",
                       _zero_or_more)
    walks: int | None = _opt(None, "--update-walks", "train on this many of the walks of each "
                             "node walked again near a change, its first ones (a new node trains "
                             "all its walks; all are walked, for the corpus). More moves the "
                             "changed nodes further towards a full run's vectors, at the cost of "
                             "time (bench/update.py); default: a fifth of --num-walks, rounded up",
                             _optional(_at_least(1)))
    new_node_start: str = _opt("neighbours", "--new-node-start", "where a new node's vectors "
                               "start: neighbours (the mean of its neighbours' previous vectors; "
                               "it then trains its own walks) or trainer (as a run starts a node; "
                               "it and its neighbours then train all their walks, which takes "
                               "longer); default neighbours", _one_of(NEW_NODE_STARTS),
                               choices=NEW_NODE_STARTS)
    learning_rate: float = _opt(0.01, "--update-learning-rate", "initial learning rate of the "
                                "training from the previous model, decaying linearly (default "
                                "0.01: below a run's, so that unchanged nodes stay put)",
                                lambda v: None if math.isfinite(v) and 0 < v <= 1
                                else f"must be a number in (0, 1], got {v}")


@dataclass(frozen=True)
class LinkPredConfig(_Config):
    """Link prediction: held-out edges against as many non-edges."""

    TABLE: ClassVar[str] = "linkpred"
    test_fraction: float = _opt(0.1, "--test-fraction", "share of the edges held out; every node "
                                "keeps at least one edge (default 0.1)", _fraction)
    seed: int = _opt(42, "--seed", "random seed of the split and the non-edges (default 42)", _seed)


@dataclass(frozen=True)
class TuneConfig(_Config):
    """Grid search over node2vec's p and q, scored by classification macro-F1."""

    TABLE: ClassVar[str] = "tune"
    grid_p: str = _opt("0.25,1,4", "--grid-p", "values of p, comma-separated (default 0.25,1,4)",
                       _grid)
    grid_q: str = _opt("0.25,1,4", "--grid-q", "values of q, comma-separated (default 0.25,1,4)",
                       _grid)
    train_fraction: float = _opt(0.5, "--train-fraction", "share of each class's nodes that "
                                 "trains the classifier (default 0.5)", _fraction)

    @property
    def ps(self) -> tuple[float, ...]:
        return parse_grid(self.grid_p)

    @property
    def qs(self) -> tuple[float, ...]:
        return parse_grid(self.grid_q)


@dataclass(frozen=True)
class SparkConfig(_Config):
    """How the CLI starts Spark when it is not run under spark-submit."""

    TABLE: ClassVar[str] = "spark"
    master: str = _opt("local[*]", "--master", "Spark master for the CLI's own session "
                       "(default local[*]; ignored under spark-submit)")
    conf: tuple[tuple[str, str], ...] = _opt((), "--conf", "Spark setting key=value (repeatable)",
                                             action="append")
    verbose: bool = _opt(False, "--verbose", "show Spark's own log (INFO and up) and the JVM's "
                         "start-up notices; by default only spark-n2v's progress, summary and "
                         "errors, and Spark's errors, reach the terminal", action="store_true")
    event_log: str | None = _opt(None, "--event-log", "write Spark's event log into this folder "
                                 "(created if missing), so that Spark's history server can replay "
                                 "the run", metavar="DIR")
    work_dir: str | None = _opt(None, "--work-dir", "keep the run's resumable scratch in this "
                                "folder (any file system: HDFS scratch for an output on an "
                                "object store) rather than beside the output", metavar="DIR")


# Tables of a config file (and of `_run.json`'s parameters), by the config class they fill.
CONFIG_TABLES: dict[str, type] = {cls.TABLE: cls for cls in (
    EdgeInput, WalkConfig, TrainConfig, UpdateConfig, SimilarConfig, ClassifyConfig, ExportConfig,
    PlotConfig, LinkPredConfig, TuneConfig, SparkConfig)}


def field_of(param: str) -> dataclasses.Field | None:
    """The config field `table.name` names (errors.py's parameter names), or None."""
    table, _, name = param.partition(".")
    cls = CONFIG_TABLES.get(table)
    return next((f for f in dataclasses.fields(cls) if f.name == name), None) if cls else None


def read_config_file(path: str) -> dict[str, dict[str, Any]]:
    """Read a TOML config: tables [input], [walk], [train], [spark] ... keyed by field names."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError("{config} {path}: file not found", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError("{config} {path}: not valid TOML ({exc})", path=path, exc=exc) from None
    for table, values in data.items():
        if table not in CONFIG_TABLES or not isinstance(values, dict):
            raise UserError("{config} {path}: unknown table [{table}]; use {known}", path=path,
                            table=table, known=", ".join(CONFIG_TABLES))
        names = {f.name for f in dataclasses.fields(CONFIG_TABLES[table])}
        for key in values:
            if key not in names:
                raise UserError("{config} {path}: unknown key {key!r} in [{table}]; known keys: "
                                "{names}", path=path, key=key, table=table,
                                names=", ".join(sorted(names)))
    return data


def build(cls: type, file_values: Mapping[str, Any], flag_values: Mapping[str, Any]) -> Any:
    """Dataclass defaults, overridden by the config file, overridden by the flags given."""
    values = dict(file_values)
    values.update({k: v for k, v in flag_values.items() if v is not None})
    if cls is SparkConfig:
        conf = dict(file_values.get("conf", {}))
        conf.update(dict(flag_values.get("conf") or ()))
        values["conf"] = tuple(sorted(conf.items()))
    try:
        return cls(**values)
    except TypeError as exc:  # wrong value type from a config file
        raise UserError("config: {exc}", exc=exc) from None
