"""The API's response and request bodies. Decimals are JSON strings (exact, plain notation);
timestamps are ISO 8601 UTC."""

from __future__ import annotations

import uuid
from dataclasses import MISSING
from dataclasses import fields as dataclass_fields
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, Union, get_type_hints

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, create_model

from ingest.corrections.kinds import (
    KINDS,
    Change,
    DeleteUpload,
    Undo,
)
from ingest.normalize.canonical import plain_decimal
from ingest.vocabulary import Currency, Method, Pooling


def as_utc(value: datetime) -> datetime:
    """The driver returns naive UTC datetimes; answer them as UTC."""
    return (
        value.replace(tzinfo=timezone.utc)
        if value.tzinfo is None
        else value.astimezone(timezone.utc)
    )


Amount = Annotated[Decimal, PlainSerializer(plain_decimal, return_type=str, when_used="json")]
UtcTime = Annotated[datetime, AfterValidator(as_utc)]
ItemT = TypeVar("ItemT")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Bad request"),
        (401, "Missing or invalid bearer token"),
        (404, "Not found"),
        (422, "Invalid parameters"),
        (503, "The database did not answer within the request deadline; try again shortly"),
    )
}


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_page_token: str | None = Field(
        None,
        description="Pass as page_token for the next page; null when there is none. A page "
        "may hold fewer items than the limit (even none) and still have a next page.",
    )


# --- jobs --------------------------------------------------------------------------------------
class FormatVersion(BaseModel):
    name: str = Field(description="The version id (usable as ?format= of an upload)")
    source: str = Field(description="The exchange or tool (?format= accepts it too)")
    description: str
    columns: list[str] = Field(
        description="The header it expects, in the export's order "
        "({ccy}: a currency code in the column name)"
    )
    optional_columns: list[str]
    zoned: bool = Field(
        description="The timestamps carry their zone (UTC by the column's name or the exchange's "
        "documentation, or an offset): an upload's tz does not move them"
    )
    date_order: str | None = Field(
        description="How slashed dates are read when the file does not tell (no day above 12): "
        "mdy (month first) or dmy; null: not rewritten (a mapping's own timestamp format)"
    )


class FormatList(BaseModel):
    items: list[FormatVersion]


class JobAccepted(BaseModel):
    job_id: uuid.UUID
    status: str


class UploadAccepted(JobAccepted):
    file_name: str
    size_bytes: int
    sha256: str


class StageProgress(BaseModel):
    done: int
    total: int


class JobView(BaseModel):
    job_id: uuid.UUID
    kind: str
    status: str
    stages: dict[str, StageProgress]
    completed_stages: list[str]
    accepted: int
    rejected: int
    created_at: UtcTime | None
    updated_at: UtcTime | None
    started_at: UtcTime | None
    finished_at: UtcTime | None
    error: str | None = Field(None, description="Why a failed job failed: a short message")
    error_code: str | None = Field(
        None,
        description="Stable code of the failure: invalid_input, storage_unavailable, internal, "
        "stalled (no progress; the job watchdog gave up)",
    )
    file_name: str | None
    size_bytes: int | None
    file_sha256: str | None
    format: str | None
    detected_format: str | None
    wallet: str | None
    tz: str | None
    stage_timings: dict[str, float]
    notes: list[str] = Field(
        default_factory=list,
        description="How the file was read where it reads two ways (the order of slashed dates)",
    )
    errors_url: str
    history_transactions: int | None = Field(
        None,
        description="The transactions of your history the tax stage read (a recompute: all); "
        "the tax stage's progress counts rows written, a trade of two assets once per asset",
    )
    import_summary: ImportSummary | None = Field(
        None, description="What an upload's file gave, once its parse and store stages ended"
    )
    corrections: list[uuid.UUID] | None = Field(
        None, description="A correction job's corrections (an undo is one; GET /v1/corrections)"
    )
    recomputed_assets: list[str] | None = Field(
        None,
        description="Once its tax stage ended: the assets it recomputed (an upload's or a "
        "correction's: those they touch; a settings change: all)",
    )
    recompute_from: UtcTime | None = Field(
        None,
        description="The tax-year start it recomputed those from (null: from the first row)",
    )
    corrections_touched: dict[str, UtcTime] | None = Field(
        None, description="A correction job's: per asset, the earliest time its corrections change"
    )


