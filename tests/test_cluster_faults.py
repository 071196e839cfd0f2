"""Lost executors on a real standalone cluster (master and two 1-core workers on loopback): an
executor JVM SIGKILLed while it runs a walk step (sharded engine), the replicated engine's walk
(its store on HDFS, shipped to each executor: the one started in place of the killed one meets it
missing and fetches it) or a training round; Spark reruns the lost work and the tables are the very ones an uninterrupted
local run writes (every draw is a hash of seed, walk and step; task side files are written whole
under a fresh name and renamed, so a rerun task writes them again safely).

Each killed run is checked to have lost work of the job it targeted (a task that failed with its
executor, or whose input died with it: Spark's event log), so the test cannot pass by killing too
late."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from spark_n2v.cli import main
from spark_n2v.session import class_archive
from spark_n2v.standalone import Cluster, free_port, kill_busy_executor
from tests.helpers import QUICK_JVM, planted_partition, read_walks, write_csv

# Executors start as the tests' CLI processes do, and from the class archive local runs use, when
# this machine has one.
_ARCHIVE = class_archive()
_EXECUTOR_JVM = QUICK_JVM + (
    f" -XX:SharedArchiveFile={_ARCHIVE} -Xlog:cds=off -Xlog:cds+dynamic=off"
    if _ARCHIVE and os.path.isfile(_ARCHIVE) else "")
# jobs' descriptions (progress.describe) a kill waits for
WALK_STEP, REPLICATED_WALK, TRAIN_ROUND = ("spark-n2v walk: step", "spark-n2v walk: replicated",
                                           "spark-n2v train: round")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Cluster(str(tmp_path_factory.mktemp("cluster"))) as running:
        running.add_worker("1g")
        running.add_worker("1g")
        yield running


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    rows, _ = planted_partition(seed=3)
    return write_csv(tmp_path_factory.mktemp("graph") / "edges.csv", rows)


def _killed_run(cluster: Cluster, argv: list[str], targets: list[str], folder,
                every: bool = False) -> list[dict]:
    """Run the CLI against the cluster, SIGKILLing a busy executor (`every`: all executors) in a
    job of each target description in turn; returns the run's task-end events, each saying
    whether its executor was added after the first loss."""
    events = folder / "events"
    ui = free_port()
    command = [sys.executable, "-m", "spark_n2v.cli", *argv, "--master", cluster.url,
               "--event-log", str(events), "--conf", "spark.eventLog.compress=false",
               "--conf", f"spark.ui.port={ui}", "--conf", "spark.port.maxRetries=0",
               "--conf", f"spark.executor.extraJavaOptions={_EXECUTOR_JVM}",
               "--conf", "spark.sql.shuffle.partitions=4"]
    with open(folder / "driver.log", "w") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                  env={**cluster.env, "SPARK_SUBMIT_OPTS": QUICK_JVM})
        try:
            for target in targets:
                kill_busy_executor(ui, target, timeout=240, every=every)
            assert driver.wait(timeout=600) == 0, (folder / "driver.log").read_text()[-3000:]
        finally:
            driver.kill()
    logs = [p for p in glob.glob(str(events / "**" / "*"), recursive=True) if os.path.isfile(p)]
    lines = [json.loads(line) for path in logs for line in open(path)
             if '"Event":"SparkListener' in line]
    descriptions = {e["Properties"].get("spark.job.description", ""): e["Stage IDs"]
                    for e in lines if e["Event"] == "SparkListenerJobStart"}
    stage_of = {s: d for d, stages in descriptions.items() for s in stages}
    # executors the application added after it first lost one (the event log is in order)
    lost = next((k for k, e in enumerate(lines) if e["Event"] == "SparkListenerExecutorRemoved"),
                len(lines))
    late = {e["Executor ID"] for e in lines[lost:] if e["Event"] == "SparkListenerExecutorAdded"}
    return [{"description": stage_of.get(e["Stage ID"], ""),
             "reason": e["Task End Reason"]["Reason"], "executor": e["Task Info"]["Executor ID"],
             "replacement": e["Task Info"]["Executor ID"] in late}
            for e in lines if e["Event"] == "SparkListenerTaskEnd"]


# How a job meets a lost executor: its task there fails, or (the task had just ended) the map
# output it left is missing for the next stage's tasks, whose stage Spark then reruns.
_LOSS = ("ExecutorLostFailure", "FetchFailed", "Resubmitted")


def _lost_tasks(ends: list[dict], target: str) -> int:
    return sum(e["reason"] in _LOSS and e["description"].startswith(target) for e in ends)


def _embeddings(path) -> dict:
    table = pq.read_table(str(path)).to_pydict()
    return dict(zip(table["id"], table["embedding"]))


def test_lost_executors_in_sharded_walk_and_training_change_nothing(cluster, edges, tmp_path,
                                                                    spark):
    # six rounds of ~1 s (24k walks, 25 negatives, d = 128, one chunk, 3 epochs): with a few
    # thousand tokens a round took milliseconds and the kill could land between rounds; with two
    # rounds of 1-2 s a loaded machine's poller once missed them all
    argv = ["run", "--edges", edges, "--engine", "sharded", "--partitions", "4", "--walk-length",
            "6", "--num-walks", "200", "--trainer", "sgns", "--train-partitions", "2",
            "--chunks", "1", "--epochs", "3", "--dim", "128", "--negatives", "25", "--seed", "7"]
    killed = tmp_path / "killed"
    killed.mkdir()
    ends = _killed_run(cluster, [*argv, "--output", str(killed / "out")], [WALK_STEP, TRAIN_ROUND],
                       killed)
    assert _lost_tasks(ends, WALK_STEP) >= 1 and _lost_tasks(ends, TRAIN_ROUND) >= 1, ends

    assert main([*argv, "--output", str(tmp_path / "reference")]) == 0  # local, nothing killed
    assert read_walks(killed / "out" / "walks") == read_walks(tmp_path / "reference" / "walks")
    got = _embeddings(killed / "out" / "embeddings")
    want = _embeddings(tmp_path / "reference" / "embeddings")
    assert got.keys() == want.keys()
    for node, vector in want.items():
        np.testing.assert_array_equal(got[node], vector)


def test_a_lost_executor_in_the_replicated_engine_on_hdfs_changes_nothing(cluster, edges, tmp_path,
                                                                          spark, remote):
    """The output (and the graph store) on HDFS: each executor fetches the shipped store before
    its first task, and those started for the killed ones meet it missing and fetch it."""
    # Both executors are killed: had one survived, it could take every task left before the
    # replacement registered (seen in CI), and no task would have run where the store was missing
    argv = ["walk", "--edges", edges, "--engine", "replicated", "--partitions", "8",
            "--walk-length", "40", "--num-walks", "60", "--p", "0.5", "--q", "2", "--seed", "5"]
    killed = tmp_path / "killed"
    killed.mkdir()
    output = remote("hdfs")
    ends = _killed_run(cluster, [*argv, "--output", output], [REPLICATED_WALK], killed, every=True)
    assert _lost_tasks(ends, REPLICATED_WALK) >= 1, ends
    replacements = {e["executor"] for e in ends if e["description"].startswith(REPLICATED_WALK)
                    and e["reason"] == "Success" and e["replacement"]}
    assert replacements, ends
    assert main([*argv, "--output", str(tmp_path / "reference")]) == 0
    found = {r["walk_id"]: list(r["walk"]) for r in spark.read.parquet(output).collect()}
    assert found == read_walks(tmp_path / "reference")
