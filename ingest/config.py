"""All configuration, from environment variables (prefix ``LEDGERFLOW_``), validated once.

Every field's default is the documented default; README's configuration table mirrors this file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.vocabulary import Currency, Method, Pooling

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGERFLOW_", extra="ignore")

    # --- Cassandra ---------------------------------------------------------------------------
    cassandra_hosts: str = Field(
        "",
        description="Comma-separated contact points of an existing cluster. Empty: the local node "
        "that `ledgerflow cassandra start` manages (127.0.0.1).",
    )
    cassandra_port: int = Field(9042, description="CQL native transport port.")
    cassandra_username: str = Field(
        "", description="Auth user for an existing cluster (empty: no auth)."
    )
    cassandra_password: str = Field("", description="Auth password for an existing cluster.")
    keyspace: str = Field("ledgerflow", description="Keyspace holding all tables.")
    replication: str = Field(
        "{'class': 'SimpleStrategy', 'replication_factor': 1}",
        description="Replication map used when the keyspace is created, e.g. "
        "\"{'class': 'NetworkTopologyStrategy', 'dc1': 3}\" on a real cluster.",
    )
    consistency: str = Field("LOCAL_QUORUM", description="Consistency level of reads and writes.")
    write_concurrency: int = Field(64, ge=1, description="In-flight write requests per process.")
    history_compact_chunks: int = Field(
        8,
        ge=0,
        description="A month of a user's raw history holding more published chunks than this is "
        "compacted at the end of the store stage: each upload's chunks of the month merged into "
        "one (or as few as its rows need), so a read visits fewer chunks; every row keeps the "
        "uploads holding it. A first upload leaves one chunk per store partition in each month. "
        "0: never compacted.",
    )
    cassandra_retry_budget: float = Field(
        180.0,
        ge=0,
        description="Seconds a request failing transiently (node restarting, "
        "Unavailable) is retried before the error reaches the job; covers a node restart.",
    )
    cassandra_outage_wait: float = Field(
        3600.0,
        ge=0,
        description="A job that loses quorum (too few replicas up: Unavailable) notes "
        "the error on its record, waits up to this long (s) for the cluster and resumes.",
    )

    # --- local node (development, tests, demo, benchmarks) ------------------------------------
    cassandra_version: str = Field(
        "5.0.8", description="org.apache.cassandra:cassandra-all version."
    )
    cassandra_heap: str = Field(
        "2G",
        description="Heap of the local node (-Xms/-Xmx); each node "
        "of a local cluster gets this much. 1G ran out (OutOfMemoryError) under a 3M-row job.",
    )
    cassandra_storage_port: int = Field(
        7000, description="Inter-node (storage) port of the local node(s)."
    )
    cassandra_jmx_port: int = Field(
        7199,
        description="JMX port of the local node (nodetool); "
        "node i of a local cluster (`--nodes N`) uses this + i - 1.",
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "ledgerflow",
        description="Where the Cassandra jars are cached (outside git).",
    )
    state_dir: Path = Field(
        PROJECT_ROOT / ".ledgerflow",
        description="Project-local folder: node data, logs, pids, uploads.",
    )

    # --- Ray -----------------------------------------------------------------------------------
    ray_address: str = Field(
        "",
        description="Ray cluster address ('auto' joins a running cluster; empty: the one "
        "RAY_ADDRESS names, as Ray sets it for a Ray job's driver, else a new local instance; "
        "never whichever instance started last on the machine).",
    )
    parse_parallelism: int = Field(
        0, ge=0, description="Parse tasks in flight; 0 = the cluster's CPUs."
    )
    chunk_bytes: int = Field(
        0,
        ge=0,
        description="Target bytes per parse chunk; 0 = adaptive (from the file's row width).",
    )
    map_tasks_per_worker: int = Field(
        8,
        ge=0,
        description="Tasks a pooled Ray worker runs of each map/reduce kind before it exits (0: "
        "no limit): parse, finalize, store, history read and split, whose pieces pass through "
        "Ray's object store; the pages a worker touched there count in its memory for its life. "
        "A file's chunks are about 75k rows each, so a 600k-row file's 8 parse tasks never reach "
        "it; a bigger file's or history's tasks are spread over workers that each hold a few "
        "pieces' pages, not the whole.",
    )
    io_task_cpus: float = Field(
        0.5,
        gt=0,
        le=1,
        description="CPUs each task that mostly waits on Cassandra asks Ray for (store writers, "
        "history reads, tax shards, which write their own rows): under 1 runs more writer "
        "processes than cores, so one's serialization overlaps another's wait. Parse and "
        "finalize tasks (pure CPU) always ask for 1.",
    )
    inline_job_bytes: int = Field(
        2 * 1024**2,
        ge=0,
        description="An upload whose file is at most this many bytes (about 20k rows) runs its "
        "parse and store tasks, and a first upload's tax tasks, in its job task's own process, one "
        "after another: a small job then starts no worker processes (each one's start, imports and "
        "Cassandra session cost more than its rows). 0, or LEDGERFLOW_STAGE_RESOURCES set: every "
        "task on Ray.",
    )
    stage_resources: str = Field(
        "",
        description="JSON {stage: {resource: amount}} that the tasks and actors of a stage "
        '(parse, store, prices, tax) also request, e.g. \'{"tax": {"tax_node": 0.01}}\' keeps '
        "tax tasks on nodes started with that custom resource. Empty: anywhere.",
    )

    # --- storage of uploaded files ---------------------------------------------------------------
    storage_uri: str = Field(
        "",
        description="Where uploads are stored: a folder or any pyarrow "
        "filesystem URI (s3://bucket/prefix). Empty: <state_dir>/uploads.",
    )
    max_upload_bytes: int = Field(
        512 * 1024**2,
        description="Upload size cap (413 past it). Ray Serve 2.60 buffers request "
        "bodies without backpressure (proxy and replica), so the cap bounds their memory too.",
    )

    # --- prices ------------------------------------------------------------------------------------
    price_provider: str = Field(
        "coingecko",
        description="Provider order, comma-separated: "
        "coingecko, defillama (the first that answers wins).",
    )
    coingecko_url: str = Field(
        "http://127.0.0.1:8765",
        description="CoinGecko API base URL; the "
        "default is the bundled simulator (`ledgerflow pricesim`).",
    )
    coingecko_api_key: str = Field("", description="CoinGecko key (sent as a header when set).")
    coingecko_key_kind: str = Field("demo", description="'demo' (x-cg-demo-api-key) or 'pro'.")
    defillama_url: str = Field(
        "https://coins.llama.fi", description="DefiLlama coins API base URL."
    )
    price_rate: float = Field(
        8.0, gt=0, description="Requests per second shared by the whole pool."
    )
    price_burst: int = Field(8, ge=1, description="Token bucket burst of the shared limiter.")
    price_pool_size: int = Field(2, ge=1, description="PriceFetcher actors.")
    price_concurrency: int = Field(
        8, ge=1, description="Requests in flight per PriceFetcher actor."
    )
    price_max_retries: int = Field(
        6,
        ge=0,
        description="Retries of one request on 5xx/network "
        "(429s are bounded by price_retry_budget instead).",
    )
    price_retry_after_cap: float = Field(
        30.0, gt=0, description="Longest Retry-After honoured (s)."
    )
    price_timeout: float = Field(30.0, gt=0, description="Timeout of one price request (s).")
    price_retry_budget: float = Field(
        120.0,
        gt=0,
        description="A provider failing (5xx, network, "
        "429) for longer than this (s) is given up for the job: "
        "its windows come back unavailable, for a later job.",
    )
    price_recheck_hours: float = Field(
        168.0,
        ge=0,
        description="A cached 'no price here' (no_data) or 'unknown coin' (unlisted) "
        "answer older than this is asked again, so one transient empty answer or 404 does not "
        "leave an asset unpriced forever; 0: never asked again.",
    )
    asset_ids_file: str = Field(
        "", description="JSON {symbol: provider id} overriding the bundled map."
    )
    fiat_currency: Currency = Field(
        "USD",
        description="Reporting currency (ISO 4217) of users "
        "who did not choose one: prices are fetched, cached and "
        "valued in it.",
    )

    # --- jobs --------------------------------------------------------------------------------------
    job_handoff_timeout: float = Field(
        10.0,
        gt=0,
        description="How long an upload waits for the "
        "job supervisor to acknowledge a job (s), per attempt.",
    )
    job_handoff_attempts: int = Field(
        4,
        ge=1,
        description="Attempts to hand a recorded job to the "
        "supervisor before leaving it to the periodic resume.",
    )
    job_resume_interval: float = Field(
        30.0,
        gt=0,
        description="Every this many seconds the job supervisor starts any active job it "
        "does not run, and each upload replica asks it to (a job recorded is a job that runs).",
    )
    job_stall_limit: float = Field(
        1200.0,
        ge=0,
        description="A running job whose progress (a task's report, a stage done) has not moved "
        "for this many seconds is noted on its record with the stage and tasks it waits for and "
        "restarted from its last completed stage by the job supervisor; longer than any one task "
        "runs without reporting. 0: no watchdog.",
    )
    job_stall_restarts: int = Field(
        2,
        ge=0,
        description="Restarts of a stalled job; it stalls once more and it ends as failed with "
        "the watchdog's message.",
    )
    test_hooks: bool = Field(
        False,
        description="Testing only: tasks consult the `ledgerflow-test-hooks` actor, which can "
        "hold a stage's tasks of a user (tests freeze a job with it to prove the watchdog).",
    )

    # --- tax -----------------------------------------------------------------------------------------
    default_method: Method = Field(Method.FIFO, description="fifo | lifo | hifo | acb | uk")
    default_pooling: Pooling = Field(
        Pooling.PER_WALLET, description="per-wallet | universal (uk always pools universally)"
    )
    transfer_window_hours: float = Field(
        24.0,
        gt=0,
        description="Deposit must follow its withdrawal "
        "within this window to be matched as a transfer.",
    )
    transfer_max_fee_share: float = Field(
        0.05, ge=0, description="Largest share of a withdrawal that may be lost as transfer fee."
    )
    tax_checkpoints: bool = Field(
        True,
        description="Keep per-asset checkpoints at each tax-year start so an upload recomputes "
        "an asset only from the last start its rows cannot reach (false: every upload walks "
        "each touched asset from its first row; checkpoints are neither read nor written).",
    )

    # --- serve ---------------------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Serve HTTP host.")
    api_port: int = Field(8000, description="Serve HTTP port.")
    request_deadline: float = Field(
        20.0,
        gt=0,
        le=50,
        description="Seconds within which an API request's database calls (retries of a "
        "Cassandra outage included) and an upload's hand-off to the job supervisor end; past it "
        "the request answers 503 and its worker is free again.",
    )
    page_token_key: str = Field(
        "",
        description="HMAC key signing page tokens. Empty: a random key made once per "
        "deployment and kept in its keyspace (deployment_secrets), the same on every replica.",
    )

    @property
    def contact_points(self) -> list[str]:
        return [h.strip() for h in self.cassandra_hosts.split(",") if h.strip()] or ["127.0.0.1"]

    @property
    def uses_local_node(self) -> bool:
        return not self.cassandra_hosts.strip()

    @property
    def uploads_uri(self) -> str:
        return self.storage_uri or str(self.state_dir / "uploads")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