class ImportSummary(BaseModel):
    """rows_read = rows_used + skipped + rejected; the rows used made `transactions` (an
    exchange statement lists one trade as two or more rows: they make one transaction), of which
    `already_present` were stored before (the same rows uploaded again add nothing) and
    `new_transactions` were not."""

    rows_read: int = Field(description="Data rows in the file (the header not counted)")
    rows_used: int = Field(description="Rows that went into transactions")
    transactions: int = Field(description="Transactions made from the rows used")
    new_transactions: int
    already_present: int = Field(description="Transactions stored before by another upload")
    skipped: int = Field(description="Rows deliberately left out (no tax effect), by reason")
    rejected: int = Field(description="Rows refused, by reason (GET errors_url lists each line)")
    skipped_reasons: dict[str, int]
    rejected_reasons: dict[str, int]
    format: str = Field(description="The format the file was read as")
    wallets: list[str] = Field(description="The wallets the stored transactions carry")


class JobSummary(BaseModel):
    job_id: uuid.UUID
    status: str


class RejectedRow(BaseModel):
    line: int
    reason: str
    raw: str


# --- read side -----------------------------------------------------------------------------------
class Transaction(BaseModel):
    tx_id: str
    timestamp: UtcTime
    wallet: str | None
    type: str | None
    label: str | None
    sent_asset: str | None
    sent_amount: Amount | None
    received_asset: str | None
    received_amount: Amount | None
    fee_asset: str | None
    fee_amount: Amount | None
    price: Amount | None
    price_source: str | None
    value: Amount | None
    cost_basis: Amount | None
    gain: Amount | None
    term: str | None
    balance_after: dict[str, Amount]
    flags: list[str]
    tx_hash: str | None


class Balance(BaseModel):
    wallet: str
    asset: str
    quantity: Amount | None
    cost_basis: Amount | None
    updated_at: UtcTime | None
    price: Amount | None = Field(
        None, description="The asset's latest cached price in your currency (null: none cached)"
    )
    price_at: UtcTime | None = Field(None, description="When that price was quoted")
    market_value: Amount | None = Field(None, description="quantity x price, to the cent")
    unrealized_gain: Amount | None = Field(None, description="market_value - cost_basis")
    negative: bool = Field(
        False,
        description="The quantity is below zero: the history is incomplete (GET /v1/review "
        "lists the transaction that took it there, kind negative_balance)",
    )


class GainsRow(BaseModel):
    year: str
    asset: str = Field(description="'*' for a year's totals over all assets")
    proceeds: Amount | None
    cost_basis: Amount | None
    short_term_gain: Amount | None = Field(
        description="null: the method has no holding-period split (uk, acb)"
    )
    long_term_gain: Amount | None
    gain: Amount | None = Field(description="proceeds - cost_basis")
    income: Amount | None


class GainsPage(Page[GainsRow]):
    year: str | None = Field(description="The year asked for; null: items are every year's totals")
    totals: GainsRow | None = Field(
        description="The year's totals over all assets (null: no "
        "summary for that year, or no year asked for)"
    )


class BoxTotal(BaseModel):
    """Form 8949 line 2 of one part and box: the sums of its printed lines (cents)."""

    part: str = Field(description="I (short term) or II (long term)")
    box: str = Field(description="C/F before tax year 2025, I/L from 2025 (no 1099)")
    schedule_d_line: str = Field(description="The Schedule D line the totals go to (3, 10)")
    lines: int
    proceeds: str
    cost_basis: str
    adjustment: str
    gain_or_loss: str


class ReportSummary(BaseModel):
    year: str
    disposal_lines: int = Field(description="The year's stored disposal lines (all terms)")
    zero_cost_basis_lines: int = Field(
        description="Of those, lines whose cost basis is zero (no known acquisition)"
    )
    form8949: list[BoxTotal] = Field(description="Per part and box; empty for UK years")
    downloads: dict[str, str] = Field(description="Report name -> its URL for this year")


class Finding(BaseModel):
    kind: str
    asset: str | None
    timestamp: UtcTime | None
    tx_id: str | None
    detail: str | None


