"""The run lifecycle: a run's output folder, its record (`_run.json`) and its resume points.

A command's output appears only when complete: tables are written to a hidden staging folder beside
the target (`.NAME.incomplete`) and moved into place at the end. Scratch work goes to `.NAME.work`
(or, given a work root, `ROOT/.NAME-HASH.work`, HASH naming the output: scratch on HDFS for an
output on an object store), with `_job.json` (the command, its parameters and its inputs'
fingerprints) and the resume points of the work done so far. If a run dies (SIGKILL, a lost
driver), the same command finds both folders and resumes: each piece of work (the sharded engine's steps, the replicated engine's
walk batches, `run`'s walk stage) continues after its last resume point. Other parameters or
changed inputs are refused, or with overwrite start afresh. Paths go through Hadoop's FileSystem:
local disks, HDFS, object stores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from pyspark.sql import DataFrame, SparkSession

from spark_n2v import __version__
from spark_n2v.errors import UserError, first_line
from spark_n2v.io.files import HadoopFiles, is_local, json_bytes, local_path
from spark_n2v.progress import finish_live_line
from spark_n2v.redaction import pattern_of, redact_value

log = logging.getLogger(__name__)
RUN_FILE = "_run.json"  # the run's record, in its output: on object stores the sign it is complete


@dataclass
class RunRecord:
    """What `_run.json` holds: the command, parameters, inputs, graph statistics, time per stage,
    counts, measured quality, versions."""

    command: str
    parameters: dict = field(default_factory=dict)
    graph: dict | None = None
    seconds: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    engine: str | None = None  # the walk engine used
    quality: dict = field(default_factory=dict)  # measured quality (recall, F1, AUC)
    inputs: dict = field(default_factory=dict)  # input fingerprints by name

    @contextlib.contextmanager
    def timed(self, stage: str, since: float | None = None) -> Iterator[None]:
        """Time a block into seconds[stage] when it finishes; `since` (a time.perf_counter()
        reading) counts work done before the block as the stage's too."""
        started = time.perf_counter() if since is None else since
        yield
        self.seconds[stage] = round(time.perf_counter() - started, 2)

    def walk_part(self) -> dict:
        """What the walk stage recorded: kept with the walks, for a resumed `run`."""
        return {"graph": self.graph, "engine": self.engine, "seconds": dict(self.seconds),
                "counts": dict(self.counts)}

    def restore(self, part: dict) -> None:
        self.graph, self.engine = part["graph"], part["engine"]
        self.seconds.update(part["seconds"])
        self.counts.update(part["counts"])

    def as_dict(self, spark: SparkSession) -> dict:
        """What `_run.json` holds, without secrets (redaction.py)."""
        import numpy
        import pyarrow
        import pyspark
        return {**redact_value(asdict(self), pattern_of(spark)), "versions": {
            "spark_n2v": __version__, "pyspark": pyspark.__version__, "spark": spark.version,
            "python": platform.python_version(), "numpy": numpy.__version__,
            "pyarrow": pyarrow.__version__}}


def file_fingerprints(spark: SparkSession, paths: dict[str, str]) -> dict:
    """The input files' fingerprints (HadoopFiles.fingerprint), by input name."""
    found = {}
    for name, path in paths.items():
        try:
            found[name] = HadoopFiles(spark, path).fingerprint(path)
        except Exception as exc:  # noqa: BLE001 - a remote path Spark cannot list
            raise UserError("{" + name.lstrip("-") + "} {path}: cannot list its files ({why})",
                            path=path, why=first_line(exc)) from None
    return found


def frame_fingerprints(frames: dict[str, DataFrame]) -> dict:
    """A DataFrame stands for its query plan's hash (the same query over the same files hashes the
    same in a new session, so a rerun resumes) and the files it reads (a table written again at
    the same path has new part files: a rerun starts afresh)."""
    return {name: {"semantic_hash": df.semanticHash(), "files": sorted(df.inputFiles())}
            for name, df in frames.items()}


class ResumePoints:
    """The parts of one piece of work written so far, in order: a JSON file in its work folder
    lists each part (name and what it recorded) once the part is whole, and a rerun continues after
    the last. Parts are Parquet folders beside the file (`save`) or work recorded elsewhere
    (`mark`)."""

    def __init__(self, spark: SparkSession, folder: str, state: str):
        self.files = HadoopFiles(spark, folder)
        self.folder = folder
        self.state = f"{folder}/{state}"

    def done(self) -> list[dict]:
        """[{"name": ..., **info}] of the parts finished, in the order they finished."""
        return (self.files.read_json(self.state) or {}).get("done", [])

    def find(self, name: str) -> dict | None:
        return next((part for part in self.done() if part["name"] == name), None)

    def path(self, name: str) -> str:
        return f"{self.folder}/{name}"

    def mark(self, name: str, **info: Any) -> None:
        """Record part `name` as finished (after its work is safely written)."""
        done = [part for part in self.done() if part["name"] != name]
        self.files.write_json(self.state, {"done": [*done, {"name": name, **info}]})

    def save(self, name: str, frame: DataFrame, options: dict | None = None, **info: Any) -> str:
        """Write `frame` as the Parquet folder of part `name`, then mark it. Returns its path."""
        path = self.path(name)
        frame.write.mode("overwrite").options(**(options or {})).parquet(path)
        self.mark(name, **info)
        return path


