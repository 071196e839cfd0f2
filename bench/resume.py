"""Kill and resume at benchmark size: a walk stage of over a minute, SIGKILLed midway, rerun with
the same command, compared with an uninterrupted run of the same command (walks must be equal).

    .venv/bin/python bench/resume.py [--kill-after-step 40]

Graph: the planted 20k-node / 200k-edge benchmark graph (bench/graphs.py), sharded engine,
10 x 80 walks, p = 0.5, q = 2 (every step is a resume point). Writes bench/results/resume-*.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq

from run import OURS, ROOT, write_report

GRAPH_ARGS = ["--nodes", "20000", "--edges", "200000"]


def _walk(edges: str, output: str) -> list[str]:
    return OURS + ["walk", "--edges", edges, "--output", output, "--engine", "sharded",
                   "--p", "0.5", "--q", "2", "--seed", "1", "--master", "local[2]"]


def _timed(command: list[str], log: str) -> float:
    started = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run(command, check=True, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-after-step", type=int, default=40)
    parser.add_argument("--work", default=os.path.join(ROOT, "out", "bench", "resume"))
    args = parser.parse_args()
    graph = os.path.join(ROOT, "out", "bench", "graphs", "planted-20000-200000")
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from graphs import ensure
    ensure("planted", graph, *GRAPH_ARGS)
    edges = os.path.join(graph, "edges.parquet")
    os.makedirs(args.work, exist_ok=True)
    whole, resumed = os.path.join(args.work, "whole"), os.path.join(args.work, "resumed")
    for path in (whole, resumed):
        subprocess.run(["rm", "-rf", path, os.path.join(args.work, ".resumed.work"),
                        os.path.join(args.work, ".resumed.incomplete")], check=True)

    print("[resume] uninterrupted run ...", file=sys.stderr, flush=True)
    whole_s = _timed(_walk(edges, whole), os.path.join(args.work, "whole.log"))

    print(f"[resume] run killed after step {args.kill_after_step} ...", file=sys.stderr, flush=True)
    state = os.path.join(args.work, ".resumed.work", "_walk.json")
    started = time.perf_counter()
    with open(os.path.join(args.work, "killed.log"), "w") as handle:
        process = subprocess.Popen(_walk(edges, resumed), cwd=ROOT, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        step = 0
        while step < args.kill_after_step:
            if process.poll() is not None:
                sys.exit("the walk ended before it could be killed: lower --kill-after-step")
            time.sleep(0.2)
            try:
                step = len(json.load(open(state))["done"])
            except (FileNotFoundError, ValueError, IndexError):
                continue
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_s = time.perf_counter() - started
    visible = os.path.exists(resumed)

    print("[resume] rerun of the same command ...", file=sys.stderr, flush=True)
    rerun_log = os.path.join(args.work, "rerun.log")
    rerun_s = _timed(_walk(edges, resumed), rerun_log)
    resumed_at = [line for line in open(rerun_log) if "resuming after step" in line]

    a = pq.read_table(whole).sort_by("walk_id")
    b = pq.read_table(resumed).sort_by("walk_id")
    equal = a.num_rows == b.num_rows and a.column("walk_id").equals(b.column("walk_id")) \
        and a.column("walk").equals(b.column("walk"))
    left = [n for n in os.listdir(args.work) if n.startswith(".")]
    rows = [{"uninterrupted_s": round(whole_s, 1), "killed_after_s": round(killed_s, 1),
             "killed_after_step": step, "output_visible_after_kill": visible,
             "rerun_s": round(rerun_s, 1), "resume_line": resumed_at[0].strip() if resumed_at else None,
             "walks": a.num_rows, "walks_equal": equal, "hidden_folders_left": left}]
    report = "\n".join(f"- {k}: {v}" for k, v in rows[0].items())
    print(report)
    write_report("resume", "Kill and resume (walk stage, sharded engine)", report, rows,
                 notes="planted 20k/200k, 10 x 80 walks, p 0.5, q 2, "
                       "local[2]; the killed run got SIGKILL (its whole process group, JVM "
                       "included) once its resume file said the given step was written.\n\n")


if __name__ == "__main__":
    main()
