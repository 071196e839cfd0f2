"""What stands in on S3 for what a file system gives: the run lock is created only if absent
(S3's conditional create, which the server under test honours), its heartbeat rewrites it (S3A
cannot set a modification time) unless another run took it over, and the run removes it when it
ends, if it is still its own. A run that died resumes from its work on S3, and its output appears
(with its _run.json, moved last) only when complete."""

from __future__ import annotations

import logging
import time
import uuid

import pytest

from spark_n2v.cli import main
from spark_n2v.errors import UserError
from spark_n2v.io.files import HadoopFiles
from spark_n2v.record import RunLock
from spark_n2v.walk import replicated
from tests.helpers import Crash, crash_after_marks, planted_partition, write_csv


@pytest.fixture()
def lock_path(s3) -> str:
    return s3.url(f"locks-{uuid.uuid4().hex[:8]}/.out.lock")


def test_a_file_is_created_only_if_absent(spark, lock_path):
    files = HadoopFiles(spark, lock_path)
    assert files.object_store
    assert files.create_new(lock_path, b"first")
    assert not files.create_new(lock_path, b"second")
    stream = files.fs.open(files.path(lock_path))
    try:
        assert bytes(spark._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)) == b"first"
    finally:
        stream.close()


def test_the_lock_holds_beats_and_goes_on_s3(spark, lock_path):
    files = HadoopFiles(spark, lock_path)
    first, second = RunLock(files, lock_path), RunLock(files, lock_path)
    first.acquire("s3a://out")
    try:
        with pytest.raises(UserError, match="is being written by another run"):
            second.acquire("s3a://out")

        def modified() -> int:
            return files.fs.getFileStatus(files.path(lock_path)).getModificationTime()

        before = modified()
        time.sleep(1.2)  # S3 keeps modification times in whole seconds
        first.beat()
        assert modified() > before and files.read_json(lock_path) == first.owner
        taken = {"host": "elsewhere.example", "pid": 7, "started": "1", "since": "now"}
        files.write_bytes(lock_path, b'{"host": "elsewhere.example", "pid": 7, '
                                     b'"started": "1", "since": "now"}')
        first.beat()  # taken over while we stalled: leave the new holder's lock alone
        assert files.read_json(lock_path) == taken
    finally:
        first.release()
    assert files.read_json(lock_path) == taken  # not ours to delete
    files.delete(lock_path)
    third = RunLock(files, lock_path)
    third.acquire("s3a://out")
    third.release()
    assert not files.exists(lock_path)


def _tables(spark, root: str) -> tuple[dict, dict]:
    walks = {r["walk_id"]: list(r["walk"]) for r in spark.read.parquet(f"{root}/walks").collect()}
    embeddings = {r["id"]: list(r["embedding"])
                  for r in spark.read.parquet(f"{root}/embeddings").collect()}
    return walks, embeddings


BATCH = 100  # replicated.RESUME_WALKERS here: 240 walks in 3 batches, each a resume point


@pytest.fixture(scope="module")
def run_flags(tmp_path_factory) -> list[str]:
    edges, _ = planted_partition()
    path = write_csv(tmp_path_factory.mktemp("object-store") / "pp.csv", edges)
    return ["--edges", path, "--engine", "replicated", "--walk-length", "8", "--num-walks", "2",
            "--seed", "5", "--trainer", "sgns", "--dim", "8", "--epochs", "1", "--chunks", "2",
            "--partitions", "2"]


@pytest.fixture(scope="module")
def unbroken(spark, run_flags, tmp_path_factory) -> tuple[dict, dict]:
    """The tables of the run on local disk, nothing killed."""
    output = str(tmp_path_factory.mktemp("unbroken") / "run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(replicated, "RESUME_WALKERS", BATCH)
        assert main(["run", "--output", output, *run_flags]) == 0
    return _tables(spark, output)


def test_a_run_that_died_on_s3_resumes_to_the_output_of_an_unbroken_run(
        spark, remote, run_flags, unbroken, monkeypatch, caplog):
    monkeypatch.setattr(replicated, "RESUME_WALKERS", BATCH)
    output = remote("s3")
    revive = crash_after_marks(monkeypatch, "_local.json", 1)
    with pytest.raises(Crash):
        main(["run", "--output", output, *run_flags])
    revive()
    files = HadoopFiles(spark, output)
    assert not files.exists(output)  # only ever visible complete
    with caplog.at_level(logging.INFO, logger="spark_n2v"):
        assert main(["run", "--output", output, *run_flags]) == 0
    assert any("resuming after 1 of 3 batches" in r.getMessage() for r in caplog.records)
    assert files.read_json(f"{output}/_run.json")["counts"]["walks"] == 240
    assert _tables(spark, output) == unbroken


def test_scratch_on_hdfs_for_an_output_on_s3_resumes_and_gives_the_same_output(
        spark, remote, run_flags, unbroken, monkeypatch):
    """--work-dir: the resumable scratch on another file system than the output (files move from
    it into the output by copy); a run that died resumes from it, the output is the unbroken
    run's, and the scratch goes."""
    monkeypatch.setattr(replicated, "RESUME_WALKERS", BATCH)
    output, scratch = remote("s3"), remote("hdfs")
    name, parent = output.rsplit("/", 1)[1], output.rsplit("/", 1)[0]
    revive = crash_after_marks(monkeypatch, "_local.json", 1)
    with pytest.raises(Crash):
        main(["run", "--output", output, "--work-dir", scratch, *run_flags])
    revive()
    kept = HadoopFiles(spark, scratch).names(scratch)
    assert len(kept) == 1 and kept[0].startswith(f".{name}-") and kept[0].endswith(".work")
    beside = [n for n in HadoopFiles(spark, parent).names(parent) if n.startswith(f".{name}.")]
    assert beside in ([f".{name}.incomplete"], [])  # no scratch on S3
    assert main(["run", "--output", output, "--work-dir", scratch, *run_flags]) == 0
    assert _tables(spark, output) == unbroken
    assert HadoopFiles(spark, scratch).names(scratch) == []  # the work folder went
    assert [n for n in HadoopFiles(spark, parent).names(parent) if n.startswith(f".{name}.")] == []
