"""What a browser loads: the web app (built from web/ into serve/static/app/) and Swagger UI's
assets for the OpenAPI pages, all served by the apps themselves so nothing comes from a CDN.

The web app is a static single page (hash routes) that calls the API from the same origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from serve.errors import ApiError

STATIC_DIR = Path(__file__).with_name("static")
APP_DIR = STATIC_DIR / "app"  # `npm run build` in web/ writes here (committed)
SWAGGER_DIR = STATIC_DIR / "swagger"  # copied from npm's swagger-ui-dist by the same build
SWAGGER_PATH = "/static/swagger"
# The page is the same file for every hash route; its hashed assets may be cached for good.
NO_CACHE = {"Cache-Control": "no-cache"}


def root_path(request: Request) -> str:
    """The prefix the app is mounted under (Serve's route_prefix), '' at the root."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def install_local_docs(app: FastAPI, title: str) -> None:
    """`/docs` with Swagger UI from this app's own `/static/swagger` (create the app with
    docs_url=None, redoc_url=None)."""
    app.mount(SWAGGER_PATH, StaticFiles(directory=SWAGGER_DIR, check_dir=False), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        prefix = root_path(request)
        return get_swagger_ui_html(
            openapi_url=f"{prefix}{app.openapi_url}",
            title=f"{title} - docs",
            swagger_js_url=f"{prefix}{SWAGGER_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}{SWAGGER_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{prefix}{SWAGGER_PATH}/favicon-32x32.png",
        )


def install_web_app(app: FastAPI) -> None:
    """The web app at `/` (its assets under `/assets`)."""
    app.mount(
        "/assets", StaticFiles(directory=APP_DIR / "assets", check_dir=False), name="web-assets"
    )

    @app.get("/", include_in_schema=False)
    def web_app_page() -> FileResponse:
        index = APP_DIR / "index.html"
        if not index.is_file():
            raise ApiError(
                503,
                "unavailable",
                "the web page is not built: run `npm ci && npm run build` in web/",
            )
        return FileResponse(index, media_type="text/html", headers=NO_CACHE)
