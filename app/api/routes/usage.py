"""``GET /v1/usage``: what an API key was served (see :mod:`app.accounts.metering`).

A key sees its own usage; an admin key may name any key with ``key_id``. The meter is flushed
before answering, so the numbers include the request that asks for them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.accounts.metering import requests_by_route, usage_rows
from app.api.deps import PrincipalDep, ServicesDep
from app.api.schemas import ApiError, UsageResponse, UsageRowOut, UsageTotals, error_responses
from app.serving import ServingIndex

router = APIRouter(prefix="/v1", tags=["usage"])


def parse_day(value: str | None, name: str, default: dt.date) -> dt.date:
    """A ``YYYY-MM-DD`` query parameter (``default`` when absent); 422 ``invalid-date``."""
    if value is None:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            422,
            "invalid-date",
            f"{name} must be a date written YYYY-MM-DD (UTC), got {value!r}",
            field=name,
            value=value,
        ) from None


def _title(serving: ServingIndex | None, wiki: str | None, page_id: int | None) -> str | None:
    if serving is None or wiki is None or page_id is None:
        return None
    page = serving.index.store.page(wiki, page_id)
    return None if page is None else page.title


@router.get(
    "/usage",
    response_model=UsageResponse,
    response_model_by_alias=True,
    summary="Usage of an API key",
    responses=error_responses(401, 403, 422, 429, 503),
)
def get_usage(
    principal: PrincipalDep,
    services: ServicesDep,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=32,
            description="First UTC day, YYYY-MM-DD (default: the first day of this month)",
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(max_length=32, description="Last UTC day, inclusive (default: today)"),
    ] = None,
    group_by: Annotated[
        Literal["day", "wiki", "article"], Query(description="How to group the rows")
    ] = "day",
    key_id: Annotated[
        str | None,
        Query(max_length=64, description="Another key's usage (admin keys only)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Most rows returned")] = 1000,
) -> UsageResponse:
    """Requests, passages, characters, citations and attributions served to the key, by day,
    wiki or article (the most served first), with the totals and the requests per route."""
    meter = services.meter
    if not meter.enabled or meter.path is None:
        raise ApiError(503, "metering-off", "usage metering is off on this service")
    target = key_id or principal.key_id
    if target != principal.key_id and not principal.admin:
        raise ApiError(
            403,
            "admin-required",
            f"API key {principal.key_id} may only see its own usage; the usage of another key "
            "needs an admin key",
            key_id=target,
        )
    today = dt.datetime.now(dt.UTC).date()
    start = parse_day(from_, "from", today.replace(day=1))
    end = parse_day(to, "to", today)
    if start > end:
        raise ApiError(
            422,
            "invalid-date-range",
            f"from ({start}) is after to ({end})",
            first_day=start.isoformat(),
            last_day=end.isoformat(),
        )
    meter.flush()  # what is still in memory, this request included
    rows = usage_rows(meter.path, group_by, start, end, key_id=target, limit=limit)
    total = usage_rows(meter.path, "key", start, end, key_id=target)
    serving = services.reloader.current if group_by == "article" else None
    counts = total[0] if total else None
    return UsageResponse(
        key_id=target,
        from_=start.isoformat(),
        to=end.isoformat(),
        group_by=group_by,
        rows=[
            UsageRowOut.model_validate(
                {**row.as_dict(), "title": _title(serving, row.wiki, row.page_id)}
            )
            for row in rows
        ],
        totals=UsageTotals(
            requests=counts.requests or 0 if counts else 0,
            passages=counts.passages if counts else 0,
            chars=counts.chars if counts else 0,
            citations=counts.citations if counts else 0,
            attributions=counts.attributions if counts else 0,
            requests_by_route=requests_by_route(meter.path, start, end, key_id=target),
        ),
    )
