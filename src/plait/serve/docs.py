"""/docs: the API's interactive documentation, from Swagger UI files installed with plait.

FastAPI's own /docs page loads Swagger UI from a CDN: offline it is blank, and online it runs a third
party's script next to the API key. Here the same page is served from the ``swagger-ui-bundle-v2``
package's files (``/docs/assets/…``); without that package /docs says what to install. ReDoc (also from a
CDN) is not served. The ``api_docs`` setting turns /docs off altogether.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ASSETS = "/docs/assets"


def swagger_folder() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(str(swagger_ui_bundle.swagger_ui_path))


def install_docs(app: Any) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, PlainTextResponse

    folder = swagger_folder()
    if folder is None:
        @app.get("/docs", include_in_schema=False)
        async def docs_missing() -> PlainTextResponse:
            return PlainTextResponse("/docs needs Swagger UI's files: pip install swagger-ui-bundle-v2 (in plait's "
                                     "`serve` extra); the API's description is at /openapi.json", status_code=501)
        return

    from starlette.staticfiles import StaticFiles

    app.mount(ASSETS, StaticFiles(directory=folder), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
