"""The query application (served at /; OpenAPI page /docs): jobs, transactions, balances, gains,
Form 8949, reconciliation, settings, health.

Every read is one partition (or, for transactions, a walk over a user's month partitions) of a
table the pipeline precomputed; handlers only page, filter and shape rows. Handlers are plain
functions: FastAPI runs them in its thread pool, where the blocking Cassandra driver belongs.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime, time, timezone
from decimal import ROUND_HALF_UP, Decimal

from cassandra.cluster import Session
from fastapi import Body, Depends, FastAPI, Path, Query

from ingest.extract.formats import FORMATS
from ingest.extract.formats.mapped import NAME as MAPPED
from ingest.extract.formats.mapped import ColumnMapping
from ingest.load import jobs, queries
from ingest.load.cassandra import execute
from ingest.load.format_mappings import get_mapping, put_mapping
from ingest.load.users import (
    UserSettings,
    deployment_defaults,
    get_user_settings,
    put_user_settings,
)
from ingest.normalize.assets import normalize_symbol
from ingest.normalize.canonical import TX_TYPES
from ingest.pipeline.results import IngestResult
from ingest.prices.cache_store import latest_prices
from ingest.tax.engine import check_options
from ingest.vocabulary import STAGES, JobKind, JobStatus, Method, Pooling
from serve.auth import current_user
from serve.corrections_api import router as corrections_router
from serve.deps import db, settings
from serve.errors import ApiError, install_error_handlers, not_found
from serve.models import (
    ERROR_RESPONSES,
    Balance,
    Choices,
    ErrorBody,
    Finding,
    FormatList,
    FormatMapping,
    FormatVersion,
    GainsPage,
    GainsRow,
    Health,
    ImportSummary,
    JobAccepted,
    JobSummary,
    JobView,
    Page,
    RejectedRow,
    SettingsUpdate,
    SettingsView,
    StageProgress,
    Transaction,
)
from serve.page_tokens import (
    Limit,
    PageToken,
    decode_paging_state,
    decode_tx_cursor,
    encode_paging_state,
    encode_tx_cursor,
    list_scope,
    paged,
)
from serve.pages import install_local_docs, install_web_app
from serve.pipeline_link import hand_to_pipeline
from serve.reports import checked_year
from serve.reports_api import router as reports_router
from serve.review_api import router as review_router

END_OF_DAY = time(23, 59, 59, 999000)  # the last millisecond (Cassandra timestamps)

app = FastAPI(
    title="ledgerflow query API",
    version="1",
    description="Jobs, priced transactions, balances, gains, reports and settings. "
    "Every /v1 call needs `Authorization: Bearer <token>` (`ledgerflow "
    "token create USER`). Uploads: POST /v1/uploads, documented at "
    "/v1/uploads/docs. Lists answer `{items, next_page_token}`; errors "
    "answer `{error: {code, message}}`.",
    responses=ERROR_RESPONSES,
    docs_url=None,
    redoc_url=None,
)
install_error_handlers(app)
install_local_docs(app, "ledgerflow query API")
install_web_app(app)


def owned_job(session: Session, user_id: str, job_id: str) -> jobs.JobRecord:
    """The caller's job; another user's job is as unknown as a missing one (404)."""
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        raise not_found("job") from None
    job = jobs.get_job(session, key)
    if job is None or job.user_id != user_id:
        raise not_found("job")
    return job


# --- health ---------------------------------------------------------------------------------------
@app.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": ErrorBody}},
    summary="Liveness: Cassandra answers (no auth)",
)
def healthz() -> Health:
    try:
        row = execute(db(), "SELECT release_version FROM system.local", budget_s=0).one()
    except Exception as exc:
        raise ApiError(
            503, "unavailable", f"Cassandra does not answer: {type(exc).__name__}"
        ) from None
    return Health(status="ok", cassandra=row["release_version"] if row else "unknown")


# --- jobs -----------------------------------------------------------------------------------------
@app.get(
    "/v1/formats",
    response_model=FormatList,
    responses=ERROR_RESPONSES,
    summary="The export formats read, every header version with the columns it expects",
)
def list_formats(user_id: str = Depends(current_user)) -> FormatList:
    mapping = get_mapping(db(), user_id)
    specs = list(FORMATS.values()) + ([mapping.spec()] if mapping is not None else [])
    return FormatList(
        items=[
            FormatVersion(
                name=f.name,
                source=f.source_name,
                description=f.description,
                columns=list(f.columns),
                optional_columns=list(f.optional_columns),
                zoned=bool(f.zoned),
                date_order=f.date_order,
            )
            for f in specs
        ]
    )


@app.get("/v1/jobs", response_model=Page[JobSummary], summary="Your jobs, newest first")
def list_jobs(
    user_id: str = Depends(current_user), limit: int = Limit, page_token: str | None = PageToken
) -> Page[JobSummary]:
    scope = list_scope("/v1/jobs", user_id)
    state = decode_paging_state(page_token, scope)
    page = paged(lambda: queries.user_jobs_page(db(), user_id, limit, state), page_token)
    return Page[JobSummary](
        items=[JobSummary(**r) for r in page.rows],
        next_page_token=encode_paging_state(page.paging_state, scope),
    )


@app.get("/v1/jobs/{job_id}", response_model=JobView, summary="A job's status and progress")
def get_job(
    job_id: str = Path(description="The id POST /v1/uploads answered"),
    user_id: str = Depends(current_user),
) -> JobView:
    session = db()
    job = owned_job(session, user_id, job_id)
    stages = {name: StageProgress(**p) for name, p in jobs.progress(session, job.job_id).items()}
    tax = job.summary.get("tax") or {}
    return JobView(
        job_id=job.job_id,
        kind=job.kind,
        status=job.status,
        stages=stages,
        completed_stages=[s for s in STAGES if s in job.completed_stages],
        accepted=job.accepted,
        rejected=job.rejected,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
        error_code=job.error_code,
        file_name=job.file_name,
        size_bytes=job.size_bytes,
        file_sha256=job.file_sha256,
        format=job.format,
        detected_format=job.detected_format,
        wallet=job.wallet,
        tz=job.tz,
        stage_timings=job.stage_timings,
        notes=(job.summary.get("ingest") or {}).get("notes", []),
        errors_url=f"/v1/jobs/{job.job_id}/errors",
        import_summary=import_summary(job.summary),
        history_transactions=tax.get("history_rows"),
        corrections=job.summary.get("corrections"),
        recomputed_assets=tax.get("recomputed_assets") if tax else None,
        recompute_from=tax.get("recompute_from"),
        corrections_touched=tax.get("corrections_touched") or None,
    )


def import_summary(summary: dict) -> ImportSummary | None:
    """The upload's counts from the results its ingest step recorded (none before it ends)."""
    if not summary.get("ingest"):
        return None
    ingest = IngestResult.model_validate(summary["ingest"])
    return ImportSummary(
        rows_read=ingest.rows,
        rows_used=max(0, ingest.rows - ingest.skipped - ingest.rejected),
        transactions=ingest.accepted,
        new_transactions=ingest.accepted - ingest.already_present,
        already_present=ingest.already_present,
        skipped=ingest.skipped,
        rejected=ingest.rejected,
        skipped_reasons=ingest.skipped_reasons,
        rejected_reasons=ingest.rejected_reasons,
        format=ingest.format,
        wallets=ingest.wallets,
    )