# --- review and explain (issue 21) ---------------------------------------------------------
class ReviewAction(BaseModel):
    kind: str = Field(description="The correction that fixes it (POST /v1/corrections kind)")
    counterpart_tx_id: str | None = Field(
        None,
        description="mark_transfer: the other leg the reconciler saw as a near miss (only the "
        "fee limit kept them apart); null when it saw none",
    )


class ReviewGroup(BaseModel):
    kind: str = Field(description="Finding kind, e.g. unmatched_deposit")
    title: str
    count: int
    actions: list[str] = Field(description="Correction kinds that fix a finding of this kind")


class ReviewSummary(BaseModel):
    groups: list[ReviewGroup] = Field(description="Kinds with findings, the costliest first")
    total: int = Field(description="Findings of every kind: the sum of the groups' counts")


class ReviewItem(BaseModel):
    tx_id: str | None
    timestamp: UtcTime | None
    type: str | None = Field(description="The transaction's type (null: not in the view)")
    wallet: str | None
    asset: str | None
    amount: Amount | None = Field(description="What the transaction moved of `asset`")
    message: str
    actions: list[ReviewAction]


class ExplainedDisposal(BaseModel):
    tx_id: str
    timestamp: UtcTime
    asset: str
    wallet: str
    quantity: Amount
    proceeds: Amount
    cost_basis: Amount = Field(description="The sum of the lots' costs")
    gain: Amount = Field(description="proceeds - cost_basis")
    term: str = Field(description="short | long | mixed | n/a")
    method: Method


class ConsumedLot(BaseModel):
    acquired_at: UtcTime | None = Field(
        description="null: a share of an average-cost pool, or units no acquisition supplied"
    )
    wallet: str = Field(description="The pool the lot was taken from: a wallet, or '*' (all)")
    quantity: Amount
    cost: Amount = Field(
        description="Its cost basis in this disposal (with its share of "
        "the selling fee where proceeds are gross, uk: selling_costs)"
    )
    selling_costs: Amount
    currency: Currency
    from_tx_id: str | None = Field(description="The transaction that acquired it")
    rule: str = Field(
        description="fifo | hifo | lifo | same_day | bed_and_breakfast (30-day) | pool "
        "(Section 104) | acb | no_basis (zero cost basis: nothing to match)"
    )


class DisposalLots(BaseModel):
    disposal: ExplainedDisposal
    lots: list[ConsumedLot] = Field(
        description="Their quantities and costs add up to the disposal's quantity and cost basis"
    )


# --- settings and health -------------------------------------------------------------------------
class SettingsUpdate(BaseModel):
    method: Method = Field(description="Cost-basis method")
    pooling: Pooling = Field(description="Lots per wallet or one universal pool (uk: universal)")
    currency: Currency | None = Field(
        None, description="Reporting currency, ISO 4217 (EUR); omitted: unchanged"
    )


class SettingsView(BaseModel):
    method: Method
    pooling: Pooling
    currency: str


class Choices(BaseModel):
    poolings: dict[str, list[str]] = Field(
        description="Cost-basis method -> the poolings it "
        "allows (uk pools per person: universal only)"
    )
    tx_types: list[str]
    formats: list[str] = Field(description="Upload formats (POST /v1/uploads?format=)")


class Health(BaseModel):
    status: str
    cassandra: str


class FormatMapping(BaseModel):
    """Which of your CSV's columns holds what (`?format=mapped` uploads read it)."""

    timestamp: str = Field(min_length=1, max_length=200, description="The date/time column")
    type: str | None = Field(
        None,
        max_length=200,
        description="The transaction type or label "
        "column (staking, reward, airdrop, fee, gift... make income, fees "
        "and spends)",
    )
    sent_amount: str | None = Field(None, max_length=200)
    sent_asset: str | None = Field(None, max_length=200)
    received_amount: str | None = Field(None, max_length=200)
    received_asset: str | None = Field(None, max_length=200)
    fee_amount: str | None = Field(None, max_length=200)
    fee_asset: str | None = Field(None, max_length=200)
    value: str | None = Field(None, max_length=200, description="The fiat value column")
    value_currency: str | None = Field(None, max_length=200)
    wallet: str | None = Field(None, max_length=200)
    tx_hash: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=200)
    timestamp_format: str | None = Field(
        None, max_length=100, description="strptime format ('%d/%m/%Y %H:%M'); omitted: ISO 8601"
    )


