"""File systems: Hadoop's on the driver (local disk, HDFS, object stores, as Spark sees them) for
the bookkeeping beside the tables, and pyarrow's local one in Python tasks (the trainer's tables
and token files, where the work folder is on local disk). Paths are Hadoop-style: plain or file:
for local disk, else a URI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from typing import Iterator
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import SparkSession


def is_local(path: str) -> bool:
    return urlparse(path).scheme in ("", "file")


def local_path(path: str) -> str:
    return urlparse(path).path if path.startswith("file:") else path


def data_files(path: str) -> list[str]:
    """A local file, or the data files of a local folder and its sub-folders (partitions such as
    date=2026-12-01/), in name order: names starting with . or _ (_SUCCESS, .crc, staging folders)
    and empty files are not data."""
    path = local_path(path)
    if os.path.isfile(path):
        return [path]
    found = []
    for folder, subfolders, names in os.walk(path):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith((".", "_")))
        for name in sorted(names):
            file = os.path.join(folder, name)
            if not name.startswith((".", "_")) and os.path.isfile(file) and os.path.getsize(file):
                found.append(file)
    return sorted(found)


def json_bytes(payload: dict) -> bytes:
    """Our JSON side files (_run.json, metrics.json, work-folder state): sorted, indented."""
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode("utf-8")


# Object stores reached through Hadoop connectors: no atomic rename (a folder's rename copies
# object by object) and no modification time to set; what S3A (3.4.2+) offers instead is a
# create that fails if the object exists (If-None-Match).
OBJECT_STORES = ("s3a", "s3", "s3n", "gs", "oss", "cos", "cosn", "obs")
CONDITIONAL_CREATE = "fs.option.create.conditional.overwrite"


class HadoopFiles:
    """Small files and folders through Hadoop's FileSystem (local disk, HDFS, object stores): the
    driver's bookkeeping beside the tables Spark writes."""

    def __init__(self, spark: SparkSession, path: str):
        self._jvm = spark.sparkContext._jvm
        self._context = spark.sparkContext._jsc.sc()
        self.fs = self.path(path).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        self.fs.setWriteChecksum(False)  # no .crc files beside _run.json on local disks

    def path(self, path: str):
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def qualify(self, path: str) -> str:
        """file:/abs/..., hdfs://...: Python tasks open such paths themselves, from their own cwd."""
        return str(self.fs.makeQualified(self.path(path)))

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self.path(path)))

    @property
    def object_store(self) -> bool:
        return str(self.fs.getScheme()) in OBJECT_STORES

    def create_new(self, path: str, data: bytes) -> bool:
        """Write a small file only if there is none: False if there was. Atomic on local disks
        and HDFS (create without overwrite) and on object stores that honour S3's conditional
        create (If-None-Match: S3A 3.4.2+, which fails the write at close())."""
        try:
            if self.object_store:
                stream = self.fs.createFile(self.path(path)).must(CONDITIONAL_CREATE, True) \
                    .build()
            else:
                stream = self.fs.create(self.path(path), False)
            try:
                stream.write(bytearray(data))
            finally:
                stream.close()
        except Exception as exc:  # noqa: BLE001 - Py4JJavaError: the Java exception's name
            if any(name in str(exc) for name in ("FileAlreadyExistsException",
                                                 "RemoteFileChangedException")):
                return False
            raise
        return True

    def delete(self, path: str) -> None:
        """Delete a file or folder, and forget the folders in it shipped to the executors."""
        self.fs.delete(self.path(path), True)
        self._forget(self.qualify(path))

    def ship(self, folder: str, attempts: int = 3) -> None:
        """Ship a folder to every executor (SparkContext.addFile, recursive): each fetches it
        through Hadoop before its next task. Spark registers a Hadoop folder before the driver
        fetches it, and every executor fetches every registered folder before its first task,
        for the rest of the application: a folder whose fetch failed (an object store listing
        a prefix a moment after its objects were deleted) or that was deleted since would fail
        every later task. So a failed fetch is forgotten and tried again, and delete() forgets
        the shipped folders it deletes."""
        folder = self.qualify(folder)  # Spark's key for it: what _forget compares
        for attempt in range(attempts):
            try:
                self._context.addFile(folder, True)
                return
            except Exception:
                self._forget(folder)
                if attempt == attempts - 1:
                    raise
                time.sleep(2 ** attempt)

    def _forget(self, prefix: str) -> None:
        """Unregister the shipped folders at or under prefix (Spark has no public call for it:
        this edits SparkContext.addedFiles, per job-artifact session, key URI -> timestamp)."""
        prefix = prefix.rstrip("/")
        sessions = self._context.addedFiles().values().iterator()
        while sessions.hasNext():
            shipped = sessions.next()
            keys, names = shipped.keys().iterator(), []
            while keys.hasNext():
                names.append(keys.next())
            for key in names:
                if key.rstrip("/") == prefix or key.startswith(prefix + "/"):
                    shipped.remove(key)

    def rename(self, source: str, target: str) -> bool:
        """Move a file or folder; between two file systems (a work folder elsewhere than the
        output), a copy and a delete."""
        parent = self.path(target).getParent()
        source_fs = self.path(source).getFileSystem(self.fs.getConf())
        target_fs = self.path(target).getFileSystem(self.fs.getConf())
        if parent is not None:
            target_fs.mkdirs(parent)
        if source_fs.getUri().equals(target_fs.getUri()):
            return bool(source_fs.rename(self.path(source), self.path(target)))
        return bool(self._jvm.org.apache.hadoop.fs.FileUtil.copy(
            source_fs, self.path(source), target_fs, self.path(target), True, self.fs.getConf()))

    def copy(self, source: str, target: str) -> None:
        """Copy a file or a folder (Hadoop's FileUtil: no Spark job), replacing the target."""
        self.delete(target)
        util = self._jvm.org.apache.hadoop.fs.FileUtil
        source_fs = self.path(source).getFileSystem(self.fs.getConf())
        if not util.copy(source_fs, self.path(source), self.fs, self.path(target), False,
                         self.fs.getConf()):
            raise OSError(f"could not copy {source} to {target}")

    def names(self, folder: str) -> list[str]:
        """The entries of a folder, in name order (none if it does not exist)."""
        if not self.exists(folder):
            return []
        return sorted(str(f.getPath().getName()) for f in self.fs.listStatus(self.path(folder)))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a small file (replacing one there)."""
        stream = self.fs.create(self.path(path), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def write_json(self, path: str, payload: dict) -> None:
        """Replace a JSON file so that a reader finds the old or the new one, whole: written
        beside, then renamed (read_json falls back to the beside copy if killed in between)."""
        self.write_bytes(path + ".next", json_bytes(payload))
        self.delete(path)
        self.rename(path + ".next", path)

    def read_json(self, path: str) -> dict | None:
        for candidate in (path, path + ".next"):
            if not self.exists(candidate):
                continue
            stream = self.fs.open(self.path(candidate))
            try:
                data = bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
            finally:
                stream.close()
            try:
                return json.loads(data.decode("utf-8"))
            except ValueError:  # cut short by a kill while written
                continue
        return None

    def fingerprint(self, path: str) -> dict:
        """What identifies an input's content without reading it: its visible files' names,
        sizes and modification times, hashed (and counted, for people reading _run.json)."""
        root = self.fs.makeQualified(self.path(path))
        status = self.fs.getFileStatus(root)
        files = [status] if status.isFile() else []
        if not files:
            listing = self.fs.listFiles(root, True)
            while listing.hasNext():
                files.append(listing.next())
        digest = hashlib.sha256()
        count = size = 0
        base = str(root)
        for f in sorted(files, key=lambda f: str(f.getPath())):
            name = str(f.getPath())[len(base):].lstrip("/")
            if any(part.startswith((".", "_")) for part in name.split("/") if part):
                continue  # hidden files (_SUCCESS, .crc) are not data
            count, size = count + 1, size + int(f.getLen())
            digest.update(f"{name}\t{f.getLen()}\t{f.getModificationTime()}\n".encode())
        return {"path": path, "files": count, "bytes": size, "sha256": digest.hexdigest()[:16]}


# --- in Python tasks: pyarrow's file systems -----------------------------------------------------

def arrow_fs(path: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's local file system for a plain or file: path. Python tasks open local files only:
    bytes on other storage reach them through Spark (io/taskfiles.py), so a remote path here is a
    bug, refused rather than handed to pyarrow's own clients (libhdfs and a JVM in the worker, a
    second copy of the credentials, no s3a)."""
    if not is_local(path):
        raise ValueError(f"{path}: a Python task opens local files only; remote storage is read "
                         "and written through Spark")
    return pafs.LocalFileSystem(), local_path(path)


