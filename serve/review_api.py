"""Review and explain (issue 21), a router of the query application:

- GET /v1/review: the reconciliation findings grouped by kind, with counts, a title and the
  corrections that fix one (ingest/corrections/review.py);
- GET /v1/review/{kind}: that kind's findings, paged, each with its transaction (type, wallet,
  amount from transactions_view) and its actions; a mark_transfer action names the near-miss
  counterpart the reconciler saw;
- GET /v1/gains/{tx_id}/lots: a disposal and the lots it consumed (ingest/tax/explain.py over
  its stored Form 8949 lines, found through disposal_index).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Path, Query

from ingest.corrections.review import group_findings, item_actions, moved_amount, near_leg
from ingest.load import queries
from ingest.load.users import deployment_defaults, get_user_settings
from ingest.load.views import FINDING_KINDS
from ingest.normalize.assets import normalize_symbol
from ingest.tax.explain import explain_disposal
from ingest.tax.records import Flag
from serve.auth import current_user
from serve.deps import db, settings
from serve.errors import ApiError, not_found
from serve.models import (
    ERROR_RESPONSES,
    ConsumedLot,
    DisposalLots,
    ExplainedDisposal,
    Page,
    ReviewAction,
    ReviewGroup,
    ReviewItem,
    ReviewSummary,
)
from serve.page_tokens import (
    Limit,
    PageToken,
    decode_paging_state,
    encode_paging_state,
    list_scope,
    paged,
)
from serve.reports import disposal_line

router = APIRouter()
NEAR_MISS_KINDS = (Flag.UNMATCHED_WITHDRAWAL, Flag.UNMATCHED_DEPOSIT)


@router.get(
    "/v1/review",
    response_model=ReviewSummary,
    responses=ERROR_RESPONSES,
    summary="The findings behind your numbers, grouped by kind with counts and their fixes",
)
def review_groups(user_id: str = Depends(current_user)) -> ReviewSummary:
    groups = group_findings(queries.finding_counts(db(), user_id))
    return ReviewSummary(
        groups=[
            ReviewGroup(kind=g.kind, title=g.title, count=g.count, actions=list(g.actions))
            for g in groups
        ],
        total=sum(g.count for g in groups),
    )


@router.get(
    "/v1/review/{kind}",
    response_model=Page[ReviewItem],
    responses=ERROR_RESPONSES,
    summary="One kind's findings, each with its transaction and the corrections that fix it",
)
def review_items(
    kind: str = Path(description=f"One of {', '.join(FINDING_KINDS)}"),
    user_id: str = Depends(current_user),
    limit: int = Limit,
    page_token: str | None = PageToken,
) -> Page[ReviewItem]:
    if kind not in FINDING_KINDS:
        raise not_found("finding kind")
    session = db()
    scope = list_scope("/v1/review", user_id, kind)
    state = decode_paging_state(page_token, scope)
    page = paged(lambda: queries.findings_page(session, user_id, limit, state, kind), page_token)
    items = []
    for row in page.rows:
        at, tx_id, asset = row["timestamp"], row["tx_id"], row["asset"] or None
        tx = queries.transaction_at(session, user_id, at, tx_id) if at and tx_id else None
        counterpart = None
        leg = near_leg(row["detail"]) if kind in NEAR_MISS_KINDS else None
        if leg is not None:
            counterpart = next(
                (
                    other["tx_id"]
                    for other in queries.transactions_between(
                        session, user_id, leg.minute, leg.minute + timedelta(minutes=1)
                    )
                    if leg.matches(other)
                ),
                None,
            )
        items.append(
            ReviewItem(
                tx_id=tx_id,
                timestamp=at,
                type=tx["type"] if tx else None,
                wallet=tx["wallet"] if tx else None,
                asset=asset,
                amount=moved_amount(tx, asset) if tx else None,
                message=row["detail"],
                actions=[
                    ReviewAction(kind=a.kind, counterpart_tx_id=a.counterpart_tx_id)
                    for a in item_actions(kind, counterpart)
                ],
            )
        )
    return Page[ReviewItem](
        items=items, next_page_token=encode_paging_state(page.paging_state, scope)
    )


@router.get(
    "/v1/gains/{tx_id}/lots",
    response_model=DisposalLots,
    responses={**ERROR_RESPONSES, 409: ERROR_RESPONSES[400] | {"description": "Not recorded"}},
    summary="A disposal and the lots it consumed (acquired when and where, cost, rule)",
    description="A transaction that disposed of several assets (a trade's fee in a third "
    "asset) answers the one with the largest proceeds unless `asset` names another.",
)
def disposal_lots(
    tx_id: str = Path(max_length=300, description="The disposal's transaction id"),
    asset: str | None = Query(None, max_length=64, description="Which asset it disposed of"),
    user_id: str = Depends(current_user),
) -> DisposalLots:
    session = db()
    by_asset = queries.disposal_lines_of(session, user_id, tx_id)
    if asset is not None:
        symbol = normalize_symbol(asset)
        by_asset = {symbol: by_asset[symbol]} if symbol in by_asset else {}
    if not by_asset:
        raise not_found("disposal")
    chosen = min(by_asset, key=lambda a: (-sum(line["proceeds"] for line in by_asset[a][1]), a))
    year, rows = by_asset[chosen]
    user = get_user_settings(session, user_id, deployment_defaults(settings()))
    try:
        explained = explain_disposal(
            [disposal_line(row, year) for row in rows],
            method=user.method,
            pooling=user.pooling,
            currency=user.currency,
        )
    except ValueError as exc:  # lines of before lots were recorded, or of another method
        raise ApiError(
            409,
            "lots_unrecorded",
            f"the lots of this disposal are not recorded ({exc}): they are once your data is "
            "recomputed (PUT /v1/settings, or any upload or correction touching this asset)",
        ) from None
    d = explained.disposal
    return DisposalLots(
        disposal=ExplainedDisposal(
            tx_id=d.tx_id,
            timestamp=d.timestamp,
            asset=d.asset,
            wallet=d.wallet,
            quantity=d.quantity,
            proceeds=d.proceeds,
            cost_basis=d.cost_basis,
            gain=d.gain,
            term=d.term,
            method=d.method,
        ),
        lots=[
            ConsumedLot(
                acquired_at=lot.acquired_at,
                wallet=lot.wallet,
                quantity=lot.quantity,
                cost=lot.cost,
                selling_costs=lot.selling_costs,
                currency=lot.currency,
                from_tx_id=lot.from_tx_id,
                rule=lot.rule,
            )
            for lot in explained.lots
        ],
    )