# --- corrections (issue 21) --------------------------------------------------------------------
# One request model per kind a client posts, made from that kind's dataclass in
# ingest/corrections/kinds.py (same fields, same defaults), so the two cannot drift apart.
# delete_upload is DELETE /v1/uploads/{job_id}; undo is POST /v1/corrections/{id}/undo.
POSTED_KINDS = {kind: cls for kind, cls in KINDS.items() if cls not in (DeleteUpload, Undo)}
FIELD_DOCS = {
    "tx_id": "The transaction's id (tx_id of GET /v1/transactions)",
    "withdrawal_tx_id": "The withdrawal's tx_id",
    "deposit_tx_id": "The deposit's tx_id (the same asset, another wallet)",
    "type": "A transaction type (GET /v1/choices: tx_types)",
    "label": 'A label ("" clears it)',
    "fiat_value": "The transaction's value in fiat_currency (exact decimal string)",
    "fiat_currency": "ISO 4217 code of fiat_value",
    "cost_basis": "What the deposited units cost (exact decimal string)",
    "currency": "ISO 4217 code of cost_basis (your reporting currency to be used by the tax)",
    "ignored": "true: leave it out of the history; false: take it back in",
    "timestamp": "ISO 8601 date-time with its zone (2024-03-01T14:05:00Z)",
    "wallet": "The wallet (account) it belongs to",
    "old": "The wallet name as your transactions carry it",
    "new": "The name they get (an existing name merges the two)",
}


def _request_model(cls: type) -> type[BaseModel]:
    kind: str = getattr(cls, "kind")  # noqa: B009 (a ClassVar of each kind's dataclass)
    hints = get_type_hints(cls)
    columns: dict[str, Any] = {
        "kind": (Literal[kind], Field(description=f"'{kind}'")),
    }
    for f in dataclass_fields(cls):
        default = ... if f.default is MISSING else f.default
        columns[f.name] = (hints[f.name], Field(default, description=FIELD_DOCS.get(f.name)))
    name = "".join(part.title() for part in kind.split("_")) + "Correction"
    return create_model(
        name,
        __config__=ConfigDict(extra="forbid"),
        __doc__=cls.__doc__,
        **columns,
    )


CORRECTION_MODELS: dict[str, type[BaseModel]] = {
    kind: _request_model(cls) for kind, cls in POSTED_KINDS.items()
}
if TYPE_CHECKING:  # the union is built from the models at run time
    CorrectionRequest = BaseModel
else:  # the body of POST /v1/corrections: one of the models, chosen by `kind`
    CorrectionRequest = Annotated[
        Union[tuple(CORRECTION_MODELS.values())],  # noqa: UP007 (a tuple of types)
        Field(discriminator="kind"),
    ]


def change_of(body: BaseModel) -> Change:
    """The kinds.py dataclass a request body stands for."""
    fields = dict(body)
    change: Change = KINDS[fields.pop("kind")](**fields)
    return change


class CorrectionAccepted(BaseModel):
    correction_id: uuid.UUID = Field(description="The recorded correction (undo names it)")
    job_id: uuid.UUID = Field(description="The recompute job it started (GET /v1/jobs/{id})")


class CorrectionItem(BaseModel):
    correction_id: uuid.UUID
    kind: str = Field(description="edit, cost_basis, ..., delete_upload, undo")
    change: dict[str, Any] = Field(description="The correction's fields as recorded")
    summary: str = Field(description="The correction in one line")
    recorded_by: str
    recorded_at: UtcTime
    undone: bool = Field(description="An undo in effect cancels it (for an undo: it was undone)")
    unapplied: str | None = Field(
        None,
        description="Why a correction in effect changes nothing now (its transaction is not in "
        "your history: e.g. its upload was deleted); null: it applies",
    )


class UploadItem(BaseModel):
    job_id: uuid.UUID
    filename: str | None
    source_format: str | None = Field(description="The format the file was read as")
    rows_accepted: int
    rows_rejected: int
    uploaded_at: UtcTime | None
    status: str = Field(description="The upload job's status")
    deleted: bool = Field(description="A delete_upload correction in effect removes its rows")
