"""Typed, frozen configuration: one dataclass per stage, validated at construction.

Command-line flags and `conf/*.toml` files map onto the same fields: each field's metadata names its
flag, so the CLI is generated from these classes and a config file uses the field names as keys.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

from spark_n2v.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FORMATS = ("parquet", "csv", "tsv", "snap")
ENGINES = ("auto", "local", "distributed")
TRAINERS = ("mllib", "sgns")
SIMILAR_METHODS = ("exact", "approx")
EXPORT_FORMATS = ("projector", "word2vec")

# MLlib Word2Vec refuses vocabulary x dimension at or above Int.MaxValue (it would overflow its arrays).
MLLIB_MAX_CELLS = 2**31 - 1
# The sgns trainer stores a position's reduced window in 16 bits; no walk needs windows this wide.
MAX_WINDOW = 1000


def _opt(default: Any, flag: str, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"flag": flag, "help": help, **extra})


def _check(ok: bool, flag: str, message: str) -> None:
    if not ok:
        raise UserError(f"{flag} {message}")


@dataclass(frozen=True)
class EdgeInput:
    """Where the edge table is and how to read it."""

    path: str = _opt(None, "--edges", "edge table: Parquet, CSV, TSV or SNAP edge list (file or folder)")
    format: str | None = _opt(None, "--format", "parquet|csv|tsv|snap (default: by extension)",
                              choices=FORMATS)
    src_col: str = _opt("src", "--src-col", "source column (default src)")
    dst_col: str = _opt("dst", "--dst-col", "target column (default dst)")
    weight_col: str = _opt("weight", "--weight-col", "weight column (default weight)")
    header: bool = _opt(True, "--no-header", "CSV/TSV without a header row: columns by position "
                        "(src, dst, weight)", action="store_false")
    directed: bool = _opt(False, "--directed", "treat edges as directed (default: symmetrise)",
                          action="store_true")
    weighted: bool = _opt(False, "--weighted", "use edge weights (default: every edge weighs 1)",
                          action="store_true")

    def __post_init__(self) -> None:
        _check(bool(self.path), "--edges", "is required: give the edge table's path")
        _check(self.format is None or self.format in FORMATS, "--format",
               f"must be one of {', '.join(FORMATS)}, got {self.format!r}")
        for name in ("src_col", "dst_col", "weight_col"):
            flag = _flag(type(self), name)
            _check(bool(getattr(self, name)), flag, "must not be empty")


@dataclass(frozen=True)
class WalkConfig:
    """node2vec's second-order random walks."""

    return_p: float = _opt(1.0, "--p", "return parameter p: 1/p weighs the step back (default 1)")
    inout_q: float = _opt(1.0, "--q", "in-out parameter q: 1/q weighs steps away from the previous "
                          "node (default 1)")
    walk_length: int = _opt(80, "--walk-length", "nodes per walk, start included (default 80)")
    num_walks: int = _opt(10, "--num-walks", "walks started from every node (default 10)")
    seed: int = _opt(42, "--seed", "random seed; with the graph it fixes every walk (default 42)")
    partitions: int | None = _opt(None, "--partitions", "partitions of the adjacency and walkers "
                                  "(default: 2 x Spark's default parallelism)")
    checkpoint_interval: int = _opt(10, "--checkpoint-interval", "steps between lineage cuts: the "
                                    "walkers are written to Parquet and read back (default 10)")
    engine: str = _opt("auto", "--engine", "auto|local|distributed: local walks inside each task "
                       "from a broadcast copy of the graph, distributed moves walkers by joins each "
                       "step; auto picks local when the graph fits --local-max-mb (default auto)",
                       choices=ENGINES)
    local_max_mb: int = _opt(512, "--local-max-mb", "largest graph (CSR megabytes) the auto engine "
                             "walks locally; every Python worker holds one copy (default 512)")

    def __post_init__(self) -> None:
        for name in ("return_p", "inout_q"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and math.isfinite(value) and value > 0,
                   _flag(type(self), name), f"must be a finite number > 0, got {value}")
        for name in ("walk_length", "num_walks", "checkpoint_interval"):
            _check(getattr(self, name) >= 1, _flag(type(self), name),
                   f"must be at least 1, got {getattr(self, name)}")
        _check(self.engine in ENGINES, "--engine",
               f"must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        _check(self.local_max_mb >= 0, "--local-max-mb", f"must be 0 or more, got {self.local_max_mb}")
        _check(self.partitions is None or self.partitions >= 1, "--partitions",
               f"must be at least 1, got {self.partitions}")
        _check(0 <= self.seed < 2**63, "--seed", f"must be in [0, 2^63), got {self.seed}")


@dataclass(frozen=True)
class TrainConfig:
    """Skip-gram on the walks: our negative-sampling trainer or Spark MLlib Word2Vec."""

    trainer: str = _opt("mllib", "--trainer", "sgns: skip-gram with negative sampling, partitioned "
                        "inside Spark (any size); mllib: Spark MLlib Word2Vec, hierarchical softmax, "
                        "model on the driver, at most 2^31 weights (default mllib)",
                        choices=TRAINERS)
    dim: int = _opt(128, "--dim", "embedding dimension (default 128)")
    window: int = _opt(10, "--window", "context window (default 10)")
    epochs: int = _opt(1, "--epochs", "passes over the walks (default 1)")
    negatives: int = _opt(5, "--negatives", "sgns: negative samples per pair (default 5)")
    chunks: int = _opt(8, "--chunks", "sgns: each epoch's walks train in this many chunks of P "
                       "rounds; more chunks mix partitions better, each round rewrites the model "
                       "(default 8; use fewer for models of many GB)")
    min_count: int = _opt(0, "--min-count", "drop nodes seen fewer times; keep 0 so every node is "
                          "embedded (default 0)")
    learning_rate: float = _opt(0.025, "--learning-rate", "initial learning rate, decaying "
                                "linearly (default 0.025)")
    partitions: int | None = _opt(None, "--partitions", "sgns: node partitions P (P tasks per "
                                  "round, each holding 2/P of the model; default: the fewest that "
                                  "keep a task near 1 GiB, 1 for small models); mllib: Word2Vec partitions, "
                                  "more is faster but averages copies and costs quality (default 1)",
                                  run_flag="--train-partitions")
    seed: int = _opt(42, "--seed", "random seed (default 42)")

    def __post_init__(self) -> None:
        _check(self.trainer in TRAINERS, "--trainer",
               f"must be one of {', '.join(TRAINERS)}, got {self.trainer!r}")
        for name in ("dim", "window", "epochs", "negatives", "chunks"):
            _check(getattr(self, name) >= 1, _flag(type(self), name),
                   f"must be at least 1, got {getattr(self, name)}")
        _check(self.window <= MAX_WINDOW, "--window", f"must be at most {MAX_WINDOW}, got {self.window}")
        _check(self.partitions is None or self.partitions >= 1, "--partitions",
               f"must be at least 1, got {self.partitions}")
        _check(self.min_count >= 0, "--min-count", f"must be 0 or more, got {self.min_count}")
        _check(math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1, "--learning-rate",
               f"must be a number in (0, 1], got {self.learning_rate}")
        _check(0 <= self.seed < 2**63, "--seed", f"must be in [0, 2^63), got {self.seed}")


@dataclass(frozen=True)
class SimilarConfig:
    """Cosine nearest neighbours of every node."""

    top_k: int = _opt(10, "--top-k", "neighbours per node (default 10)")
    method: str = _opt("exact", "--method", "exact: every pair, in blocks; approx: random-hyperplane "
                       "LSH, for tables too big for exact; reports its recall@k against exact on a "
                       "sample (default exact)", choices=SIMILAR_METHODS)
    ids: str | None = _opt(None, "--ids", "text file of node ids, one per line: find neighbours "
                           "for these nodes only (default: every node)")
    lsh_tables: int = _opt(16, "--lsh-tables", "approx: hash tables; more raise recall and work "
                           "(default 16)")
    lsh_bits: int | None = _opt(None, "--lsh-bits", "approx: hyperplanes per table; fewer raise "
                                "recall and work (default: about 1024 nodes per bucket)")
    max_bucket: int = _opt(2048, "--max-bucket", "approx: larger buckets are cut into pieces of "
                           "this size, bounding the work per bucket (default 2048)")
    recall_sample: int = _opt(1000, "--recall-sample", "approx: queries checked against exact for "
                              "the recall report; 0 skips it (default 1000)")
    seed: int = _opt(42, "--seed", "random seed of the hyperplanes and the recall sample "
                     "(default 42)")

    def __post_init__(self) -> None:
        _check(self.method in SIMILAR_METHODS, "--method",
               f"must be one of {', '.join(SIMILAR_METHODS)}, got {self.method!r}")
        for name in ("top_k", "lsh_tables", "max_bucket"):
            _check(getattr(self, name) >= 1, _flag(type(self), name),
                   f"must be at least 1, got {getattr(self, name)}")
        _check(self.lsh_bits is None or 1 <= self.lsh_bits <= 62, "--lsh-bits",
               f"must be in 1..62, got {self.lsh_bits}")
        _check(self.recall_sample >= 0, "--recall-sample",
               f"must be 0 or more, got {self.recall_sample}")
        _check(0 <= self.seed < 2**63, "--seed", f"must be in [0, 2^63), got {self.seed}")


@dataclass(frozen=True)
class ClassifyConfig:
    """Node classification: logistic regression on a stratified split."""

    train_fraction: float = _opt(0.5, "--train-fraction", "share of each class's nodes that "
                                 "trains; the rest is scored (default 0.5)")
    seed: int = _opt(42, "--seed", "random seed of the split (default 42)")

    def __post_init__(self) -> None:
        _check(math.isfinite(self.train_fraction) and 0 < self.train_fraction < 1,
               "--train-fraction", f"must be between 0 and 1 (exclusive), got {self.train_fraction}")
        _check(0 <= self.seed < 2**63, "--seed", f"must be in [0, 2^63), got {self.seed}")


@dataclass(frozen=True)
class ExportConfig:
    """Export the embeddings as text for other tools."""

    format: str = _opt("projector", "--format", "projector: TensorFlow Embedding Projector's "
                       "vectors.tsv + metadata.tsv; word2vec: the word2vec text format, "
                       "embeddings.txt (default projector)", choices=EXPORT_FORMATS)
    labels: str | None = _opt(None, "--labels", "projector: labels table (id, label) to add to "
                              "metadata.tsv (Parquet, or CSV/TSV with a header)")

    def __post_init__(self) -> None:
        _check(self.format in EXPORT_FORMATS, "--format",
               f"must be one of {', '.join(EXPORT_FORMATS)}, got {self.format!r}")


@dataclass(frozen=True)
class PlotConfig:
    """A 2-D picture of the embeddings (needs the plot extra: matplotlib)."""

    labels: str | None = _opt(None, "--labels", "labels table (id, label) to colour the points by "
                              "(Parquet, or CSV/TSV with a header)")
    max_points: int = _opt(20000, "--max-points", "nodes drawn, a seeded sample (default 20000)")
    seed: int = _opt(42, "--seed", "random seed of the sample (default 42)")

    def __post_init__(self) -> None:
        _check(self.max_points >= 1, "--max-points", f"must be at least 1, got {self.max_points}")
        _check(0 <= self.seed < 2**63, "--seed", f"must be in [0, 2^63), got {self.seed}")


@dataclass(frozen=True)
class LinkPredConfig:
    """Link prediction: held-out edges against as many non-edges."""

    test_fraction: float = _opt(0.1, "--test-fraction", "share of the edges held out; every node "
                                "keeps at least one edge (default 0.1)")
    seed: int = _opt(42, "--seed", "random seed of the split and the non-edges (default 42)")

    def __post_init__(self) -> None:
        _check(math.isfinite(self.test_fraction) and 0 < self.test_fraction < 1,
               "--test-fraction", f"must be between 0 and 1 (exclusive), got {self.test_fraction}")
        _check(0 <= self.seed < 2**63, "--seed", f"must be in [0, 2^63), got {self.seed}")


def _grid(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise UserError(f"{flag} must be comma-separated numbers, got {text!r}") from None
    _check(bool(values) and all(math.isfinite(v) and v > 0 for v in values), flag,
           f"must list numbers > 0, got {text!r}")
    return values


@dataclass(frozen=True)
class TuneConfig:
    """Grid search over node2vec's p and q, scored by classification macro-F1."""

    grid_p: str = _opt("0.25,1,4", "--grid-p", "values of p, comma-separated (default 0.25,1,4)")
    grid_q: str = _opt("0.25,1,4", "--grid-q", "values of q, comma-separated (default 0.25,1,4)")
    train_fraction: float = _opt(0.5, "--train-fraction", "share of each class's nodes that "
                                 "trains the classifier (default 0.5)")

    def __post_init__(self) -> None:
        _grid(self.grid_p, "--grid-p")
        _grid(self.grid_q, "--grid-q")
        _check(math.isfinite(self.train_fraction) and 0 < self.train_fraction < 1,
               "--train-fraction", f"must be between 0 and 1 (exclusive), got {self.train_fraction}")

    @property
    def ps(self) -> tuple[float, ...]:
        return _grid(self.grid_p, "--grid-p")

    @property
    def qs(self) -> tuple[float, ...]:
        return _grid(self.grid_q, "--grid-q")


@dataclass(frozen=True)
class SparkConfig:
    """How the CLI starts Spark when it is not run under spark-submit."""

    master: str = _opt("local[*]", "--master", "Spark master for the CLI's own session "
                       "(default local[*]; ignored under spark-submit)")
    conf: tuple[tuple[str, str], ...] = _opt((), "--conf", "Spark setting key=value (repeatable)",
                                             action="append")


# Tables of a config file (and of `_run.json`'s parameters), by the config class they fill.
CONFIG_TABLES = {"input": EdgeInput, "walk": WalkConfig, "train": TrainConfig,
                 "similar": SimilarConfig, "classify": ClassifyConfig, "export": ExportConfig,
                 "plot": PlotConfig, "linkpred": LinkPredConfig, "tune": TuneConfig,
                 "spark": SparkConfig}


def _flag(cls: type, name: str) -> str:
    return next(f.metadata["flag"] for f in dataclasses.fields(cls) if f.name == name)


def read_config_file(path: str) -> dict[str, dict[str, Any]]:
    """Read a TOML config: tables [input], [walk], [train], [spark] keyed by field names."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"--config {path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--config {path}: not valid TOML ({exc})") from None
    known = CONFIG_TABLES
    for table, values in data.items():
        if table not in known or not isinstance(values, dict):
            raise UserError(f"--config {path}: unknown table [{table}]; use {', '.join(known)}")
        names = {f.name for f in dataclasses.fields(known[table])}
        for key in values:
            if key not in names:
                raise UserError(f"--config {path}: unknown key {key!r} in [{table}]; "
                                f"known keys: {', '.join(sorted(names))}")
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
        raise UserError(f"config: {exc}") from None
