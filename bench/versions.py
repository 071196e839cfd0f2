"""Before and after: our own commands from two checkouts of the project, alternating, on the same
local inputs, to check that a change made nothing slower on local disk.

Both versions are commits (after: HEAD unless told), each checked out once as a git worktree under
the work folder, so that editing this checkout while the benchmark runs changes nothing. Each run
of a case is a whole process (JVM start, reading, writing included) timed by wall clock; the cases
alternate (before, after, before, after, ...) so that both versions meet the same drift of a
shared machine. Reports each case's median seconds and the
ratio after / before, and writes the table to bench/results/.

    .venv/bin/python bench/versions.py --before 4a2a277 --runs 3
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from run import generate, measure  # noqa: E402  (the walk benchmark's graphs and timing)

LOCAL = ["--master", "local[2]", "--overwrite"]
TIMEOUT = 1800.0  # seconds one run may take


def cases(work: str, walks: str) -> tuple[list[str], dict[str, list[str]]]:
    """The walk that makes the train cases' input `walks`, and name -> CLI arguments of each case
    (the output folder is added per run)."""
    walk_graph = generate("planted", 200_000, 2_000_000, work)
    graph = generate("planted", 20_000, 200_000, work)
    walked = ["--edges", os.path.join(graph, "edges.parquet"), "--num-walks", "10",
              "--walk-length", "80", "--seed", "1"]
    train = ["train", "--walks", walks, "--trainer", "sgns", "--dim", "128", "--window", "10",
             "--seed", "1"]
    return ["walk", *walked], {
        "walk planted 200k/2M, 10 x 80, p=0.5 q=2": [
            "walk", "--edges", os.path.join(walk_graph, "edges.parquet"), "--num-walks", "10",
            "--walk-length", "80", "--p", "0.5", "--q", "2", "--seed", "1"],
        "train sgns P=1, 20k nodes, 10 x 80 walks, d=128": [*train, "--partitions", "1"],
        "train sgns P=4, 20k nodes, 10 x 80 walks, d=128": [*train, "--partitions", "4"],
        "run (walk + sgns) planted 20k/200k, 10 x 80, d=128": [
            "run", *walked, "--trainer", "sgns", "--dim", "128", "--window", "10"],
    }


def checkout(commit: str, work: str) -> str:
    """A worktree of `commit` (a commit id, not a branch) under the work folder, made once and
    kept for later runs (`git worktree remove` takes it away)."""
    folder = os.path.join(work, "versions", "tree-" + commit)
    if not os.path.isdir(folder):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", folder, commit],
                       check=True)
    return folder


def timed(tree: str, argv: list[str], output: str, log: str) -> float:
    """Seconds of one CLI process running the code in `tree` (its package first on the path of
    the driver and of Spark's Python workers)."""
    seconds, _ = measure([sys.executable, "-m", "spark_n2v.cli", *argv, "--output", output,
                          *LOCAL], TIMEOUT, log, cwd=tree, env={**os.environ, "PYTHONPATH": tree})
    if seconds is None:
        sys.exit(f"{argv[0]} from {tree} failed or took over {TIMEOUT:.0f} s; see {log}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit to compare with")
    parser.add_argument("--after", default="HEAD", help="the commit under test (default HEAD)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each case and version")
    parser.add_argument("--work", default=os.path.join(ROOT, "out", "bench"))
    args = parser.parse_args()
    runs = os.path.join(args.work, "versions", "runs")
    os.makedirs(runs, exist_ok=True)
    walks = os.path.join(args.work, "versions", "walks-20k")
    walk, chosen = cases(args.work, walks)
    before, after = (subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", ref],
                                    capture_output=True, text=True, check=True).stdout.strip()
                     for ref in (args.before, args.after))
    trees = {"before": checkout(before, args.work), "after": checkout(after, args.work)}
    # the train cases' input (the same walks for both: same seed), walked by the first run here
    if not os.path.isdir(walks):
        timed(trees["after"], walk, walks, os.path.join(runs, "walks.log"))
    warm = next(argv for case, argv in chosen.items() if case.startswith("train sgns P=1"))
    for version, tree in trees.items():  # untimed: numba compiles each checkout's kernels once
        timed(tree, warm, os.path.join(runs, "out"), os.path.join(runs, f"warm-{version}.log"))
    seconds: dict[str, dict[str, list[float]]] = {case: {"before": [], "after": []}
                                                  for case in chosen}
    for run in range(args.runs):
        for case, argv in chosen.items():
            for version, tree in trees.items():
                output = os.path.join(runs, "out")
                took = timed(tree, argv, output, os.path.join(runs, f"{version}.log"))
                seconds[case][version].append(took)
                print(f"[{run + 1}/{args.runs}] {case}: {version} {took:.1f} s", file=sys.stderr,
                      flush=True)
    shutil.rmtree(os.path.join(runs, "out"), ignore_errors=True)

    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    command = "bench/versions.py " + " ".join(sys.argv[1:])
    lines = [f"# Before / after, {stamp}", "",
             f"Command: `{command}` (before: {before}, after: {after}; "
             f"{args.runs} alternating runs of each case, whole processes, local[2])", "",
             "| case | before s (median) | after s (median) | after / before | before runs | "
             "after runs |", "|---|---|---|---|---|---|"]
    for case, by in seconds.items():
        before, after = statistics.median(by["before"]), statistics.median(by["after"])
        lines.append(f"| {case} | {before:.1f} | {after:.1f} | {after / before:.3f} | "
                     f"{', '.join(f'{s:.1f}' for s in by['before'])} | "
                     f"{', '.join(f'{s:.1f}' for s in by['after'])} |")
    table = "\n".join(lines) + "\n"
    print(table)
    base = os.path.join(HERE, "results", f"versions-{stamp}")
    with open(base + ".md", "w") as handle:
        handle.write(table)
    with open(base + ".json", "w") as handle:
        json.dump({"command": command, "before": before, "after": after,
                   "seconds": seconds}, handle, indent=1)


if __name__ == "__main__":
    main()
