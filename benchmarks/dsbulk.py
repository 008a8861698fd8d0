"""DSBulk (DataStax Bulk Loader) loading the same canonical CSV as COPY FROM: the second load anchor.

DSBulk has no distribution artifact on Maven Central, so its runner and the modules a CSV load
needs are fetched with Maven (as the Cassandra server is, devtools/devstack/cassandra_node.py)
into `<cache_dir>/dsbulk-<version>/lib` once, then run as
`java -cp lib/* com.datastax.oss.dsbulk.runner.DataStaxBulkLoader load ...` into a table shaped
like COPY FROM's (copy_from.CREATE_TABLE). `-escape` is set to a double quote for the same reason
as COPY's ESCAPE (the csv module doubles a quote inside a field). Its rows/s is DSBulk's own
summary figure (total rows / the operation's elapsed time, JVM start-up excluded); the wall time
of the java process is recorded too.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.copy_from import empty_table

VERSION = "1.10.0"
MAIN_CLASS = "com.datastax.oss.dsbulk.runner.DataStaxBulkLoader"
TABLE = "dsbulk_transactions"
MODULES = (
    "dsbulk-runner",
    "dsbulk-workflow-load",
    "dsbulk-connectors-csv",
    "dsbulk-executor-reactor",
    "dsbulk-batcher-reactor",
)
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ledgerflow</groupId><artifactId>dsbulk</artifactId><version>1</version>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>com.datastax.oss</groupId><artifactId>dsbulk-bom</artifactId>
        <version>{version}</version><type>pom</type><scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
# DSBulk's settings are HOCON: a quoted string holding one double quote.
ESCAPE_DOUBLE_QUOTE = '"\\""'
SUMMARY_RE = re.compile(r"^\s*([\d,]+)\s*\|\s*([\d,]+)\s*\|\s*([\d,]+)\s*\|", re.MULTILINE)


@dataclass
class DsbulkResult:
    rows: int
    failed: int
    rows_per_s: float  # DSBulk's summary
    seconds: float  # rows / rows_per_s: the operation's time as DSBulk measures it
    wall_seconds: float  # the whole java process, JVM start-up included
    command: str
    output_tail: str


def pom() -> str:
    dependencies = "\n".join(
        f"    <dependency><groupId>com.datastax.oss</groupId><artifactId>{m}</artifactId>"
        "</dependency>"
        for m in MODULES
    )
    return POM.format(version=VERSION, dependencies=dependencies)


def fetch_dsbulk() -> Path:
    """DSBulk's jars in the cache folder (fetched with Maven on first use); the lib folder."""
    from devtools.devstack.cassandra_node import fetch_maven_jars
    from ingest.config import get_settings

    lib = get_settings().cache_dir / f"dsbulk-{VERSION}" / "lib"
    if (lib / f"dsbulk-runner-{VERSION}.jar").exists():
        return lib
    return fetch_maven_jars(
        pom(), lib, f"DSBulk {VERSION}", "skip the DSBulk anchor (it needs Maven)"
    )


def parse_summary(output: str) -> tuple[int, int, float]:
    """(total, failed, rows/s) from DSBulk's final summary table
    (` total | failed | rows/s | p50ms | ...` then a line of figures). Without a terminal DSBulk
    also prints the table as it goes: the last one is the operation's."""
    match = SUMMARY_RE.search(output.rsplit("total | failed | rows/s", 1)[-1])
    if "total | failed | rows/s" not in output or match is None:
        raise ValueError("no DSBulk summary ('total | failed | rows/s') in its output")
    total, failed, rate = (int(g.replace(",", "")) for g in match.groups())
    return total, failed, float(rate)


def run_dsbulk(
    session, keyspace: str, csv_path: Path, host: str, port: int, log_dir: Path
) -> DsbulkResult:
    """Recreate an empty dsbulk_transactions and load `csv_path` into it with DSBulk."""
    from devtools.devstack.cassandra_node import java_binary

    lib = fetch_dsbulk()
    empty_table(session, TABLE)
    cmd = [
        java_binary(),
        "-cp",
        f"{lib}/*",
        MAIN_CLASS,
        "load",
        "-h",
        host,
        "-port",
        str(port),
        "-k",
        keyspace,
        "-t",
        TABLE,
        "-url",
        str(csv_path),
        "-header",
        "true",
        "-escape",
        ESCAPE_DOUBLE_QUOTE,
        "-logDir",
        str(log_dir),
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    try:
        rows, failed, rate = parse_summary(output)
    except ValueError as exc:
        raise RuntimeError(
            f"step 'DSBulk': exited {proc.returncode}, {exc}:\n{output[-3000:]}"
        ) from None
    if proc.returncode != 0 or failed:
        raise RuntimeError(
            f"step 'DSBulk': exited {proc.returncode}, {failed} rows failed:\n{output[-3000:]}"
        )
    return DsbulkResult(
        rows=rows,
        failed=failed,
        rows_per_s=rate,
        seconds=rows / rate if rate > 0 else 0.0,
        wall_seconds=wall,
        command=" ".join(cmd[:2] + ["'<lib>/*'"] + cmd[3:]),
        output_tail=output.strip()[-600:],
    )


def as_dict(result: DsbulkResult) -> dict:
    return asdict(result)
