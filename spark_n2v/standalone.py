"""A Spark standalone cluster on loopback, for the tests and benchmarks that need what local mode
hides (code shipped to other processes, shuffles between JVMs, executors lost mid-job).

`Cluster` starts a master and workers from the pyspark package's bin/spark-class, each in its own
process group, and stops every process it started. `kill_busy_executor` SIGKILLs the executor JVM
that is running a task of a job whose Spark description matches, as a lost node would end it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


def _wait(condition, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, ValueError):  # not listening yet, or not answering JSON yet
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"{what} within {timeout:.0f} s")


class Cluster:
    """A master and its workers on loopback. Use as a context manager, or call stop()."""

    def __init__(self, scratch: str, python: str = sys.executable):
        import pyspark
        self.spark_class = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-class")
        self.scratch = scratch
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": python}
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self._start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(self.port), "--webui-port", str(self.ui_port)])
        _wait(self._master_state, 60, "the Spark master did not answer")

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(os.path.join(self.scratch, f"{name}.log"), "w") as log:
            process = subprocess.Popen([self.spark_class, *args], stdout=log,
                                       stderr=subprocess.STDOUT, env=self.env,
                                       start_new_session=True)
        self.processes.append(process)
        return process

    def _master_state(self) -> dict:
        return _get_json(f"http://127.0.0.1:{self.ui_port}/json/")

    def add_worker(self, memory: str, cores: int = 1) -> None:
        """Start a worker and wait until the master counts it alive."""
        k = len(self.workers)
        folder = os.path.join(self.scratch, f"worker-{k}")
        os.makedirs(folder, exist_ok=True)
        self.workers.append(self._start(f"worker-{k}", [
            "org.apache.spark.deploy.worker.Worker", "--cores", str(cores), "--memory", memory,
            "--host", "127.0.0.1", "--webui-port", str(free_port()), "--work-dir", folder,
            self.url]))
        _wait(lambda: sum(w["state"] == "ALIVE" for w in self._master_state()["workers"]) > k,
              60, f"worker {k} did not register with the master")

    def stop(self) -> None:
        """SIGTERM every process group started (a worker's executors are in its group), then
        SIGKILL what is left."""
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


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def executor_pids() -> dict[int, str]:
    """Executor JVMs on this machine: {pid: command line} (Linux /proc)."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            line = _cmdline(int(name))
            if EXECUTOR_CLASS in line:
                found[int(name)] = line
    return found


def kill_busy_executor(ui_port: int, description: str, timeout: float = 300,
                       every: bool = False) -> str:
    """Wait until a running job of the driver (its UI on `ui_port`) has `description` in its
    description and an executor runs one of its tasks; SIGKILL that executor's JVM and, with
    `every`, every other executor JVM of the application as well (the job's lost tasks then can
    only rerun on executors started after the kill). Returns the busy executor's id."""
    base = f"http://127.0.0.1:{ui_port}/api/v1/applications"

    def busy_executor() -> str | None:
        app = _get_json(base)[0]["id"]
        jobs = _get_json(f"{base}/{app}/jobs?status=running")
        if not any(description in (job.get("description") or job.get("name", ""))
                   and job["numActiveTasks"] > 0 for job in jobs):
            return None
        busy = [e["id"] for e in _get_json(f"{base}/{app}/executors")
                if e["id"] != "driver" and e["activeTasks"] > 0]
        return busy[0] if busy else None

    executor = _wait(busy_executor, timeout, f"no task of a job {description!r} ran", every=0.05)
    app = _get_json(base)[0]["id"]
    pids = [pid for pid, line in executor_pids().items()
            if f"--app-id {app} " in line and (every or f"--executor-id {executor} " in line)]
    if not pids:
        raise RuntimeError(f"executor {executor}'s JVM was not found")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return executor
