"""The reference for upload answer time: a Serve endpoint that only drains the body and answers
202. Deployed as its own small application (route prefix /bench-bare) in the same Serve instance
as ledgerflow, so both uploads cross the same proxy."""

from __future__ import annotations

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

APP_NAME = "bench-bare"
ROUTE_PREFIX = "/bench-bare"


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
class BareUpload:
    async def __call__(self, request: Request) -> JSONResponse:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
        return JSONResponse({"bytes": received}, status_code=202)


def deploy() -> str:
    """Deploy next to the running applications; returns the route prefix."""
    # mypy ignores class decorators' return types: @serve.deployment made BareUpload a Deployment
    serve.run(
        BareUpload.bind(),  # type: ignore[attr-defined]
        name=APP_NAME,
        route_prefix=ROUTE_PREFIX,
    )
    return ROUTE_PREFIX
