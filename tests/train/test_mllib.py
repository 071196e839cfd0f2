"""The MLlib trainer: its 2^31 ceiling is checked before training, with what to change."""

from __future__ import annotations

from spark_n2v.cli import main
from tests.helpers import fails, write_csv

SMALL = [("a", "b", 1), ("b", "c", 2), ("c", "a", 1), ("c", "d", 1)]
FAST = ["--walk-length", "3", "--num-walks", "1"]


def test_mllib_ceiling_is_checked_before_training(spark, capsys, tmp_path):
    edges = write_csv(tmp_path / "e.csv", SMALL)
    assert main(["walk", "--edges", edges, "--output", str(tmp_path / "w"), *FAST]) == 0
    err = fails(capsys, ["train", "--walks", str(tmp_path / "w"), "--output", str(tmp_path / "t"),
                         "--dim", str(2**31 // 4)], "MLlib", "--dim")
    assert "at most 536870911" in err
