"""`python -m spark_n2v.warmup`: record the JVM class-data archive that local runs start from.

A local run (the CLI's own session, not spark-submit's) spends seconds of its start loading
Spark's classes; with the archive its JVM maps the classes a recorded run loaded instead
(session.class_archive says where it lives and why). This records one by running the demo graph
through `spark-n2v run --trainer sgns` in a child process, whose JVM writes the archive as it
exits; the archive is renamed into place only once that process has ended well, so no run ever
maps a partial one. make runs it after installing; run it again after changing Java or Spark.
Without an archive everything works, only the start is slower.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from spark_n2v.demo import DATA
from spark_n2v.session import RECORD_ARCHIVE_ENV, class_archive


def main(argv: list[str] | None = None) -> int:
    force = "--force" in (sys.argv[1:] if argv is None else argv)  # record again
    archive = class_archive()
    if archive is None:
        print("warmup: no java or no Spark jars found; local runs start without a class archive",
              file=sys.stderr)
        return 0
    if os.path.isfile(archive) and not force:
        print(f"warmup: {archive} is already recorded")
        return 0
    staged = f"{archive}.{os.getpid()}.incomplete"
    started = time.perf_counter()
    try:
        os.makedirs(os.path.dirname(archive), exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            done = subprocess.run(
                [sys.executable, "-m", "spark_n2v.cli", "run", "--edges", DATA, "--weighted",
                 "--output", os.path.join(scratch, "out"), "--trainer", "sgns", "--dim", "16",
                 "--num-walks", "2", "--walk-length", "20", "--master", "local[2]"],
                env={**os.environ, RECORD_ARCHIVE_ENV: staged}, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.isfile(staged):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise OSError(f"the recording run failed: {last}")
        os.replace(staged, archive)
    except OSError as error:  # an archive only speeds the start up: say so, and go on
        if os.path.exists(staged):
            os.remove(staged)
        print(f"warmup: no class archive recorded ({error}); local runs start without one",
              file=sys.stderr)
        return 0
    print(f"warmup: recorded {archive} ({os.path.getsize(archive) / 2**20:.0f} MB) in "
          f"{time.perf_counter() - started:.0f} s; local runs now start from it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