def check_output_free(path: str, overwrite: bool, exists: bool | None = None) -> None:
    """An existing output is never touched without overwrite (checked before any work)."""
    if exists is None:
        if not is_local(path):
            return  # checked again once Spark can see the file system
        exists = os.path.exists(local_path(path))
    if exists and not overwrite:
        raise UserError("{output} {path} already exists; pass {overwrite=True} to replace it, or "
                        "choose another path", path=path)


def check_output_writable(path: str) -> None:
    """The output's folder can be written (local paths; checked before any work): nothing is
    created to find out but a probe file, removed at once, in its nearest existing folder."""
    if not is_local(path):
        return
    folder = os.path.dirname(os.path.abspath(local_path(path)))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError("{output} {path}: {existing} is a file, so no folder can be made in it; "
                        "choose another output path", path=path, existing=existing)
    try:
        handle, probe = tempfile.mkstemp(prefix=".spark-n2v-probe-", dir=existing)
        os.close(handle)
        os.remove(probe)
    except OSError as exc:
        raise UserError("{output} {path}: cannot write in {existing} ({why}); choose another "
                        "output path or make that folder writable", path=path, existing=existing,
                        why=exc.strerror or exc) from None


class RunLock:
    """Who is writing an output: `.NAME.lock` beside it, created only if absent (HadoopFiles.
    create_new: atomic on local disks, HDFS and S3), holding the host, pid and start time of the
    run, whose modification time that run refreshes every HEARTBEAT seconds (on object stores,
    which cannot set one, by writing the lock again while it is still its own). A second run on
    the same output stops with a line naming the first; a lock whose run is dead (on this host:
    no such process; elsewhere: no heartbeat for STALE seconds) is taken over."""

    HEARTBEAT, STALE = 20.0, 120.0

    def __init__(self, files: HadoopFiles, path: str):
        self.files, self.path = files, path
        self.owner = {"host": platform.node(), "pid": os.getpid(), "started": _process_start(),
                      "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, output: str) -> None:
        for _ in range(3):  # created, or taken over from a dead run, or refused
            if self._create():
                self._thread = threading.Thread(target=self._beat, name="spark-n2v lock",
                                                daemon=True)
                self._thread.start()
                return
            holder = self.files.read_json(self.path) or {}  # {}: being written this instant
            if self._alive(holder):
                raise UserError("{output} {path} is being written by another run (host {host}, "
                                "pid {pid}, since {since}); wait for it to finish or stop it, "
                                "then run again", path=output, host=holder.get("host"),
                                pid=holder.get("pid"), since=holder.get("since"))
            log.warning("taking over %s from a run that is no longer running (%s)", self.path,
                        holder)
            self.files.delete(self.path)
        raise UserError("{output} {path}: could not take its lock {lock}", path=output,
                        lock=self.path)

    def _create(self) -> bool:
        return self.files.create_new(self.path, json_bytes(self.owner))

    def _alive(self, holder: dict) -> bool:
        if holder.get("host") == self.owner["host"] and holder.get("started") is not None:
            pid = holder.get("pid")
            return isinstance(pid, int) and _process_start(pid) == holder.get("started")
        try:
            beat = self.files.fs.getFileStatus(self.files.path(self.path)).getModificationTime()
        except Exception:  # noqa: BLE001 - gone since: its run ended, try again
            return False
        return time.time() - beat / 1000 < self.STALE

    def _beat(self) -> None:
        while not self._stop.wait(self.HEARTBEAT):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - the session is closing; the run ends soon
                return

    def beat(self) -> None:
        """Refresh the lock's modification time."""
        if not self.files.object_store:
            self.files.fs.setTimes(self.files.path(self.path), int(time.time() * 1000), -1)
        elif self.files.read_json(self.path) == self.owner:  # not taken over (we stalled)
            self.files.write_bytes(self.path, json_bytes(self.owner))

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if self.files.read_json(self.path) == self.owner:  # else another run's, by now
                self.files.delete(self.path)
            self._thread = None


def _process_start(pid: int | None = None) -> str | None:
    """A process's start time as the kernel counts it (Linux /proc), or None if there is no such
    process: a pid reused by a later process has another start time."""
    pid = pid or os.getpid()
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        pass
    try:  # no /proc (macOS): the pid alone
        os.kill(pid, 0)
        return "running"
    except OSError:
        return None


class OutputPath:
    """An output folder that appears only when complete, and work that survives a crash (see the
    module's docstring). `resumed` says whether an unfinished run of the same job was found."""

    def __init__(self, spark: SparkSession, path: str, overwrite: bool, job: dict,
                 work_root: str | None = None):
        self.files = HadoopFiles(spark, path)
        self.target = self.files.path(path)
        self.path = path
        self.overwrite = overwrite
        check_output_free(path, overwrite, exists=self.files.exists(path))
        check_output_writable(path)
        parent, name = self.target.getParent(), self.target.getName()
        self.staging = str(self.files.path(f"{parent}/.{name}.incomplete"))
        if work_root is None:
            self.work = self.files.qualify(f"{parent}/.{name}.work")
        else:
            digest = hashlib.sha256(self.files.qualify(path).encode()).hexdigest()[:12]
            work = f"{work_root.rstrip('/')}/.{name}-{digest}.work"
            self.work = HadoopFiles(spark, work).qualify(work)
        self.work_files = HadoopFiles(spark, self.work)
        self.lock = RunLock(self.files, str(self.files.path(f"{parent}/.{name}.lock")))
        self.lock.acquire(path)
        try:
            self.resumed = self._claim(job)
        except BaseException:
            self.lock.release()
            raise

    def _claim(self, job: dict) -> bool:
        """Resume the unfinished work of the same job, else clear the folders."""
        found = self.work_files.read_json(f"{self.work}/_job.json")
        if found == job:
            log.info("resuming the unfinished run in %s (same command and inputs)", self.work)
            return True
        if found is not None and not self.overwrite:
            raise UserError("{work} holds an unfinished run of {path} with other parameters or "
                            "inputs ({difference}); rerun it as it was to resume it, or pass "
                            "{overwrite=True} to start afresh", work=self.work, path=self.path,
                            difference=_first_difference(found, job))
        self.files.delete(self.staging)
        self.work_files.delete(self.work)
        self.work_files.write_json(f"{self.work}/_job.json", job)
        return False

    def sub(self, name: str) -> str:
        return f"{self.staging}/{name}"

    def write_json(self, name: str, payload: dict) -> None:
        self.files.write_bytes(self.sub(name), json_bytes(payload))

    def write_text(self, name: str, lines: DataFrame) -> None:
        """A one-column DataFrame as the single text file `name`, lines in the DataFrame's order
        (one task writes it: coalesce keeps a sort's order), without passing through the driver."""
        parts = f"{self.staging}/.{name}.parts"  # beside its file: a rename on its file system
        lines.coalesce(1).write.mode("overwrite").text(parts)
        written = [n for n in self.files.names(parts) if n.startswith("part-")]
        if len(written) != 1 or not self.files.rename(f"{parts}/{written[0]}", self.sub(name)):
            raise UserError("could not write {name} into {staging}", name=name,
                            staging=self.staging)
        self.files.delete(parts)

    def put_file(self, local: str, name: str) -> None:
        """Copy a file made on the driver's disk (a picture) into the staging folder."""
        self.files.fs.copyFromLocalFile(False, True, self.files.path(os.path.abspath(local)),
                                        self.files.path(self.sub(name)))

    def commit(self) -> None:
        if self.files.exists(self.path):
            if not self.overwrite:  # appeared while we worked: leave it alone
                raise UserError("output {path} appeared during the run; pass {overwrite=True} to "
                                "replace it (the finished work is at {staging})", path=self.path,
                                staging=self.staging)
            self.files.delete(self.path)
        # On an object store the rename copies object by object: _run.json goes last, so an
        # output with a _run.json is complete there too.
        held = f"{self.staging}.{RUN_FILE}" if self.files.object_store else None
        if held is not None:
            self.files.rename(self.sub(RUN_FILE), held)
        if not self.files.rename(self.staging, self.path):
            raise UserError("could not move {staging} to {path}", staging=self.staging,
                            path=self.path)
        if held is not None:
            self.files.rename(held, f"{self.path}/{RUN_FILE}")
        self.work_files.delete(self.work)

    def abort(self) -> None:
        """Forget the run (input errors: nothing to resume)."""
        self.work_files.delete(self.work)
        self.files.delete(self.staging)


def _first_difference(old: dict, new: dict, prefix: str = "") -> str:
    """The first setting that differs between two job descriptions, for the refusal message."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = _first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key}: {a!r} then, {b!r} now"
    return ""


@contextlib.contextmanager
def staged_run(spark: SparkSession, path: str, overwrite: bool, job_name: str, record: RunRecord,
               work_root: str | None = None) -> Iterator[OutputPath]:
    """The output folder of one command (`job_name`: the stage, or the API call), resumable:
    yields it for the stage to fill; on success writes _run.json and moves it into place. Bad input
    (UserError) forgets the run; anything else (a lost executor, a kill) keeps the finished work
    for a rerun."""
    # what a rerun must match to resume this run's work (JSON's view: tuples become lists)
    job = json.loads(json.dumps(redact_value(
        {"command": job_name, "parameters": record.parameters, "inputs": record.inputs},
        pattern_of(spark))))
    out = OutputPath(spark, path, overwrite, job, work_root)
    try:
        try:
            with record.timed("total"):
                yield out
        except UserError:
            out.abort()  # bad input: nothing to resume, and nothing half-written is left behind
            raise
        except BaseException:
            finish_live_line()
            print(f"spark-n2v: the run stopped; its finished steps are kept in {out.work}: rerun "
                  "the same command to resume (--overwrite with other parameters starts afresh)",
                  file=sys.stderr)
            raise
        out.write_json(RUN_FILE, record.as_dict(spark))
        out.commit()
    finally:
        out.lock.release()