@app.get(
    "/v1/jobs/{job_id}/errors",
    response_model=Page[RejectedRow],
    summary="A job's rejected rows by line",
)
def job_errors(
    job_id: str,
    user_id: str = Depends(current_user),
    limit: int = Limit,
    page_token: str | None = PageToken,
) -> Page[RejectedRow]:
    session = db()
    job = owned_job(session, user_id, job_id)
    scope = list_scope("/v1/jobs/errors", user_id, str(job.job_id))
    state = decode_paging_state(page_token, scope)
    rows, next_state = paged(
        lambda: jobs.list_rejected(session, job.job_id, limit, state), page_token
    )
    return Page[RejectedRow](
        items=[RejectedRow(**r) for r in rows],
        next_page_token=encode_paging_state(next_state, scope),
    )


# --- transactions ---------------------------------------------------------------------------------
def time_bound(value: str | None, name: str, *, end: bool) -> datetime | None:
    """ISO date or date-time; a date as `to` means through the end of that day; no offset: UTC.
    Moments past the calendar's ends (9999-12-31 as `to`, offsets at year 1 or 9999) are the
    ends of the searchable range."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, END_OF_DAY if end else time(), timezone.utc)
        else:
            moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400,
            "invalid_time",
            f"{name} must be an ISO 8601 date or date-time (2024-03-01, 2024-03-01T12:00:00Z)",
        ) from None
    try:
        moment = (
            moment.replace(tzinfo=timezone.utc)
            if moment.tzinfo is None
            else moment.astimezone(timezone.utc)
        )
    except OverflowError:  # an offset past year 1 or 9999
        return queries.EARLIEST if moment.year < 5000 else queries.LATEST
    return min(max(moment, queries.EARLIEST), queries.LATEST)


def transaction_item(row: dict) -> Transaction:
    return Transaction(
        **{
            **row,
            "balance_after": dict(row["balance_after"] or {}),
            "flags": sorted(row["flags"] or ()),
        }
    )


@app.get(
    "/v1/transactions",
    response_model=Page[Transaction],
    summary="Your priced transactions, newest first",
    description="`from`/`to` bound the time range (inclusive; a date as `to` includes that "
    "day) and cost nothing extra. `asset` (sent, received or fee asset), `wallet` "
    "and `type` are applied while paging: a selective filter reads the "
    "non-matching rows too (an asset filter skips the months without it), at "
    f"most {queries.TX_SCAN_BUDGET} rows per call, so a page may end early (even "
    "empty) with a next_page_token.",
)
def list_transactions(
    user_id: str = Depends(current_user),
    asset: str | None = Query(
        None,
        max_length=64,
        description="e.g. BTC (normalized like the files' symbols: btc, XBT -> BTC)",
    ),
    wallet: str | None = Query(None, max_length=200),
    type: str | None = Query(None, description=f"One of {', '.join(sorted(TX_TYPES))}"),
    from_: str | None = Query(None, alias="from", description="ISO date or date-time"),
    to: str | None = Query(None, description="ISO date or date-time"),
    limit: int = Limit,
    page_token: str | None = PageToken,
) -> Page[Transaction]:
    if type is not None and type not in TX_TYPES:
        raise ApiError(400, "bad_request", f"type must be one of {', '.join(sorted(TX_TYPES))}")
    start, end = time_bound(from_, "from", end=False), time_bound(to, "to", end=True)
    flt = queries.TxFilter(
        start=start or queries.EARLIEST,
        end=end or queries.LATEST,
        asset=normalize_symbol(asset) if asset else None,
        wallet=wallet or None,
        type=type,
    )
    if flt.start > flt.end:
        raise ApiError(400, "bad_request", "from is after to")
    scope = list_scope("/v1/transactions", user_id)
    cursor = decode_tx_cursor(page_token, scope)
    rows, following = paged(
        lambda: queries.transactions_page(db(), user_id, flt, limit, cursor), page_token
    )
    return Page[Transaction](
        items=[transaction_item(r) for r in rows],
        next_page_token=encode_tx_cursor(following, scope),
    )


# --- balances, gains, reports, reconciliation -----------------------------------------------------
@app.get("/v1/balances", response_model=Page[Balance], summary="Your balances by wallet and asset")
def list_balances(
    user_id: str = Depends(current_user),
    wallet: str | None = Query(None, max_length=200),
    limit: int = Limit,
    page_token: str | None = PageToken,
) -> Page[Balance]:
    scope = list_scope("/v1/balances", user_id, wallet)
    state = decode_paging_state(page_token, scope)
    page = paged(
        lambda: queries.balances_page(db(), user_id, limit, state, wallet or None), page_token
    )
    currency = get_user_settings(db(), user_id, deployment_defaults(settings())).currency
    return Page[Balance](
        items=valued_balances(page.rows, latest_prices_of(page.rows, currency), currency),
        next_page_token=encode_paging_state(page.paging_state, scope),
    )


def latest_prices_of(rows: list[dict], currency: str) -> dict[str, tuple[datetime, Decimal]]:
    assets = {r["asset"] for r in rows if r["asset"] != currency}
    return latest_prices(db(), assets, currency=currency.lower()) if assets else {}


CENT = Decimal("0.01")


def valued_balances(
    rows: list[dict], prices: dict[str, tuple[datetime, Decimal]], currency: str
) -> list[Balance]:
    """Each balance at its asset's latest cached price (the currency itself at 1), rounded to
    the cent; no price: no market value, and no unrealized gain."""
    out = []
    for r in rows:
        quote = (None, Decimal(1)) if r["asset"] == currency else prices.get(r["asset"])
        value = gain = None
        if quote is not None and r["quantity"] is not None:
            value = (r["quantity"] * quote[1]).quantize(CENT, ROUND_HALF_UP)
            if r["cost_basis"] is not None:
                gain = value - r["cost_basis"].quantize(CENT, ROUND_HALF_UP)
        out.append(
            Balance(
                **r,
                price=quote[1] if quote else None,
                price_at=quote[0] if quote else None,
                market_value=value,
                unrealized_gain=gain,
                negative=r["quantity"] is not None and r["quantity"] < 0,
            )
        )
    return out


@app.get(
    "/v1/gains",
    response_model=GainsPage,
    summary="Gains and income per tax year and asset",
    description="With `year`: that year's totals and one item per asset (paged). Without: "
    "one item per year holding its totals (asset '*').",
)
def year_gains(
    year: str | None = Query(None, description="Tax year: 2024, or 2024/25 for the UK method"),
    user_id: str = Depends(current_user),
    limit: int = Limit,
    page_token: str | None = PageToken,
) -> GainsPage:
    session = db()
    if year is None:
        return GainsPage(
            year=None,
            totals=None,
            next_page_token=None,
            items=[GainsRow(**r) for r in queries.totals_by_year(session, user_id)],
        )
    year = checked_year(year)
    scope = list_scope("/v1/gains", user_id, year)
    state = decode_paging_state(page_token, scope)
    page = paged(lambda: queries.year_assets_page(session, user_id, year, limit, state), page_token)
    totals = queries.year_totals(session, user_id, year)
    return GainsPage(
        year=year,
        totals=GainsRow(**totals) if totals else None,
        items=[GainsRow(**r) for r in page.rows],
        next_page_token=encode_paging_state(page.paging_state, scope),
    )


app.include_router(reports_router)
app.include_router(corrections_router)
app.include_router(review_router)


@app.get(
    "/v1/reconciliation",
    response_model=Page[Finding],
    summary="Reconciliation findings (unmatched transfers, negative balances, ...)",
)
def list_findings(
    user_id: str = Depends(current_user),
    kind: str | None = Query(None, max_length=64, description="e.g. unmatched_withdrawal"),
    limit: int = Limit,
    page_token: str | None = PageToken,
) -> Page[Finding]:
    scope = list_scope("/v1/reconciliation", user_id, kind)
    state = decode_paging_state(page_token, scope)
    page = paged(
        lambda: queries.findings_page(db(), user_id, limit, state, kind or None), page_token
    )
    return Page[Finding](
        items=[finding_item(r) for r in page.rows],
        next_page_token=encode_paging_state(page.paging_state, scope),
    )


NO_TIMESTAMP = datetime(1970, 1, 1)  # what the writer stores for a finding without a time


def finding_item(row: dict) -> Finding:
    # The table's key cannot hold nulls: the writer stores '' and the epoch for "none".
    ts = row["timestamp"]
    return Finding(
        kind=row["kind"],
        asset=row["asset"] or None,
        tx_id=row["tx_id"] or None,
        timestamp=None if ts is None or ts.replace(tzinfo=None) == NO_TIMESTAMP else ts,
        detail=row["detail"],
    )


# --- the generic CSV's column mapping ------------------------------------------------------------
@app.get(
    "/v1/formats/mapping",
    response_model=FormatMapping,
    responses=ERROR_RESPONSES,
    summary="Your saved column mapping of a generic CSV (404 when none is saved)",
)
def read_mapping(user_id: str = Depends(current_user)) -> FormatMapping:
    mapping = get_mapping(db(), user_id)
    if mapping is None:
        raise ApiError(404, "no_mapping", "no column mapping saved: PUT /v1/formats/mapping")
    return FormatMapping(**asdict(mapping))


@app.put(
    "/v1/formats/mapping",
    response_model=FormatMapping,
    responses=ERROR_RESPONSES,
    summary="Name your CSV's columns once; uploads with ?format=mapped read them",
)
def write_mapping(
    body: FormatMapping = Body(), user_id: str = Depends(current_user)
) -> FormatMapping:
    mapping = ColumnMapping.from_dict(body.model_dump())
    problems = mapping.errors()
    if problems:
        raise ApiError(422, "invalid_mapping", "; ".join(problems))
    put_mapping(db(), user_id, mapping)
    return FormatMapping(**asdict(mapping))


# --- settings -------------------------------------------------------------------------------------
@app.get("/v1/settings", response_model=SettingsView, summary="Your tax settings")
def read_settings(user_id: str = Depends(current_user)) -> SettingsView:
    value = get_user_settings(db(), user_id, deployment_defaults(settings()))
    return SettingsView(method=value.method, pooling=value.pooling, currency=value.currency)


@app.put(
    "/v1/settings",
    status_code=202,
    response_model=JobAccepted,
    summary="Change the cost-basis method or pooling; recomputes your data in a job",
)
def write_settings(
    update: SettingsUpdate = Body(), user_id: str = Depends(current_user)
) -> JobAccepted:
    try:  # the engine's own rule (uk pools per person...): refused here, not by every later job
        check_options(update.method, update.pooling)
    except ValueError as exc:
        raise ApiError(422, "invalid_settings", str(exc)) from None
    session = db()
    current = get_user_settings(session, user_id, deployment_defaults(settings()))
    put_user_settings(
        session,
        user_id,
        UserSettings(update.method, update.pooling, update.currency or current.currency),
    )
    job_id = jobs.create_job(session, user_id=user_id, kind=JobKind.RECOMPUTE)
    hand_to_pipeline(job_id)
    return JobAccepted(job_id=job_id, status=JobStatus.QUEUED)


@app.get(
    "/v1/choices",
    response_model=Choices,
    summary="Valid values: method -> its poolings, transaction types, upload formats",
)
def list_choices(user_id: str = Depends(current_user)) -> Choices:
    poolings: dict[str, list[str]] = {}
    for method in Method:
        for pooling in Pooling:
            try:
                check_options(method, pooling)
            except ValueError:
                continue
            poolings.setdefault(method, []).append(pooling)
    return Choices(poolings=poolings, tx_types=sorted(TX_TYPES), formats=[*FORMATS, MAPPED])
