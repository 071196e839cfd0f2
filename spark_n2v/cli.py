"""Command line: `spark-n2v walk | train | run | similar | classify | export | plot | linkpred |
tune`.

parse_args() builds the flags from the typed configs and validates them before Spark starts;
main() starts (or joins) Spark, runs the stage into a staging folder and moves it into place.
Errors the user can fix print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import sys
import typing
from typing import Sequence

from spark_n2v import __version__
from spark_n2v.config import (CONFIG_TABLES, ClassifyConfig, EdgeInput, ExportConfig,
                              LinkPredConfig, PlotConfig, SimilarConfig, SparkConfig, TrainConfig,
                              TuneConfig, WalkConfig, build, read_config_file)
from spark_n2v.errors import UserError
from spark_n2v.io import HadoopFiles, check_output_free, inspect_local, is_local, local_path

PROG = "spark-n2v"
log = logging.getLogger(PROG)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (no usage dump) and exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _flag_for(f: dataclasses.Field, run: bool) -> str:
    return f.metadata.get("run_flag", f.metadata["flag"]) if run else f.metadata["flag"]


def _add_flags(parser: argparse.ArgumentParser, cls: type, seen: set[str], run: bool = False) -> None:
    """One flag per config field, default None so that only given flags override the config file."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__doc__.splitlines()[0] if cls.__doc__ else cls.__name__)
    for f in dataclasses.fields(cls):
        flag = _flag_for(f, run)
        if flag in seen:  # --seed is shared by walk and train in `run`
            continue
        seen.add(flag)
        kwargs: dict = {"dest": _dest(flag), "default": None, "help": f.metadata["help"]}
        if "action" in f.metadata:
            kwargs["action"] = f.metadata["action"]
        else:
            base = [t for t in typing.get_args(hints[f.name]) if t is not type(None)]
            kwargs["type"] = base[0] if base else hints[f.name]
            kwargs["metavar"] = f.name.upper()
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        group.add_argument(flag, **kwargs)


# Tables a command reads besides its config: (flag, help).
_WALKS = ("--walks", "walks table (walk_id, walk)")
_EMBEDDINGS = ("--embeddings", "embeddings table (id, embedding)")
_LABELS = ("--labels", "labels table (id, label): Parquet, or CSV/TSV with a header; several rows "
           "per id make the task multi-label")

# command: (help, input tables, config classes)
COMMANDS = {
    "walk": ("edges -> walks table (walk_id, walk)", (), (EdgeInput, WalkConfig)),
    "train": ("walks table -> embeddings table (id, embedding): skip-gram, our negative-"
              "sampling trainer (--trainer sgns) or MLlib Word2Vec", (_WALKS,), (TrainConfig,)),
    "run": ("edges -> DIR/walks, DIR/embeddings and DIR/_run.json", (),
            (EdgeInput, WalkConfig, TrainConfig)),
    "similar": ("embeddings -> neighbours table (id, neighbor, similarity, rank): the top-k "
                "nodes by cosine similarity, self excluded", (_EMBEDDINGS,), (SimilarConfig,)),
    "classify": ("embeddings + labels -> DIR/predictions (id, label, prediction, split) and "
                 "DIR/metrics.json: logistic regression on a stratified split",
                 (_EMBEDDINGS, _LABELS), (ClassifyConfig,)),
    "export": ("embeddings -> DIR/vectors.tsv + DIR/metadata.tsv (TensorFlow Embedding "
               "Projector) or DIR/embeddings.txt (word2vec text format)", (_EMBEDDINGS,),
               (ExportConfig,)),
    "plot": ("embeddings -> DIR/plot.png: the first two principal components, coloured by "
             "label", (_EMBEDDINGS,), (PlotConfig,)),
    "linkpred": ("edges -> DIR/metrics.json: hold out edges, embed the rest, ROC AUC and average "
                 "precision of held-out edges against as many non-edges", (),
                 (EdgeInput, WalkConfig, TrainConfig, LinkPredConfig)),
    "tune": ("edges + labels -> DIR/results (p, q, macro_f1, ...), DIR/metrics.json (the best "
             "pair) and DIR/heatmap.png: walk, train and classify for every (p, q) of the grid",
             (_LABELS,), (EdgeInput, WalkConfig, TrainConfig, TuneConfig)),
}


def _pipeline(command: str) -> bool:
    """Commands that walk and train take `run`'s flag names (--train-partitions)."""
    classes = COMMANDS[command][2]
    return WalkConfig in classes and TrainConfig in classes


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="node2vec graph embeddings as Spark batch jobs.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_, inputs, classes) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.add_argument("--output", required=True, metavar="DIR", help="output folder")
        for flag, table_help in inputs:
            sub.add_argument(flag, required=True, metavar="PATH", help=table_help)
        sub.add_argument("--overwrite", action="store_true", help="replace an existing output")
        sub.add_argument("--config", metavar="FILE", help="TOML defaults (see conf/); flags override")
        seen: set[str] = set()
        for cls in classes + (SparkConfig,):
            _add_flags(sub, cls, seen, run=_pipeline(name))
    return parser


