"""spark-submit entry point for `spark-n2v update`.

    spark-submit --master yarn --deploy-mode cluster \
        --archives hdfs:///apps/spark_n2v-0.1.0-env.tar.gz#env \
        --conf spark.pyspark.python=./env/bin/python \
        jobs/update.py --previous hdfs:///n2v/2026-12-02 --edges hdfs:///data/edges.parquet \
        --output hdfs:///n2v/2026-12-03 --trainer sgns

Takes exactly the flags of `spark-n2v update` (see README): the previous output's walk and train
flags, and --radius, --update-learning-rate. Under spark-submit the session that spark-submit
configured is used. spark_n2v must be importable on the driver and the executors: here the packed
environment (`make env-archive`); docs/cluster.md gives the other ways and client deploy mode.
"""

import sys

from spark_n2v.cli import main

if __name__ == "__main__":
    sys.exit(main(["update", *sys.argv[1:]]))