@contextlib.contextmanager
def _atomic_output(path: str) -> Iterator[pa.NativeFile]:
    """A stream whose file appears at path, whole, only when the block ends: a retried or
    speculative task that writes the same file never leaves a reader half of it."""
    fs, target = arrow_fs(path)
    fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
    partial = f"{target}.{uuid.uuid4().hex}.tmp"
    with fs.open_output_stream(partial) as out:
        yield out
    fs.move(partial, target)


def save_array(path: str, array: np.ndarray) -> None:
    with _atomic_output(path) as out:
        np.save(out, array)


def save_bytes(path: str, data) -> None:
    with _atomic_output(path) as out:
        out.write(data)


def save_arrow(path: str, column: pa.Array, name: str) -> None:
    """One column as an Arrow IPC file (memory-mappable)."""
    batch = pa.record_batch([column], names=[name])
    with _atomic_output(path) as out, pa.ipc.new_file(out, batch.schema) as writer:
        writer.write_batch(batch)


@contextlib.contextmanager
def parquet_output(path: str, schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """A Parquet writer whose file appears at path, whole, when the block ends."""
    with _atomic_output(path) as out, pq.ParquetWriter(out, schema) as writer:
        yield writer


def copy_file(source: str, target: str) -> None:
    """A file copied whole (it appears at target only when complete)."""
    fs, local = arrow_fs(source)
    with fs.open_input_stream(local) as data, _atomic_output(target) as out:
        while chunk := data.read(1 << 24):
            out.write(chunk)


def load_array(path: str) -> np.ndarray:
    fs, local = arrow_fs(path)
    with fs.open_input_file(local) as handle:
        return np.load(handle)


def read_parquet(folder: str, columns: list[str]) -> pa.Table | None:
    """A Parquet folder's columns, or None if there is no such folder."""
    fs, local = arrow_fs(folder)
    try:
        return pq.read_table(local, filesystem=fs, columns=columns)
    except FileNotFoundError:
        return None


def delete_folder(folder: str) -> None:
    fs, local = arrow_fs(folder)
    fs.delete_dir(local)
