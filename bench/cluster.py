"""Scale-out of the sharded engine on a real standalone cluster on loopback: 1 worker, then 2;
with --kill, the time a lost executor costs: the same walk on 2 workers, uninterrupted and with
one executor SIGKILLed in the middle of the walk (its walks checked identical).

Starts a Spark master and workers (1 core each) from the pyspark package's bin/spark-class, runs the
same `spark-n2v walk --engine sharded` against 1 worker and then 2, and reports the walk stage's
seconds (from _run.json), the speed-up, each worker's peak memory (PSS of the worker's whole
process tree: worker JVM, executor JVM, Python workers), sampled every second, and where each
run's step time goes (Spark's event log, bench/stage_profile.py). Every process it started is
stopped at the end.

    .venv/bin/python bench/cluster.py            # planted 200k/2M, 10 x 80 walks, p 0.5, q 2
    .venv/bin/python bench/cluster.py --kill     # the same walk, with a lost executor
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pyarrow.compute as pc
import pyarrow.parquet as pq
import stage_profile
from run import OURS, ROOT, _children, _tree_memory, generate, write_report

from spark_n2v.standalone import Cluster, free_port, kill_busy_executor


def run_walk(cluster: Cluster, edges: str, out: str, args, kill_at: int | None = None) -> dict:
    """One walk against the cluster: walk seconds, each worker's peak memory, the profile; with
    `kill_at`, a busy executor is SIGKILLed during that step."""
    events = out + ".events"
    os.makedirs(events)
    ui = free_port()
    command = OURS + ["walk", "--edges", edges, "--output", out, "--overwrite",
                      "--conf", f"spark.ui.port={ui}",
                      "--conf", "spark.eventLog.enabled=true", "--conf",
                      f"spark.eventLog.dir={events}", "--conf", "spark.eventLog.compress=false",
                      "--engine", "sharded", "--master", cluster.url, "--partitions",
                      str(args.partitions), "--num-walks", str(args.walks), "--walk-length",
                      str(args.length), "--p", "0.5", "--q", "2", "--seed", "1"]
    peaks = [0] * len(cluster.workers)
    done = threading.Event()

    def sample() -> None:  # once a second: the 2 cores are the workers' (and the driver's)
        while not done.is_set():
            children = _children()
            for k, worker in enumerate(cluster.workers):
                peaks[k] = max(peaks[k], _tree_memory(worker.pid, children))
            time.sleep(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    killed: dict = {}
    with open(out + ".log", "w") as log:
        driver = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env=cluster.env)
        if kill_at is not None:
            killed["executor"] = kill_busy_executor(ui, f"spark-n2v walk: step {kill_at} of")
            killed["at_s"] = round(time.perf_counter() - started, 1)
        if driver.wait() != 0:
            raise SystemExit(f"the walk failed: see {out}.log")
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    with open(os.path.join(out, "_run.json")) as handle:
        record = json.load(handle)
    return {"workers": len(cluster.workers), "wall_s": round(wall, 1),
            "prepare_s": round(record["seconds"]["prepare"], 1),
            "walk_s": round(record["seconds"]["walk"], 1),
            "worker_peak_gb": [round(p / 2**30, 2) for p in peaks], "killed": killed,
            "profile": stage_profile.summarise(events)}


def same_walks(a: str, b: str) -> bool:
    tables = [pq.read_table(path).sort_by("walk_id") for path in (a, b)]
    return tables[0].num_rows == tables[1].num_rows and all(
        pc.all(pc.equal(x.combine_chunks(), y.combine_chunks())).as_py() is not False
        for x, y in ((tables[0]["walk_id"], tables[1]["walk_id"]),
                     (pc.list_flatten(tables[0]["walk"]), pc.list_flatten(tables[1]["walk"]))))


def kill_report(cluster: Cluster, edges: str, scratch: str, args) -> None:
    """The 2-worker walk uninterrupted, then with an executor lost at mid-walk."""
    while len(cluster.workers) < 2:
        cluster.add_worker(args.worker_memory)
    rows = []
    for name, kill_at in (("uninterrupted", None), ("killed", args.length // 2)):
        print(f"[cluster] 2 workers, {name} ...", file=sys.stderr, flush=True)
        rows.append(run_walk(cluster, edges, os.path.join(scratch, name), args, kill_at))
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    same = same_walks(os.path.join(scratch, "uninterrupted"), os.path.join(scratch, "killed"))
    lost = rows[1]["walk_s"] - rows[0]["walk_s"]
    lines = ["| run (2 workers, 1 core each) | wall s | walk s | executor killed at | "
             "peak GB per worker |", "|---|---|---|---|---|"]
    for name, row in zip(("uninterrupted", "one executor SIGKILLed"), rows):
        at = f"step {args.length // 2}, {row['killed']['at_s']} s" if row["killed"] else ""
        lines.append(f"| {name} | {row['wall_s']} | {row['walk_s']} | {at} | "
                     f"{', '.join(str(p) for p in row['worker_peak_gb'])} |")
    lines += ["", f"Time lost to the kill: {lost:.1f} s of walk ({lost / rows[0]['walk_s']:.0%}); "
              f"walks identical to the uninterrupted run's: {same}."]
    for name, row in zip(("uninterrupted", "killed"), rows):
        lines += ["", stage_profile.table(row["profile"], name)]
    report = "\n".join(lines)
    print(report)
    write_report("cluster-kill", "A lost executor in the sharded engine's walk (standalone "
                 "cluster, loopback)", report, rows + [{"lost_s": round(lost, 1), "identical": same}],
                 notes=f"planted {args.nodes}/{args.edges}, {args.walks} x {args.length} walks, "
                       f"p 0.5, q 2, {args.partitions} shards, --engine sharded; the executor "
                       f"running a task of step {args.length // 2} is SIGKILLed; its worker "
                       "starts a new one.\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200_000)
    parser.add_argument("--edges", type=int, default=2_000_000)
    parser.add_argument("--walks", type=int, default=10)
    parser.add_argument("--length", type=int, default=80)
    parser.add_argument("--partitions", type=int, default=4, help="shards (default 4)")
    parser.add_argument("--worker-memory", default="6g")
    parser.add_argument("--work", default=os.path.join(ROOT, "out", "bench"))
    parser.add_argument("--kill", action="store_true",
                        help="measure the time a lost executor costs (2 workers) instead")
    args = parser.parse_args()
    folder = generate("planted", args.nodes, args.edges, args.work)
    edges = os.path.join(folder, "edges.parquet")
    scratch = tempfile.mkdtemp(prefix="spark-n2v-cluster-", dir=args.work)
    cluster = Cluster(scratch)
    rows = []
    try:
        if args.kill:
            kill_report(cluster, edges, scratch, args)
            return
        for workers in (1, 2):
            while len(cluster.workers) < workers:
                cluster.add_worker(args.worker_memory)
            print(f"[cluster] {workers} worker(s) ...", file=sys.stderr, flush=True)
            rows.append(run_walk(cluster, edges, os.path.join(scratch, f"walks-{workers}"), args))
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    speedup = rows[0]["walk_s"] / rows[1]["walk_s"]
    lines = ["| workers (1 core each) | wall s | prepare s | walk s | walk speed-up | "
             "peak GB per worker |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['workers']} | {row['wall_s']} | {row['prepare_s']} | "
                     f"{row['walk_s']} | {rows[0]['walk_s'] / row['walk_s']:.2f}x | "
                     f"{', '.join(str(p) for p in row['worker_peak_gb'])} |")
    for row in rows:
        lines += ["", stage_profile.table(row["profile"], f"{row['workers']} worker(s)")]
    report = "\n".join(lines)
    print(report)
    write_report("cluster", "Sharded engine scale-out on a standalone cluster (loopback)", report,
                 rows + [{"walk_speedup": round(speedup, 2)}],
                 notes=f"planted {args.nodes}/{args.edges}, {args.walks} x {args.length} walks, "
                       f"p 0.5, q 2, {args.partitions} shards, --engine sharded, driver in client "
                       "mode on the same machine.\n\n")


if __name__ == "__main__":
    main()
