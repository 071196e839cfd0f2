"""spark-submit entry point for `spark-n2v similar`.

    spark-submit --master yarn --deploy-mode cluster \
        --archives hdfs:///apps/spark_n2v-0.1.0-env.tar.gz#env \
        --conf spark.pyspark.python=./env/bin/python \
        jobs/similar.py --embeddings hdfs:///n2v/embeddings --output hdfs:///n2v/neighbours --top-k 10

Takes exactly the flags of `spark-n2v similar` (see README). Under spark-submit the session that
spark-submit configured is used (--master and --conf come from spark-submit, not from the flags).
spark_n2v must be importable on the driver and the executors: here the packed environment
(`make env-archive`); docs/cluster.md gives the other ways and client deploy mode.
"""

import sys

from spark_n2v.cli import main

if __name__ == "__main__":
    sys.exit(main(["similar", *sys.argv[1:]]))
