"""One error shape for every failure: ``{"error": {"code": ..., "message": ...}}``; a request
refused for what its fields hold (422 invalid_request, a correction 404 naming its transaction)
also lists them: ``"fields": [{"field": ..., "message": ...}]`` beside ``error``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.load.cassandra import deadline_in, is_retryable
from serve.deps import settings

log = logging.getLogger("ray.serve")  # lands in the replica's log file

CODES_BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal",
    503: "unavailable",
}


FieldProblem = dict[str, str]  # {"field": ..., "message": ...}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        fields: list[FieldProblem] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.fields = fields


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no such {what}")


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    fields: list[FieldProblem] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(body, status_code=status, headers=headers)


def field_problems(exc: RequestValidationError) -> list[FieldProblem]:
    """Each pydantic error as {field, message}: the field's path in the body (or the parameter's
    name), without the tag a discriminated union adds (the body's own `kind`)."""
    body = getattr(exc, "body", None)
    tag = body.get("kind") if isinstance(body, dict) else None
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc[:1] == ["body"]:
            loc = loc[1:]
            if tag is not None and len(loc) > 1 and loc[0] == tag:
                loc = loc[1:]
        elif len(loc) > 1 and loc[0] in ("query", "path", "header"):
            loc = loc[1:]
        if str(err.get("type", "")).startswith("union_tag"):  # no or an unknown discriminator
            loc = [str((err.get("ctx") or {}).get("discriminator", "kind")).strip("'")]
        missing = err.get("type") == "missing" or (err.get("input", ...) is None and len(loc) == 1)
        out.append(
            {
                "field": ".".join(loc) or "request",
                "message": "is required" if missing else str(err.get("msg", "invalid")),
            }
        )
    return out


def validation_message(problems: list[FieldProblem]) -> str:
    return "; ".join(f"{p['field']}: {p['message']}" for p in problems) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.fields)

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = CODES_BY_STATUS.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = field_problems(exc)
        return error_response(422, "invalid_request", validation_message(problems), fields=problems)

    # Starlette types the handler as taking any Exception, not the class it is registered for
    # (handler signature variance): each of these only ever gets its own class
    app.add_exception_handler(ApiError, on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_middleware(UnexpectedErrorsAsJson)


UNAVAILABLE = "the database did not answer in time; try again shortly"


class UnexpectedErrorsAsJson:
    """A bug answers 500 and an outage (Cassandra unreachable or timing out, past the request's
    deadline) 503, in the error shape (Starlette's last-resort handler answers plain text). Every
    request runs under LEDGERFLOW_REQUEST_DEADLINE: its Cassandra calls stop retrying then, so no
    request holds a worker for the pipeline's retry budget. Pure ASGI, so request bodies still
    stream through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            with deadline_in(settings().request_deadline):
                await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for a clean answer: let the server abort the response
                raise
            if is_retryable(exc):
                answer = error_response(503, "unavailable", UNAVAILABLE, {"Retry-After": "5"})
            else:
                answer = error_response(500, "internal", "internal error; see the server log")
            await answer(scope, receive, send)
