"""The local session's JVM class archive: where it lives, when a run uses it, and that recording it
never leaves a partial one (a JVM that maps a cut-short archive crashes)."""

from __future__ import annotations

import os
import subprocess

from spark_n2v import session, warmup


def test_a_run_maps_the_archive_only_once_it_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARK_N2V_CACHE", str(tmp_path))
    monkeypatch.delenv(session.RECORD_ARCHIVE_ENV, raising=False)
    archive = session.class_archive()
    assert archive is not None and os.path.dirname(archive) == str(tmp_path)
    assert session._archive_options() == []
    open(archive, "wb").close()
    options = session._archive_options()
    assert f"-XX:SharedArchiveFile={archive}" in options
    assert "-Xlog:cds=off" in options  # a JVM that cannot use it says nothing, and starts without
    monkeypatch.setenv(session.RECORD_ARCHIVE_ENV, str(tmp_path / "new.jsa"))
    assert session._archive_options() == [f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}"]


def test_another_java_gets_another_archive_and_no_java_none(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARK_N2V_CACHE", str(tmp_path))
    ours = session.class_archive()
    other = tmp_path / "jdk"
    (other / "bin").mkdir(parents=True)
    (other / "bin" / "java").write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(other))
    assert session.class_archive() not in (None, ours)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "missing"))
    assert session.class_archive() is None
    assert session._archive_options() == []


def test_a_failed_recording_leaves_no_archive(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPARK_N2V_CACHE", str(tmp_path))

    def half_written(command, env, **kwargs):  # the JVM died while writing the archive
        with open(env[session.RECORD_ARCHIVE_ENV], "wb") as handle:
            handle.write(b"\0" * 100)
        return subprocess.CompletedProcess(command, 1, "", "boom\nspark-n2v: error: no space\n")

    monkeypatch.setattr(warmup.subprocess, "run", half_written)
    assert warmup.main([]) == 0  # an archive only speeds runs up: make goes on without one
    assert os.listdir(tmp_path) == []
    assert "no class archive recorded" in capsys.readouterr().err


def test_a_recording_is_renamed_into_place_when_whole(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPARK_N2V_CACHE", str(tmp_path))
    seen = {}

    def recorded(command, env, **kwargs):
        seen["command"] = command
        with open(env[session.RECORD_ARCHIVE_ENV], "wb") as handle:
            handle.write(b"archive")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(warmup.subprocess, "run", recorded)
    assert warmup.main([]) == 0
    assert os.listdir(tmp_path) == [os.path.basename(session.class_archive())]
    assert seen["command"][1:4] == ["-m", "spark_n2v.cli", "run"]
    assert warmup.main([]) == 0 and "already recorded" in capsys.readouterr().out
