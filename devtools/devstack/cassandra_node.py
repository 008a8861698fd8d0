"""A real Apache Cassandra 5.0 node on loopback for development, tests, demo and benchmarks.

The server comes from Maven Central (`org.apache.cassandra:cassandra-all` and its runtime
dependencies) into a cache folder outside git; data, logs and the pid live under the project's
state folder, so data survives stop/start. `start` reuses a node already answering CQL; `stop`
ends only the process this module started (by its pid file).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ingest.config import Settings, get_settings


class NodeError(RuntimeError):
    """A step of managing the local node failed; the message says which and what to do."""


POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ledgerflow</groupId><artifactId>cassandra-server</artifactId><version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""

# conf/jvm17-server.options of the Cassandra distribution, which the Maven artifact lacks.
JVM17_FLAGS = [
    "-Djdk.attach.allowAttachSelf=true",
    *[
        f"--add-exports={m}=ALL-UNNAMED"
        for m in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
            "jdk.compiler/com.sun.tools.javac.file",
            "jdk.attach/sun.tools.attach",
        )
    ],
    *[
        f"--add-opens={m}=ALL-UNNAMED"
        for m in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "jdk.compiler/com.sun.tools.javac",
            "java.base/java.lang",
            "java.base/java.util",
        )
    ],
    "-XX:+UseG1GC",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:+PerfDisableSharedMem",
    "-Dio.netty.tryReflectionSetAccessible=true",
]

# The memtable settings are Cassandra 5.0's own recommendation (its cassandra_latest.yaml):
# trie memtables with their cells off the heap. With the defaults (skip-list, heap buffers) a
# 600k-row job left 1.6 GB of the 2 GB heap live after a full GC: every request thread keeps the
# last partition it updated (a thread-local updater), and a view partition is a month of a user's
# rows, pinning the 1 MiB heap slabs its cells sit in; the node died of heap exhaustion under
# `make bench`. With these two settings the same job left 0.5 GB (benchmarks/analysis.md).
# What each thread keeps is still there (as cell objects pointing off the heap), so the request
# threads are capped too: 16 native-transport and 16 write threads (defaults 128 and 32; a
# 2-core machine runs no more at once). The 600k job then left 0.12 GB live, not 0.45 GB, and
# its tax stage ran no slower; at 3M (a month partition of 83k rows) 1.0 GB stayed live with
# the defaults.
YAML = """cluster_name: {cluster_name}
num_tokens: 16
allocate_tokens_for_local_replication_factor: {rf}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:{storage_port}"
listen_address: {address}
rpc_address: {address}
native_transport_port: {cql_port}
storage_port: {storage_port}
ssl_storage_port: {ssl_storage_port}
data_file_directories:
  - {data}/data
commitlog_directory: {data}/commitlog
hints_directory: {data}/hints
saved_caches_directory: {data}/saved_caches
cdc_raw_directory: {data}/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 32MiB
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
start_native_transport: true
concurrent_reads: 16
concurrent_writes: 16
native_transport_max_threads: 16
batch_size_warn_threshold: 16KiB
batch_size_fail_threshold: 64KiB
read_request_timeout: 10000ms
write_request_timeout: 10000ms
range_request_timeout: 20000ms
request_timeout: 20000ms
disk_access_mode: mmap_index_only
memtable:
  configurations:
    trie:
      class_name: TrieMemtable
    default:
      inherits: trie
