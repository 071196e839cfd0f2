"""Command line: `spark-n2v walk | train | run`.

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
import time
import typing
from typing import Sequence

from spark_n2v import __version__
from spark_n2v.config import (EdgeInput, SparkConfig, TrainConfig, WalkConfig, build,
                              read_config_file)
from spark_n2v.errors import UserError
from spark_n2v.io import OutputPath, check_output_free, inspect_local, is_local, local_path

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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="node2vec graph embeddings as Spark batch jobs.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    specs = {
        "walk": ("edges -> walks table (walk_id, walk)", (EdgeInput, WalkConfig)),
        "train": ("walks table -> embeddings table (id, embedding): skip-gram, our negative-"
                  "sampling trainer (--trainer sgns) or MLlib Word2Vec",
                  (TrainConfig,)),
        "run": ("edges -> DIR/walks, DIR/embeddings and DIR/_run.json",
                (EdgeInput, WalkConfig, TrainConfig)),
    }
    for name, (help_, classes) in specs.items():
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.add_argument("--output", required=True, metavar="DIR", help="output folder")
        if name == "train":
            sub.add_argument("--walks", required=True, metavar="DIR", help="walks table")
        sub.add_argument("--overwrite", action="store_true", help="replace an existing output")
        sub.add_argument("--config", metavar="FILE", help="TOML defaults (see conf/); flags override")
        seen: set[str] = set()
        for cls in classes + (SparkConfig,):
            _add_flags(sub, cls, seen, run=name == "run")
    return parser


def _configs(args: argparse.Namespace) -> dict[str, object]:
    """Config file values overridden by the flags given; validated here, before Spark starts."""
    file = read_config_file(args.config) if args.config else {}
    run = args.command == "run"
    tables = {"input": EdgeInput, "walk": WalkConfig, "train": TrainConfig, "spark": SparkConfig}
    configs = {}
    for table, cls in tables.items():
        dests = {f.name: _dest(_flag_for(f, run)) for f in dataclasses.fields(cls)}
        if not any(hasattr(args, dest) for dest in dests.values()):
            continue  # this command has no such stage
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
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in record.seconds.items()))
    print(f"output: {output}")


def execute(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Run one command; raises UserError for anything the user can fix."""
    from spark_n2v import stages
    from spark_n2v.session import get_session

    configs = _configs(args)
    check_output_free(args.output, args.overwrite)
    layout = inspect_local(configs["input"]) if "input" in configs else None
    if args.command == "train" and is_local(args.walks):
        if not os.path.isdir(local_path(args.walks)):
            raise UserError(f"--walks {args.walks}: no such folder")

    spark, owned = get_session(configs["spark"], f"{PROG} {args.command}")
    record = stages.RunRecord(command=" ".join(shlex.quote(a) for a in [PROG, *argv]))
    record.parameters = {name: dataclasses.asdict(cfg) for name, cfg in configs.items()
                         if name != "spark"}
    out = None
    try:
        out = OutputPath(spark, args.output, args.overwrite)
        started = time.perf_counter()
        if args.command == "walk":
            stages.walk_stage(spark, configs["input"], layout, configs["walk"], out.staging,
                              out.work, record)
        elif args.command == "train":
            stages.train_stage(spark, args.walks, "--walks", configs["train"], out.staging,
                               out.work + "/train", record)
        else:
            stages.walk_stage(spark, configs["input"], layout, configs["walk"], out.sub("walks"),
                              out.work, record)
            stages.train_stage(spark, out.sub("walks"), "--walks", configs["train"],
                               out.sub("embeddings"), out.work + "/train", record)
        record.seconds["total"] = round(time.perf_counter() - started, 2)
        out.write_json("_run.json", record.as_dict(spark))
        out.commit()
        out = None
        _print_summary(record, args.output)
    finally:
        if out is not None:
            out.abort()  # nothing half-written is left behind
        if owned:
            spark.stop()


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
