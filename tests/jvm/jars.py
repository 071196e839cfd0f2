"""The JVM libraries the tests start services with, fetched from Maven Central into a folder the
Makefile manages (`make jars`: .jars/SET/), checked against the SHA-1 pinned here. Python's
standard library only: `make test` needs no Maven, Ivy or network settings beyond HTTPS.

Sets (each a folder of jars):
- s3a: what Spark needs on its classpath to reach S3 as s3a:// (users: `--packages
  org.apache.hadoop:hadoop-aws:3.5.0`): hadoop-aws at pyspark's own Hadoop version, the AWS SDK
  bundle Hadoop's pom names for it (hadoop-aws declares it `provided`), and what hadoop-aws
  depends on at run time.
- hdfs: Hadoop's mini cluster (NameNode and DataNode in one JVM, started by its own
  org.apache.hadoop.test.MiniDFSClusterManager) and the logging API it does not shade; it runs
  with pyspark's hadoop-client-api and -runtime jars.
- s3proxy: an S3-compatible server, as its own build packs it with its dependencies.
- yarn: what Hadoop's mini YARN (MiniYARNCluster, in the hdfs set's minicluster jar, built through
  Py4J by spark_n2v.services.MiniYarn) loads at run time and does not shade:
  JUnit's API (MiniYARNCluster's classes name it), log4j 1's API (reload4j) and BouncyCastle
  (the ResourceManager's web and security code).

    python tests/jvm/jars.py DEST_FOLDER
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request

CENTRAL = "https://repo1.maven.org/maven2"

# set -> (group, artifact, version, classifier, sha1)
JARS = {
    "s3a": [
        ("org.apache.hadoop", "hadoop-aws", "3.5.0", "", "9e594525d264c0db653c7f68da98b245f7d61ea5"),
        ("software.amazon.awssdk", "bundle", "2.35.4", "",
         "7252265e3970b214708e68a8b74a8fa8c875af1e"),
        ("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3", "1.3.1", "",
         "6c9bd0f6c440c9a78e82d272f5f0252d942419f6"),
        ("org.wildfly.openssl", "wildfly-openssl", "2.2.5.Final", "",
         "78a86a04b5ddbfb75d6f3a2812cc724cde4a26f1"),
    ],
    "hdfs": [
        ("org.apache.hadoop", "hadoop-client-minicluster", "3.5.0", "",
         "7688184cfbf679736d81f5642c6e80fca18a02c0"),
        ("org.slf4j", "slf4j-api", "1.7.36", "", "6c62681a2f655b49963a5983b8b0950a6120ae14"),
        ("commons-logging", "commons-logging", "1.3.0", "",
         "f5e064b541f5c5fbc5e4fb49c4e8cd4eabb3afd6"),
    ],
    "yarn": [
        ("org.junit.jupiter", "junit-jupiter-api", "5.11.4", "",
         "308315b28e667db4091b2ba1f7aa220d1ddadb97"),
        ("org.junit.platform", "junit-platform-commons", "1.11.4", "",
         "8898eea3ed0da2641548d602c3e308804f166303"),
        ("org.opentest4j", "opentest4j", "1.3.0", "", "152ea56b3a72f655d4fd677fc0ef2596c3dd5e6e"),
        ("ch.qos.reload4j", "reload4j", "1.2.25", "", "45921e383a1001c2a599fc4c6cf59af80cdd1cf1"),
        ("org.bouncycastle", "bcprov-jdk18on", "1.78.1", "",
         "39e9e45359e20998eb79c1828751f94a818d25f8"),
        ("org.bouncycastle", "bcpkix-jdk18on", "1.78.1", "",
         "17b3541f736df97465f87d9f5b5dfa4991b37bb3"),
        ("org.bouncycastle", "bcutil-jdk18on", "1.78.1", "",
         "5353ca39fe2f148dab9ca1d637a43d0750456254"),
    ],
    "s3proxy": [
        ("org.gaul", "s3proxy", "4.1.0", "jar-with-dependencies",
         "0a0b89e982bc1b1b5757d45b61109e05a840dd87"),
    ],
}


def _name(artifact: str, version: str, classifier: str) -> str:
    return f"{artifact}-{version}{'-' + classifier if classifier else ''}.jar"


def _sha1(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(dest: str) -> None:
    for group, jars in JARS.items():
        folder = os.path.join(dest, group)
        os.makedirs(folder, exist_ok=True)
        for group_id, artifact, version, classifier, sha1 in jars:
            path = os.path.join(folder, _name(artifact, version, classifier))
            if os.path.exists(path) and _sha1(path) == sha1:
                continue
            url = (f"{CENTRAL}/{group_id.replace('.', '/')}/{artifact}/{version}/"
                   f"{_name(artifact, version, classifier)}")
            partial = path + ".part"
            print(f"fetching {url}", file=sys.stderr, flush=True)
            with urllib.request.urlopen(url, timeout=120) as response, open(partial, "wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            found = _sha1(partial)
            if found != sha1:
                os.remove(partial)
                sys.exit(f"{url}: SHA-1 {found}, expected {sha1}: not used")
            os.replace(partial, path)


if __name__ == "__main__":
    fetch(sys.argv[1])
