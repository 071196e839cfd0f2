"""Secrets stay secret: a setting Spark's spark.redaction.regex matches, given by --conf, by
--config or in the environment, reaches no file a run writes (the output's _run.json, the work
folder's _job.json, the event log) and no line it prints, and a rerun with it still resumes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spark_n2v.cli import main
from spark_n2v.redaction import REDACTED, redact_argv, redact_text
from tests.helpers import QUICK_JVM_ENV, Crash, crash_after_round, write_csv

SECRET, ACCESS, ENVIRONMENT = "s3cr3t-Value-0123", "ACC3SS-Key-4567", "ENV-S3cr3t-89"


def _files_holding(folder, *secrets) -> list[str]:
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as handle:
                data = handle.read()
            if any(s.encode() in data for s in secrets):
                found.append(os.path.join(root, name))
    return found


def test_secret_settings_and_uri_passwords_are_redacted():
    assert redact_argv(["--conf", "spark.hadoop.fs.s3a.secret.key=a b", "--conf=fs.azure.account."
                        "key.x.password=p", "--conf", "spark.executor.memory=2g", "--edges",
                        "s3a://me:pw@bucket/edges", "--num-walks", "3"]) == [
        "--conf", f"spark.hadoop.fs.s3a.secret.key={REDACTED}",
        f"--conf=fs.azure.account.key.x.password={REDACTED}", "--conf", "spark.executor.memory=2g",
        "--edges", f"s3a://me:{REDACTED}@bucket/edges", "--num-walks", "3"]
    assert redact_text("refused: AWS_SECRET_ACCESS_KEY=xyz; 12 tokens=4") == \
        f"refused: AWS_SECRET_ACCESS_KEY={REDACTED}; 12 tokens=4"


def test_a_secret_reaches_no_record_work_file_or_line_and_the_rerun_resumes(
        spark, tmp_path, monkeypatch, caplog, capsys):
    edges = write_csv(tmp_path / "e.csv", [("a", "b", 1), ("b", "c", 1), ("c", "a", 1)])
    config = tmp_path / "conf.toml"
    config.write_text(f'[spark.conf]\n"spark.hadoop.fs.s3a.access.key" = "{ACCESS}"\n')
    out = tmp_path / "out"
    argv = ["run", "--edges", edges, "--output", str(out), "--walk-length", "4", "--num-walks",
            "2", "--trainer", "sgns", "--dim", "4", "--epochs", "1", "--chunks", "1",
            "--conf", f"spark.hadoop.fs.s3a.secret.key={SECRET}", "--config", str(config)]
    revive = crash_after_round(monkeypatch, 1)  # the driver dies: its work folder stays
    with pytest.raises(Crash):
        main(argv)
    revive()
    work = tmp_path / ".out.work"
    assert (work / "_job.json").exists()
    assert _files_holding(tmp_path / ".out.work", SECRET, ACCESS) == []
    caplog.clear()
    with caplog.at_level("INFO", logger="spark_n2v"):
        assert main(argv) == 0
    assert any("resuming the unfinished run" in r.getMessage() for r in caplog.records)
    record = (out / "_run.json").read_text()
    assert f"spark.hadoop.fs.s3a.secret.key={REDACTED}" in record
    assert _files_holding(tmp_path, SECRET, ACCESS) == [str(config)]  # the user's own file only
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err and SECRET not in caplog.text


def test_a_secret_reaches_neither_the_terminal_nor_the_event_log(tmp_path):
    """The CLI in its own process, with its own session: --conf, --config and the environment."""
    edges = write_csv(tmp_path / "e.csv", [("a", "b", 1), ("b", "c", 1), ("c", "a", 1)])
    config = tmp_path / "conf.toml"
    config.write_text(f'[spark.conf]\n"spark.hadoop.fs.s3a.access.key" = "{ACCESS}"\n')
    events = tmp_path / "events"
    result = subprocess.run(
        [sys.executable, "-m", "spark_n2v.cli", "walk", "--edges", edges, "--output",
         str(tmp_path / "walks"), "--walk-length", "3", "--num-walks", "1", "--master",
         "local[1]", "--conf", f"spark.hadoop.fs.s3a.secret.key={SECRET}", "--config",
         str(config), "--event-log", str(events), "--verbose"],
        capture_output=True, text=True, timeout=600,
        env={**QUICK_JVM_ENV, "AWS_SECRET_ACCESS_KEY": ENVIRONMENT})
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(events), "the event log was written"
    for text in (result.stdout, result.stderr):
        assert not any(s in text for s in (SECRET, ACCESS, ENVIRONMENT))
    assert _files_holding(tmp_path, SECRET, ACCESS, ENVIRONMENT) == [str(config)]
