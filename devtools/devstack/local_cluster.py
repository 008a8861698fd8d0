"""A real multi-node Cassandra cluster on one machine: `ledgerflow cassandra start --nodes 3`.

Node i listens on 127.0.0.i (every 127/8 address routes to `lo` on Linux) with the same CQL and
storage ports, its own data folders, log, pid file and JMX port (LEDGERFLOW_CASSANDRA_JMX_PORT + i
- 1), all under <state_dir>/cassandra-cluster/node<i>. 127.0.0.1 is the one seed. Nodes start one
after another, each once the previous one is Normal in the ring (concurrent bootstraps clash).
The cluster has its own name, so a node of another cluster on the same ports is refused, never
joined or reused.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from devtools.devstack.cassandra_node import (
    JVM17_FLAGS,
    NodeError,
    NodePaths,
    NodeSpec,
    _pid_alive,
    cql_answers,
    fetch_server,
    java_binary,
    launch,
    read_pid,
    stop_pid,
    wait_for_cql,
)
from ingest.config import Settings

CLUSTER_NAME = "ledgerflow-cluster"
MAX_NODES = 9
# Bootstrap sleeps ring_delay before it streams; an empty local cluster needs far less than 30 s.
FLAGS = ["-Dcassandra.ring_delay_ms=5000"]


def root(settings: Settings) -> Path:
    return settings.state_dir / "cassandra-cluster"


def node_spec(settings: Settings, index: int, replication_factor: int = 3) -> NodeSpec:
    return NodeSpec(
        address=f"127.0.0.{index}",
        paths=NodePaths(root(settings) / f"node{index}"),
        cql_port=settings.cassandra_port,
        storage_port=settings.cassandra_storage_port,
        jmx_port=settings.cassandra_jmx_port + index - 1,
        cluster_name=CLUSTER_NAME,
        replication_factor=replication_factor,
    )


def known_nodes(settings: Settings) -> list[int]:
    """Indexes of the nodes this state folder holds (a stopped cluster keeps its folders)."""
    base = root(settings)
    if not base.is_dir():
        return []
    return sorted(int(p.name[4:]) for p in base.glob("node*") if p.name[4:].isdigit())


def exists(settings: Settings) -> bool:
    return bool(known_nodes(settings))


def contact_points(nodes: int) -> str:
    return ",".join(f"127.0.0.{i}" for i in range(1, nodes + 1))


def env_hint(settings: Settings, nodes: int) -> str:
    """The settings that point ledgerflow at this cluster."""
    rf = min(3, nodes)
    lines = [
        f"export LEDGERFLOW_CASSANDRA_HOSTS={contact_points(nodes)}",
        "export LEDGERFLOW_REPLICATION=\"{'class': 'SimpleStrategy', "
        f"'replication_factor': {rf}}}\"",
    ]
    if settings.cassandra_port != 9042:
        lines.append(f"export LEDGERFLOW_CASSANDRA_PORT={settings.cassandra_port}")
    return "\n".join(lines)


def _cluster_name(address: str, port: int) -> str | None:
    from cassandra.cluster import Cluster

    cluster = Cluster([address], port=port, connect_timeout=5, protocol_version=5)
    try:
        row = cluster.connect().execute("SELECT cluster_name FROM system.local").one()
        return row[0] if row else None
    except Exception:
        return None
    finally:
        cluster.shutdown()


def _peers_seen_from(address: str, port: int) -> set[str]:
    from cassandra.cluster import Cluster

    cluster = Cluster([address], port=port, connect_timeout=5, protocol_version=5)
    try:
        rows = cluster.connect().execute("SELECT peer FROM system.peers_v2")
        return {str(r[0]) for r in rows}
    except Exception:
        return set()
    finally:
        cluster.shutdown()


def start_node(settings: Settings, index: int, nodes: int, timeout: float) -> str:
    """Start node `index` unless it already answers; wait until it is Normal and node 1 lists it."""
    spec = node_spec(settings, index, replication_factor=min(3, nodes))
    if cql_answers(spec.address, spec.cql_port):
        name = _cluster_name(spec.address, spec.cql_port)
        if name != CLUSTER_NAME:
            raise NodeError(
                f"step 'start {spec.address}': {spec.address}:{spec.cql_port} is a node of "
                f"cluster {name!r}, not this local cluster; choose other ports "
                "(LEDGERFLOW_CASSANDRA_PORT, LEDGERFLOW_CASSANDRA_STORAGE_PORT, "
                "LEDGERFLOW_CASSANDRA_JMX_PORT)."
            )
        return f"node {index} already up on {spec.address}:{spec.cql_port}"
    pid = read_pid(spec.paths)
    if pid is None:
        pid = launch(settings, spec, FLAGS)
    wait_for_cql(spec, pid, timeout)
    if index > 1:  # gossip tells the seed within seconds; the next bootstrap must see it
        deadline = time.monotonic() + 60
        while spec.address not in _peers_seen_from("127.0.0.1", spec.cql_port):
            if time.monotonic() > deadline:
                raise NodeError(
                    f"step 'join {spec.address}': node 1 does not list it as a peer "
                    f"after 60 s; see {spec.paths.log}"
                )
            time.sleep(1.0)
    return f"node {index} up on {spec.address}:{spec.cql_port} (pid {pid}, log {spec.paths.log})"


def start(settings: Settings, nodes: int, timeout: float = 240.0) -> str:
    if not 1 < nodes <= MAX_NODES:
        raise NodeError(f"--nodes must be between 2 and {MAX_NODES}, not {nodes}")
    lines = [start_node(settings, i, nodes, timeout) for i in range(1, nodes + 1)]
    return "\n".join([*lines, "point ledgerflow at it with:", env_hint(settings, nodes)])


def node_pid(settings: Settings, index: int) -> int | None:
    return read_pid(node_spec(settings, index).paths)


def stop_node(settings: Settings, index: int, timeout: float = 90.0) -> int | None:
    return stop_pid(node_spec(settings, index).paths, timeout)


def stop(settings: Settings, timeout: float = 90.0) -> list[str]:
    """Stop every node of the local cluster this state folder started (highest index first)."""
    lines = []
    for index in reversed(known_nodes(settings)):
        pid = stop_node(settings, index, timeout)
        if pid is not None:
            lines.append(f"stopped node {index} (pid {pid})")
    return lines


def nodetool(settings: Settings, index: int, *args: str, timeout: float = 120.0) -> str:
    """Run nodetool (org.apache.cassandra.tools.NodeTool from the fetched jars) against node
    `index`'s JMX port."""
    lib = fetch_server(settings)
    spec = node_spec(settings, index)
    logback = f"-Dlogback.configurationFile=file://{spec.paths.conf / 'logback.xml'}"
    proc = subprocess.run(
        [
            java_binary(),
            "-Xmx128m",
            *JVM17_FLAGS,
            logback,
            "-cp",
            f"{lib}/*",
            "org.apache.cassandra.tools.NodeTool",
            "-h",
            "127.0.0.1",
            "-p",
            str(spec.jmx_port),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise NodeError(
            f"nodetool {' '.join(args)} on node {index}: "
            f"{(proc.stderr or proc.stdout).strip()[-1000:]}"
        )
    return proc.stdout


def status(settings: Settings) -> str:
    """Each node's process and CQL state, then the ring as a live node's nodetool sees it."""
    lines = []
    live = None
    for index in known_nodes(settings):
        spec = node_spec(settings, index)
        pid = read_pid(spec.paths)
        up = pid is not None and _pid_alive(pid) and cql_answers(spec.address, spec.cql_port)
        live = live or (index if up else None)
        lines.append(
            f"node {index} {spec.address}:{spec.cql_port}: {'up' if up else 'down'}; "
            f"pid {pid or '-'}; jmx {spec.jmx_port}; log {spec.paths.log}"
        )
    if live is None:
        lines.append("no node of the local cluster is up")
        return "\n".join(lines)
    try:
        lines.append(nodetool(settings, live, "status").rstrip())
    except (NodeError, subprocess.TimeoutExpired) as exc:
        lines.append(f"(ring unavailable: {exc})")
    return "\n".join(lines)
