"""spark-submit entry point for `spark-n2v walk`.

    spark-submit --master yarn --deploy-mode cluster \
        --archives hdfs:///apps/spark_n2v-0.1.0-env.tar.gz#env \
        --conf spark.pyspark.python=./env/bin/python \
        jobs/walk.py --edges hdfs:///data/edges.parquet --output hdfs:///n2v/walks --p 0.5 --q 2 --partitions 400

Takes exactly the flags of `spark-n2v walk` (see README). Under spark-submit the session that
spark-submit configured is used (--master and --conf come from spark-submit, not from the flags).
spark_n2v must be importable on the driver and the executors: here the packed environment
(`make env-archive`); docs/cluster.md gives the other ways and client deploy mode.
"""

import sys

from spark_n2v.cli import main

if __name__ == "__main__":
    sys.exit(main(["walk", *sys.argv[1:]]))