def _configs(args: argparse.Namespace) -> dict[str, object]:
    """Config file values overridden by the flags given; validated here, before Spark starts."""
    file = read_config_file(args.config) if args.config else {}
    run = _pipeline(args.command)
    classes = COMMANDS[args.command][2] + (SparkConfig,)
    configs = {}
    for table, cls in CONFIG_TABLES.items():
        if cls not in classes:
            continue
        dests = {f.name: _dest(_flag_for(f, run)) for f in dataclasses.fields(cls)}
        flags = {name: getattr(args, dest, None) for name, dest in dests.items()}
        if cls is SparkConfig:
            flags["conf"] = [_key_value(item) for item in flags["conf"] or []]
        configs[table] = build(cls, file.get(table, {}), flags)
    return configs


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"--conf expects key=value, got {item!r}")
    return key.strip(), value.strip()


def _print_summary(record, output: str) -> None:
    graph = record.graph
    if graph:
        kind = ("directed" if graph["directed"] else "undirected") + \
            (", weighted" if graph["weighted"] else "")
        print(f"graph: {graph['nodes']:,} nodes, {graph['edges']:,} edges ({kind}); "
              f"{graph['self_loops_dropped']:,} self-loops dropped, "
              f"{graph['duplicates_merged']:,} duplicate edges merged")
    if "walks" in record.counts:
        print(f"walks: {record.counts['walks']:,}")
    for name, value in record.quality.items():
        print(f"{name}: {value}")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in record.seconds.items()))
    print(f"output: {output}")


def execute(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Run one command; raises UserError for anything the user can fix."""
    from spark_n2v import stages
    from spark_n2v.session import get_session

    configs = _configs(args)
    check_output_free(args.output, args.overwrite)
    layout = inspect_local(configs["input"]) if "input" in configs else None
    for flag, _ in COMMANDS[args.command][1]:
        path = getattr(args, _dest(flag))
        if is_local(path) and not os.path.exists(local_path(path)):
            raise UserError(f"{flag} {path}: no such file or folder")

    spark, owned = get_session(configs["spark"], f"{PROG} {args.command}")
    record = stages.RunRecord(command=" ".join(shlex.quote(a) for a in [PROG, *argv]))
    record.parameters = {name: dataclasses.asdict(cfg) for name, cfg in configs.items()
                         if name != "spark"}
    try:
        record.inputs = _fingerprints(spark, args, configs)
        with stages.staged_output(spark, args.output, args.overwrite, args.command,
                                  record) as out:
            _run_command(spark, args, configs, layout, out, record)
        _print_summary(record, args.output)
    finally:
        if owned:
            spark.stop()


def _run_command(spark, args: argparse.Namespace, configs: dict, layout, out, record) -> None:
    from spark_n2v import stages
    if args.command == "walk":
        stages.walk_stage(spark, configs["input"], layout, configs["walk"], out.staging,
                          out.work, record)
    elif args.command == "train":
        stages.train_stage(spark, args.walks, "--walks", configs["train"], out.staging,
                           out.work + "/train", record)
    elif args.command == "similar":
        stages.similar_stage(spark, args.embeddings, configs["similar"], out.staging, record)
    elif args.command == "classify":
        metrics = stages.classify_stage(spark, args.embeddings, args.labels,
                                        configs["classify"], out.sub("predictions"), record)
        out.write_json("metrics.json", metrics)
    elif args.command == "export":
        stages.export_stage(spark, args.embeddings, configs["export"], out, record)
    elif args.command == "plot":
        stages.plot_stage(spark, args.embeddings, configs["plot"], out, record)
    elif args.command == "linkpred":
        out.write_json("metrics.json", stages.linkpred_stage(
            spark, configs["input"], layout, configs["walk"], configs["train"],
            configs["linkpred"], out.work, record))
    elif args.command == "tune":
        out.write_json("metrics.json", stages.tune_stage(
            spark, configs["input"], layout, args.labels, configs["walk"], configs["train"],
            configs["tune"], out, record))
    else:
        stages.run_stages(spark, lambda walks_dir, work_dir: stages.walk_stage(
            spark, configs["input"], layout, configs["walk"], walks_dir, work_dir, record),
            configs["train"], out, record)


def _fingerprints(spark, args: argparse.Namespace, configs: dict) -> dict:
    """The input tables' fingerprints (io.HadoopFiles.fingerprint), by flag."""
    paths = {flag: getattr(args, _dest(flag)) for flag, _ in COMMANDS[args.command][1]}
    if "input" in configs:
        paths["--edges"] = configs["input"].path
    try:
        return {flag: HadoopFiles(spark, path).fingerprint(path) for flag, path in paths.items()}
    except Exception as exc:  # noqa: BLE001 - a remote path Spark cannot list
        raise UserError(f"cannot list the input files ({str(exc).splitlines()[0]})") from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
        execute(args, argv)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
