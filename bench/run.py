"""The walk-engine benchmark: our walk stage beside PecanPy SparseOTF on the same graphs, in one run.

Every measured command is a whole process (JVM start, reading, writing included), timed by wall
clock, with the peak memory of its whole process tree (JVM, Python driver and workers): the sum of
the processes' PSS, sampled from /proc every 0.2 s (PSS, not RSS: forked Python workers share pages
with their parent, which a sum of RSS would count more than once).
Prints a table and writes it, with the machine and versions, to bench/results/.

    make bench                         # everything (about an hour on 2 cores)
    .venv/bin/python bench/run.py --only planted,powerlaw --peer-timeout 600
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass

from graphs import ensure

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OURS = [sys.executable, "-m", "spark_n2v.cli"]
PEERS = os.path.join(ROOT, ".venv-peers", "bin", "python")
SUITES = ("planted", "powerlaw", "scaling", "e2e", "engines")


@dataclass
class Result:
    suite: str
    graph: str
    tool: str
    walks: str
    seconds: float | None   # None: did not finish within the timeout
    peak_gb: float
    steps: int
    prepare_s: float | None = None  # ours: the stages' own times, from the output's _run.json
    walk_s: float | None = None
    train_s: float | None = None

    @property
    def steps_per_s(self) -> float | None:
        return self.steps / self.seconds if self.seconds else None

    @property
    def walk_steps_per_s(self) -> float | None:
        return self.steps / self.walk_s if self.walk_s else None


def _pss(pid: int) -> int:
    """Proportional set size: resident bytes, shared pages divided among the processes sharing them
    (forked Python workers share their parent's pages; summing RSS would count those twice)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children() -> dict[int, list[int]]:
    """Each process's children, from one scan of /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(parent, []).append(int(entry))
    return children


def _tree_memory(root: int, children: dict[int, list[int]] | None = None) -> int:
    """Memory of a process and all its descendants: the sum of their PSS (from /proc)."""
    children = _children() if children is None else children
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _pss(pid)
        todo.extend(children.get(pid, []))
    return total


def measure(command: list[str], timeout: float, log_path: str, cwd: str = ROOT,
            env: dict[str, str] | None = None) -> tuple[float | None, float]:
    """(wall seconds or None on timeout/failure, peak GB of the process tree)."""
    peak = 0
    with open(log_path, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_memory(proc.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            code = None
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    if code != 0:
        if code is not None:
            print(f"  failed (exit {code}); see {log_path}", file=sys.stderr)
        return None, peak / 2**30
    return elapsed, peak / 2**30


def generate(kind: str, nodes: int, edges: int, work: str) -> str:
    return ensure(kind, os.path.join(work, "graphs", f"{kind}-{nodes}-{edges}"),
                  "--nodes", str(nodes), "--edges", str(edges))


def ours(folder: str, out: str, p: float, q: float, walks: int, length: int,
         train: bool = False, engine: str = "auto") -> list[str]:
    command = OURS + (["run", "--dim", "128", "--window", "10"] if train else ["walk"])
    return command + ["--edges", os.path.join(folder, "edges.parquet"), "--output", out,
                      "--overwrite", "--master", "local[2]", "--p", str(p), "--q", str(q),
                      "--num-walks", str(walks), "--walk-length", str(length),
                      "--engine", engine]


def stage_seconds(out: str) -> dict:
    """The stages' seconds from an output's _run.json ({} if the run did not finish)."""
    try:
        with open(os.path.join(out, "_run.json")) as handle:
            return json.load(handle).get("seconds", {})
    except (OSError, ValueError):
        return {}


def pecanpy(folder: str, out: str, p: float, q: float, walks: int, length: int,
            embed: bool = False) -> list[str]:
    # PecanPy's walk_length counts steps (a walk has walk_length + 1 nodes); ours counts nodes.
    return [PEERS, os.path.join(HERE, "peers", "pecanpy_walks.py"),
            os.path.join(folder, "edges.edg"), out, "--p", str(p), "--q", str(q),
            "--num-walks", str(walks), "--walk-length", str(length - 1), "--workers", "2"] + \
        (["--embed"] if embed else [])


def run_pair(suite: str, name: str, folder: str, nodes: int, walks: int, length: int,
             p: float, q: float, args, with_peer: bool = True, train: bool = False,
             engines: tuple[str, ...] = ("auto",)) -> list[Result]:
    steps = nodes * walks * (length - 1)
    label = f"{walks} x {length}, p={p} q={q}"
    work = os.path.join(args.work, "runs", f"{suite}-{name}".replace("/", "-").replace(" ", "_"))
    os.makedirs(work, exist_ok=True)
    results = []
    tools = [("spark-n2v" + (" run (walk + MLlib)" if train else " walk")
              + ("" if engine == "auto" else f" ({engine})"),
              ours(folder, os.path.join(work, f"ours-{engine}"), p, q, walks, length, train,
                   engine))
             for engine in engines]
    if train and args.skip_mllib:
        tools = []
    if train:
        tools.append(("spark-n2v run (walk + sgns)", ours(
            folder, os.path.join(work, "ours-sgns"), p, q, walks, length, train) + [
            "--trainer", "sgns"]))
    if with_peer and not args.no_peers:
        tools.append(("PecanPy SparseOTF" + (" + gensim" if train else ""),
                      pecanpy(folder, os.path.join(work, "peer.txt"), p, q, walks, length, train)))
    for tool, command in tools:
        print(f"[{suite}] {name}: {tool} ...", file=sys.stderr, flush=True)
        timeout = args.peer_timeout if "PecanPy" in tool else args.timeout
        log = os.path.join(work, tool.split()[0] + f"-{len(results)}.log")
        seconds, peak = measure(command, timeout, log)
        stages = stage_seconds(command[command.index("--output") + 1]) if "PecanPy" not in tool \
            else {}
        results.append(Result(suite, name, tool, label, seconds, peak, steps,
                              stages.get("prepare"), stages.get("walk"), stages.get("train")))
        shown = f"{seconds:.1f} s" if seconds else f"did not finish in {timeout:.0f} s"
        if stages:
            shown += f" (prepare {stages.get('prepare', 0):.1f} s, walk {stages.get('walk', 0):.1f} s)"
        print(f"  {shown}, peak {peak:.2f} GB", file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return results


def table(results: list[Result], peer_timeout: float) -> str:
    lines = ["| suite | graph | tool | walks | wall s | steps/s | prepare s | walk s | "
             "walk steps/s | train s | peak GB | time vs PecanPy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    peers = {(r.suite, r.graph): r for r in results if "PecanPy" in r.tool}
    for r in results:
        peer = peers.get((r.suite, r.graph))
        ratio = ""
        if peer is not None and r is not peer:
            if r.seconds and peer.seconds:
                ratio = f"{r.seconds / peer.seconds:.2f}x"
            elif r.seconds:
                ratio = f"< {r.seconds / peer_timeout:.2f}x (peer did not finish)"
        wall = f"{r.seconds:.1f}" if r.seconds else "DNF"
        rate = f"{r.steps_per_s / 1e6:.2f}M" if r.steps_per_s else "-"
        walk_rate = f"{r.walk_steps_per_s / 1e6:.2f}M" if r.walk_steps_per_s else "-"
        prepare = f"{r.prepare_s:.1f}" if r.prepare_s else "-"
        walk = f"{r.walk_s:.1f}" if r.walk_s else "-"
        train = f"{r.train_s:.1f}" if r.train_s else "-"
        lines.append(f"| {r.suite} | {r.graph} | {r.tool} | {r.walks} | {wall} | {rate} | "
                     f"{prepare} | {walk} | {walk_rate} | {train} | {r.peak_gb:.2f} | {ratio} |")
    return "\n".join(lines)


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60
                              ).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo")
               if line.startswith("MemTotal")) / 2**20
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    ours_versions = _version([sys.executable, "-c", "import pyspark, numpy, pyarrow; print("
                              "f'pyspark {pyspark.__version__}, numpy {numpy.__version__}, "
                              "pyarrow {pyarrow.__version__}')"])
    peer_versions = _version([PEERS, "-c", "import importlib.metadata as m; print(', '.join("
                              "f'{p} {m.version(p)}' for p in ('pecanpy', 'numba', 'gensim', "
                              "'numpy')))"]) if os.path.exists(PEERS) else "not installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem, 1),
            "python": platform.python_version(), "java": java.splitlines()[0] if java else "?",
            "ours": ours_versions, "peers": peer_versions,
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SUITES),
                        help=f"comma-separated suites out of {', '.join(SUITES)}")
    parser.add_argument("--peer-timeout", type=float, default=1200.0,
                        help="seconds before a peer run is called 'did not finish' (default 1200)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="limit for our runs")
    parser.add_argument("--no-peers", action="store_true", help="our runs only")
    parser.add_argument("--skip-mllib", action="store_true",
                        help="end to end: our run with the sgns trainer only (MLlib takes minutes)")
    parser.add_argument("--work", default=os.path.join(ROOT, "out", "bench"))
    args = parser.parse_args()
    suites = args.only.split(",")
    unknown = set(suites) - set(SUITES)
    if unknown:
        sys.exit(f"--only: unknown suite(s) {', '.join(sorted(unknown))}; use {', '.join(SUITES)}")
    if not args.no_peers and not os.path.exists(PEERS):
        sys.exit("the peers' virtualenv .venv-peers is missing: run `make bench` (it creates it) "
                 "or pass --no-peers")
    results: list[Result] = []
    if "planted" in suites:
        folder = generate("planted", 200_000, 2_000_000, args.work)
        nodes = _nodes(folder)
        results += run_pair("planted", "planted 200k/2M", folder, nodes, 10, 80, 0.5, 2.0, args)
        results += run_pair("planted", "planted 200k/2M p=q=1", folder, nodes, 10, 80, 1.0, 1.0,
                            args)
    if "powerlaw" in suites:
        folder = generate("powerlaw", 1_000_000, 10_000_000, args.work)
        nodes = _nodes(folder)
        results += run_pair("powerlaw", "Chung-Lu 1M/10M", folder, nodes, 1, 80, 0.5, 2.0, args)
    if "scaling" in suites:
        for edges in (1_000_000, 2_000_000, 5_000_000, 10_000_000):
            folder = generate("planted", edges // 10, edges, args.work)
            results += run_pair("scaling", f"planted {edges // 10 // 1000}k/{edges // 10**6}M",
                                folder, _nodes(folder), 10, 80, 0.5, 2.0, args, with_peer=False)
    if "e2e" in suites:
        # a small graph: fixed costs (JVM start, a Spark job per step of the store and per round)
        small = generate("planted", 1_500, 15_000, args.work)
        results += run_pair("e2e", "planted 1.5k/15k", small, _nodes(small), 10, 80, 1.0, 1.0,
                            args, train=True)
        folder = generate("planted", 20_000, 200_000, args.work)
        results += run_pair("e2e", "planted 20k/200k", folder, _nodes(folder), 10, 80, 1.0, 1.0,
                            args, train=True)
    if "engines" in suites:  # the two engines side by side (issue 14's targets)
        big = generate("planted", 1_000_000, 10_000_000, args.work)
        results += run_pair("engines", "planted 1M/10M", big, _nodes(big), 1, 80, 0.5, 2.0, args,
                            with_peer=False, engines=("sharded",))
        hubs = generate("powerlaw", 1_000_000, 10_000_000, args.work)
        results += run_pair("engines", "Chung-Lu 1M/10M", hubs, _nodes(hubs), 1, 80, 0.5, 2.0,
                            args, with_peer=False, engines=("sharded",))
        mid = generate("planted", 200_000, 2_000_000, args.work)
        results += run_pair("engines", "planted 200k/2M", mid, _nodes(mid), 10, 80, 0.5, 2.0,
                            args, engines=("replicated", "sharded"))
    report = table(results, args.peer_timeout)
    print(report)
    write_report("walk", "Walk benchmark", report, [asdict(r) for r in results])


def write_report(kind: str, title: str, report: str, results: list[dict], notes: str = "") -> None:
    """bench/results/<kind>-<stamp>.md (machine, versions, command, table) and .json beside it."""
    info = machine()
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    path = os.path.join(HERE, "results", f"{kind}-{stamp}.md")
    with open(path, "w") as handle:
        handle.write(f"# {title}, {info['date']}\n\n")
        handle.write("".join(f"- {k}: {v}\n" for k, v in info.items()) + "\n")
        handle.write(f"Command: `{' '.join(sys.argv)}`\n\n{notes}{report}\n")
    with open(path[:-3] + ".json", "w") as handle:
        json.dump({"machine": info, "results": results}, handle, indent=1)
    print(f"written: {os.path.relpath(path, ROOT)}", file=sys.stderr)


def _nodes(folder: str) -> int:
    """Nodes that have an edge (the generator may leave some ids unused)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    edges = pq.read_table(os.path.join(folder, "edges.parquet"))
    return len(pc.unique(pa.concat_arrays([edges.column("src").combine_chunks(),
                                           edges.column("dst").combine_chunks()])))


if __name__ == "__main__":
    main()
