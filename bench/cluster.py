"""Scale-out of the sharded engine on a real standalone cluster on loopback: 1 worker, then 2.

Starts a Spark master and workers (1 core each) from the pyspark package's bin/spark-class, runs the
same `spark-n2v walk --engine sharded` against 1 worker and then 2, and reports the walk stage's
seconds (from _run.json), the speed-up, each worker's peak memory (PSS of the worker's whole
process tree: worker JVM, executor JVM, Python workers), sampled every second, and where each
run's step time goes (Spark's event log, bench/stage_profile.py). Every process it started is
stopped at the end.

    .venv/bin/python bench/cluster.py            # planted 200k/2M, 10 x 80 walks, p 0.5, q 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import stage_profile
from run import OURS, ROOT, _children, _tree_memory, generate, write_report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A master and its workers on loopback, each its own process group (stopped as a whole)."""

    def __init__(self, scratch: str):
        import pyspark
        self.spark_class = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-class")
        self.scratch = scratch
        self.port = _free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
        self.env = env
        self._start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(self.port), "--webui-port", str(_free_port())])
        self._wait_for_port(self.port)

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(os.path.join(self.scratch, f"{name}.log"), "w")
        process = subprocess.Popen([self.spark_class, *args], stdout=log, stderr=subprocess.STDOUT,
                                   env=self.env, start_new_session=True)
        self.processes.append(process)
        return process

    @staticmethod
    def _wait_for_port(port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.3)
        raise SystemExit(f"the Spark master did not listen on port {port} in {timeout:.0f} s")

    def add_worker(self, memory: str) -> None:
        k = len(self.workers)
        folder = os.path.join(self.scratch, f"worker-{k}")
        os.makedirs(folder, exist_ok=True)
        self.workers.append(self._start(f"worker-{k}", [
            "org.apache.spark.deploy.worker.Worker", "--cores", "1", "--memory", memory,
            "--host", "127.0.0.1", "--webui-port", str(_free_port()), "--work-dir", folder,
            self.url]))
        time.sleep(5)  # registration with the master

    def stop(self) -> None:
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_walk(cluster: Cluster, edges: str, out: str, args) -> dict:
    """One walk against the cluster: walk seconds, each worker's peak memory, the profile."""
    events = out + ".events"
    os.makedirs(events)
    command = OURS + ["walk", "--edges", edges, "--output", out, "--overwrite",
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
    with open(out + ".log", "w") as log:
        subprocess.run(command, check=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                       env=cluster.env)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    with open(os.path.join(out, "_run.json")) as handle:
        record = json.load(handle)
    return {"workers": len(cluster.workers), "wall_s": round(wall, 1),
            "prepare_s": round(record["seconds"]["prepare"], 1),
            "walk_s": round(record["seconds"]["walk"], 1),
            "worker_peak_gb": [round(p / 2**30, 2) for p in peaks],
            "profile": stage_profile.summarise(events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200_000)
    parser.add_argument("--edges", type=int, default=2_000_000)
    parser.add_argument("--walks", type=int, default=10)
    parser.add_argument("--length", type=int, default=80)
    parser.add_argument("--partitions", type=int, default=4, help="shards (default 4)")
    parser.add_argument("--worker-memory", default="6g")
    parser.add_argument("--work", default=os.path.join(ROOT, "out", "bench"))
    args = parser.parse_args()
    folder = generate("planted", args.nodes, args.edges, args.work)
    edges = os.path.join(folder, "edges.parquet")
    scratch = tempfile.mkdtemp(prefix="spark-n2v-cluster-", dir=args.work)
    cluster = Cluster(scratch)
    rows = []
    try:
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
