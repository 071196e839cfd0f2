"""Command line: `spark-n2v walk | train | run | similar | classify | export | plot | linkpred |
tune`, one command per stage of the registry (stages.STAGES).

parse_args() builds the flags from the typed configs and validates them before Spark starts;
main() starts (or joins) Spark and runs the stage (stages.stage.execute). Errors the user can fix
print one line, the last on stderr, naming the flags to change, and exit with status 2.
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
from spark_n2v.config import CONFIG_TABLES, SparkConfig, build, field_of, read_config_file
from spark_n2v.errors import UserError
from spark_n2v.io.edges import EdgeSource, inspect_local
from spark_n2v.io.files import is_local, local_path
from spark_n2v.progress import LiveLine, finish_live_line, live_line
from spark_n2v.redaction import RedactingFilter, pattern_of, redact_argv, redact_text
from spark_n2v.record import RunRecord, check_output_free, check_output_writable, file_fingerprints
from spark_n2v.stages import STAGES
from spark_n2v.stages.stage import Stage, execute

PROG = "spark-n2v"


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
            kwargs["metavar"] = f.metadata.get("metavar", f.name.upper())
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        group.add_argument(flag, *f.metadata.get("aliases", ()), **kwargs)


def _classes(stage: Stage) -> list[type]:
    return [CONFIG_TABLES[name] for name in (*stage.configs, SparkConfig.TABLE)]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="node2vec graph embeddings as Spark batch jobs.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for stage in STAGES.values():
        sub = commands.add_parser(stage.name, help=stage.help, description=stage.help)
        sub.add_argument("--output", required=True, metavar="DIR", help="output folder")
        for name, table_help in stage.inputs:
            sub.add_argument(f"--{name}", required=True, metavar="PATH", help=table_help)
        sub.add_argument("--overwrite", action="store_true", help="replace an existing output")
        sub.add_argument("--config", metavar="FILE", help="TOML defaults (see conf/); flags override")
        seen: set[str] = set()
        for cls in _classes(stage):
            _add_flags(sub, cls, seen, run=stage.walks_and_trains)
    return parser


def _configs(args: argparse.Namespace) -> dict[str, object]:
    """Config file values overridden by the flags given; validated here, before Spark starts."""
    file = read_config_file(args.config) if args.config else {}
    stage = STAGES[args.command]
    configs = {}
    for cls in _classes(stage):
        dests = {f.name: _dest(_flag_for(f, stage.walks_and_trains))
                 for f in dataclasses.fields(cls)}
        flags = {name: getattr(args, dest, None) for name, dest in dests.items()}
        if cls is SparkConfig:
            flags["conf"] = [_key_value(item) for item in flags["conf"] or []]
        configs[cls.TABLE] = build(cls, file.get(cls.TABLE, {}), flags)
    return configs


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError("{spark.conf} expects key=value, got {item!r}", item=item)
    return key.strip(), value.strip()


def flag_namer(command: str):
    """errors.Namer for a command: config fields by their flags (`run`'s names in the commands
    that walk and train), other parameters as --name; a switch turned on is its flag alone."""
    run = STAGES[command].walks_and_trains if command in STAGES else False

    def name(param: str, value: str | None) -> str:
        field = field_of(param)
        flag = _flag_for(field, run) if field else "--" + param.replace("_", "-")
        if value is None:
            return flag
        switch = field.metadata.get("action") if field else "store_true"
        if (switch, value) in (("store_true", "True"), ("store_false", "False")):
            return flag
        return f"{flag} {value}"

    return name


def _print_summary(record: RunRecord, output: str) -> None:
    graph = record.graph
    if graph:
        kind = ("directed" if graph["directed"] else "undirected") + \
            (", weighted" if graph["weighted"] else "")
        print(f"graph: {graph['nodes']:,} nodes, {graph['edges']:,} edges ({kind}); "
              f"{graph['self_loops_dropped']:,} self-loops dropped, "
              f"{graph['duplicates_merged']:,} duplicate edges merged")
    if "changes" in record.counts:
        print("changes: " + ", ".join(f"{v:,} {k.replace('_', ' ')}"
                                      for k, v in record.counts["changes"].items()))
    if "walks" in record.counts:
        again = record.counts.get("walked_again")
        print(f"walks: {record.counts['walks']:,}"
              + (f" ({again:,} walked again)" if again is not None else ""))
    for name, value in record.quality.items():
        print(f"{name}: {value}")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in record.seconds.items()))
    print(f"output: {output}")


def run_command(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Run one command; raises UserError for anything the user can fix."""
    from spark_n2v.io.reach import check_storage
    from spark_n2v.session import get_session

    stage = STAGES[args.command]
    configs = _configs(args)
    _logging(configs[SparkConfig.TABLE].verbose)
    check_output_free(args.output, args.overwrite)
    check_output_writable(args.output)
    edges = EdgeSource(configs["input"], inspect_local(configs["input"])) \
        if "input" in configs else None
    inputs = {name: getattr(args, name) for name, _ in stage.inputs}
    for name, path in inputs.items():
        if is_local(path) and not os.path.exists(local_path(path)):
            raise UserError("{" + name + "} {path}: no such file or folder", path=path)

    spark, owned = get_session(configs["spark"], f"{PROG} {args.command}")
    # without secrets (a --conf key=value whose key spark.redaction.regex matches)
    record = RunRecord(command=" ".join(shlex.quote(a) for a in
                                        [PROG, *redact_argv(argv, pattern_of(spark))]))
    record.parameters = {name: dataclasses.asdict(cfg) for name, cfg in configs.items()
                         if name != SparkConfig.TABLE}
    try:
        files = {f"--{name}": path for name, path in inputs.items()}
        if edges is not None:
            files["--edges"] = edges.cfg.path
        check_storage(spark, files, args.output,  # in a minute, before anything waits on it
                      configs[SparkConfig.TABLE].work_dir)
        record.inputs = file_fingerprints(spark, files)
        execute(stage, spark, args.output, args.overwrite, record, configs, inputs, edges)
        finish_live_line()
        _print_summary(record, args.output)
    finally:
        if owned:
            spark.stop()


def _logging(verbose: bool) -> None:
    """spark-n2v's own lines (progress, stages) at INFO on stderr; other libraries' (py4j's
    connection notices) only from WARNING up, unless verbose. On a terminal (and not verbose,
    where Spark's own lines interleave), progress rewrites one line in place (progress.LiveLine)."""
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr, level=logging.INFO if verbose else logging.WARNING)
    ours = logging.getLogger("spark_n2v")
    ours.setLevel(logging.INFO)
    if not verbose and sys.stderr.isatty() and live_line() is None:
        live = LiveLine(sys.stderr)
        live.setFormatter(logging.Formatter("%(message)s"))
        ours.addHandler(live)
        ours.propagate = False
    for handler in [*logging.getLogger().handlers, *ours.handlers]:  # no secret in a line
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:
        args = build_parser().parse_args(argv)
        run_command(args, argv)
    except UserError as exc:
        finish_live_line()
        sys.stdout.flush()
        message = redact_text(exc.render(flag_namer(args.command if args else "")))
        print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
