"""Cluster packaging: `make dist` builds the wheel and the --py-files zip, and a job runs through
the real spark-submit (local[2]) with spark_n2v imported from that zip alone."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pyarrow.parquet as pq
import pyspark

from tests.helpers import write_csv

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_spark_submit_runs_a_job_from_the_packaged_zip(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(["make", "--no-print-directory", "dist", f"DIST={dist}",
                    f"PYTHON={sys.executable}"],
                   cwd=ROOT, check=True, capture_output=True, timeout=600)
    wheel, = dist.glob("spark_n2v-*-py3-none-any.whl")
    archive, = dist.glob("spark_n2v-*.zip")

    # A Python that sees numpy, pyarrow and pyspark but not our checkout or its editable install:
    # -S skips site (so no .pth files), PYTHONPATH gives the libraries' folder as a plain path.
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK"))}
    env.update(PYSPARK_PYTHON=str(python), PYSPARK_DRIVER_PYTHON=str(python),
               PYTHONPATH=sysconfig.get_paths()["purelib"],
               SPARK_HOME=os.path.dirname(pyspark.__file__))
    alone = subprocess.run([str(python), "-c", "import spark_n2v"], env=env, cwd=tmp_path,
                           capture_output=True, text=True)
    assert alone.returncode != 0 and "No module named 'spark_n2v'" in alone.stderr

    edges = write_csv(tmp_path / "edges.csv", [("a", "b", 1), ("b", "c", 1), ("c", "a", 1),
                                               ("c", "d", 1)])
    job = tmp_path / "walk.py"
    shutil.copy(ROOT / "jobs" / "walk.py", job)  # the job file alone, away from the checkout
    submit = os.path.join(os.path.dirname(sys.executable), "spark-submit")
    result = subprocess.run(
        [submit, "--master", "local[2]", "--py-files", str(archive), str(job), "--edges", edges,
         "--output", str(tmp_path / "walks"), "--walk-length", "5", "--num-walks", "2"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    walks = pq.read_table(str(tmp_path / "walks")).to_pydict()
    assert len(walks["walk_id"]) == 8 and {len(w) for w in walks["walk"]} == {5}
    record = json.loads((tmp_path / "walks" / "_run.json").read_text())
    assert record["versions"]["spark_n2v"] in wheel.name