memtable_allocation_type: offheap_objects
"""


@dataclass(frozen=True)
class NodePaths:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "cassandra.log"

    @property
    def pid(self) -> Path:
        return self.root / "cassandra.pid"

    @property
    def yaml(self) -> Path:
        return self.conf / "cassandra.yaml"


def node_paths(settings: Settings) -> NodePaths:
    return NodePaths(settings.state_dir / "cassandra")


def lib_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"cassandra-{settings.cassandra_version}" / "lib"


def fetch_server(settings: Settings) -> Path:
    """Download cassandra-all and its runtime dependencies once; return the lib folder."""
    lib = lib_dir(settings)
    if (lib / f"cassandra-all-{settings.cassandra_version}.jar").exists():
        return lib
    return fetch_maven_jars(
        POM.format(version=settings.cassandra_version),
        lib,
        f"Cassandra {settings.cassandra_version}",
        "set LEDGERFLOW_CASSANDRA_HOSTS to use a cluster",
    )


def fetch_maven_jars(pom: str, lib: Path, what: str, otherwise: str) -> Path:
    """`mvn dependency:copy-dependencies` of `pom`'s runtime dependencies into `lib` (its parent
    holds the pom; the folder appears whole or not at all); return `lib`."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise NodeError(
            f"step 'fetch {what}': Maven (mvn) is not on PATH. Install Maven "
            f"(apt-get install maven) or {otherwise}."
        )
    work = lib.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(pom)
    tmp = work / "lib.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"fetching {what} from Maven Central into {lib} ...", file=sys.stderr)
    proc = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(work / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise NodeError(
            f"step 'fetch {what}': mvn dependency:copy-dependencies failed:\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}\n"
            "Check that Maven Central is reachable (mvn -v; ~/.m2/settings.xml)."
        )
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    return lib


def java_binary() -> str:
    """JDK 17 (Cassandra 5.0 runs on 11 or 17 and refuses newer ones)."""
    candidates = [
        os.environ.get("JAVA_HOME", ""),
        "/usr/lib/jvm/java-17-openjdk-amd64",
        "/usr/lib/jvm/java-17-openjdk-arm64",
        "/usr/lib/jvm/java-17-openjdk",
    ]
    for home in candidates:
        if home and (Path(home) / "bin" / "java").exists():
            java = str(Path(home) / "bin" / "java")
            if _java_major(java) in (11, 17):
                return java
    found = shutil.which("java")
    if found and _java_major(found) in (11, 17):
        return found
    raise NodeError(
        "step 'find java': no JDK 11 or 17 found (Cassandra 5.0 needs one). Install "
        "openjdk-17-jdk-headless or set JAVA_HOME to a JDK 17."
    )


def _java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    except OSError:
        return 0
    for token in out.split():
        token = token.strip('"')
        if token[:2].isdigit():
            return int(token.split(".")[0])
    return 0


def cql_answers(host: str = "127.0.0.1", port: int = 9042, timeout: float = 1.0) -> bool:
    """True when a CQL node answers `SELECT release_version FROM system.local`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return False
    from cassandra.cluster import Cluster

    cluster = Cluster([host], port=port, connect_timeout=timeout * 5, protocol_version=5)
    try:
        session = cluster.connect()
        return session.execute("SELECT release_version FROM system.local").one() is not None
    except Exception:
        return False
    finally:
        cluster.shutdown()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def read_pid(paths: NodePaths) -> int | None:
    try:
        pid = int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


@dataclass(frozen=True)
class NodeSpec:
    """One local node: its loopback address, folders and ports."""

    address: str
    paths: NodePaths
    cql_port: int
    storage_port: int
    jmx_port: int
    cluster_name: str = "ledgerflow-local"
    replication_factor: int = 1


def single_node(settings: Settings) -> NodeSpec:
    return NodeSpec(
        "127.0.0.1",
        node_paths(settings),
        settings.cassandra_port,
        settings.cassandra_storage_port,
        settings.cassandra_jmx_port,
    )


def write_config(spec: NodeSpec) -> None:
    paths = spec.paths
    paths.conf.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "commitlog", "hints", "saved_caches", "cdc_raw"):
        (paths.data / sub).mkdir(parents=True, exist_ok=True)
    paths.yaml.write_text(
        YAML.format(
            data=paths.data,
            address=spec.address,
            cql_port=spec.cql_port,
            storage_port=spec.storage_port,
            ssl_storage_port=spec.storage_port + 1,
            cluster_name=spec.cluster_name,
            rf=spec.replication_factor,
        )
    )
    # Cassandra's logback config ships only in the tarball; a small one keeps the log useful.
    (paths.conf / "logback.xml").write_text(
        '<configuration><appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">'
        "<encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>"
        '</appender><root level="INFO"><appender-ref ref="STDOUT"/></root></configuration>\n'
    )


def launch(settings: Settings, spec: NodeSpec, extra_flags: list[str]) -> int:
    """Start the node's JVM in its own session (it outlives this process); returns its pid."""
    lib = fetch_server(settings)
    java = java_binary()
    write_config(spec)
    paths = spec.paths
    jamm = sorted(lib.glob("jamm-*.jar"))
    if not jamm:
        raise NodeError(f"step 'start': no jamm jar in {lib}; delete that folder to refetch.")
    cmd = [
        java,
        f"-Xms{settings.cassandra_heap}",
        f"-Xmx{settings.cassandra_heap}",
        "-Xss256k",
        f"-javaagent:{jamm[0]}",
        *JVM17_FLAGS,
        f"-Dcassandra.config=file://{paths.yaml}",
        "-Dcassandra-foreground=true",
        f"-Dlogback.configurationFile=file://{paths.conf / 'logback.xml'}",
        f"-Dcassandra.logdir={paths.root}",
        f"-Dcassandra.storagedir={paths.data}",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        *extra_flags,
        f"-Dcassandra.jmx.local.port={spec.jmx_port}",
        "-Dcassandra.initial_token=",
        "-cp",
        f"{paths.conf}:{lib}/*",
        "org.apache.cassandra.service.CassandraDaemon",
    ]
    with open(paths.log, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    paths.pid.write_text(str(proc.pid))
    return proc.pid


def wait_for_cql(spec: NodeSpec, pid: int, timeout: float) -> None:
    """Until the node answers CQL on its own address (a joining node opens its native port only
    once it is Normal in the ring); NodeError with the log's tail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cql_answers(spec.address, spec.cql_port):
            return
        if not _pid_alive(pid):
            log = spec.paths.log
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            spec.paths.pid.unlink(missing_ok=True)
            raise NodeError(
                f"step 'start {spec.address}': the Cassandra process exited before "
                f"CQL answered. Log {log} ends with:\n{tail}"
            )
        time.sleep(1.0)
    raise NodeError(
        f"step 'wait for CQL': no answer on {spec.address}:{spec.cql_port} after "
        f"{timeout:.0f}s; see {spec.paths.log}"
    )


def start(settings: Settings | None = None, timeout: float = 240.0, nodes: int = 1) -> str:
    """Start (or reuse) the local node, or with nodes > 1 a local cluster (see local_cluster.py);
    return a one-line status. Raises NodeError on failure."""
    settings = settings or get_settings()
    if nodes > 1:
        from devtools.devstack import local_cluster

        return local_cluster.start(settings, nodes, timeout=timeout)
    if not settings.uses_local_node:
        return f"using the configured cluster {settings.cassandra_hosts}; no local node started"
    spec = single_node(settings)
    paths = spec.paths
    if cql_answers(port=settings.cassandra_port):
        return f"Cassandra already up on 127.0.0.1:{settings.cassandra_port} (log: {paths.log})"
    pid = read_pid(paths)
    if pid is None:
        pid = launch(settings, spec, ["-Dcassandra.load_ring_state=false"])
    wait_for_cql(spec, pid, timeout)
    return f"Cassandra up on 127.0.0.1:{settings.cassandra_port} (pid {pid}, log: {paths.log})"


def stop_pid(paths: NodePaths, timeout: float = 90.0) -> int | None:
    """End the node whose pid file is in `paths` (SIGTERM, then SIGKILL); its pid or None."""
    pid = read_pid(paths)
    if pid is None:
        paths.pid.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.5)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    paths.pid.unlink(missing_ok=True)
    return pid


def stop(settings: Settings | None = None, timeout: float = 90.0) -> str:
    """Stop what ledgerflow started here: the single node and any local cluster nodes."""
    settings = settings or get_settings()
    from devtools.devstack import local_cluster

    lines = local_cluster.stop(settings, timeout)
    pid = stop_pid(node_paths(settings), timeout)
    if pid is not None:
        lines.append(f"stopped Cassandra (pid {pid})")
    return "\n".join(lines) or "no local Cassandra node started by ledgerflow is running"


def status(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    from devtools.devstack import local_cluster

    if local_cluster.exists(settings):
        return local_cluster.status(settings)
    if not settings.uses_local_node:
        up = cql_answers(settings.contact_points[0], settings.cassandra_port)
        return f"configured cluster {settings.cassandra_hosts}: {'up' if up else 'not answering'}"
    paths = node_paths(settings)
    pid = read_pid(paths)
    up = cql_answers(port=settings.cassandra_port)
    return (
        f"local node: {'up' if up else 'down'}; pid {pid or '-'}; data {paths.data}; "
        f"log {paths.log}"
    )
