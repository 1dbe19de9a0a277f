"""The dashboard's web app: three pages and a read-only JSON API over one runs folder.

    GET /                      every run folder with its status; pick runs to compare
    GET /run?run=PATH          one run: meta, config, streams, live charts
    GET /compare?run=A&run=B   one field of several runs on one axis
    GET /api/...               the JSON the pages poll (see the routes below)

Only GET is served; a request naming anything outside the runs folder gets a 4xx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from evolora.telemetry.dashboard import pages
from evolora.telemetry.dashboard.figures import field_figure, numeric_fields, plotly_js
from evolora.telemetry.dashboard.registry import run_figures
from evolora.telemetry.dashboard.runs import (
    MAX_RECORDS,
    Refused,
    find_runs,
    read_config,
    read_meta,
    read_records,
    read_streams,
    resolve_run,
    run_status,
    stream_path,
    version,
)

MAX_COMPARED = 12  # runs one comparison may name
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def create_app(root: str | Path, allowed_hosts: list[str] | None = None) -> Starlette:
    """The dashboard app serving the run folders under `root` (read-only)."""
    root = Path(root).resolve()

    def relative(folder: Path) -> str:
        return folder.relative_to(root).as_posix()

    def api(handler):
        async def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(await run_in_threadpool(handler, request), headers=HEADERS)
            except Refused as refusal:
                return JSONResponse({"error": str(refusal)}, refusal.status, headers=HEADERS)
            except (FileNotFoundError, NotADirectoryError):
                return JSONResponse({"error": "the run was deleted"}, 404, headers=HEADERS)
            except OSError as problem:  # e.g. a file the dashboard's user may not read
                message = f"cannot read the run ({problem.strerror})"
                return JSONResponse({"error": message}, 403, headers=HEADERS)

        return endpoint

    def run_of(request: Request) -> Path:
        return resolve_run(root, request.query_params.get("run"))

    def list_runs(request: Request) -> dict[str, Any]:
        runs = []
        for folder in find_runs(root):
            meta = read_meta(folder)
            config = read_config(folder)[1]
            runs.append(
                {
                    "run": relative(folder),
                    "system": meta.get("name"),
                    "started_at": meta.get("started_at"),
                    "host": config.get("host"),
                    **run_status(folder, config),
                }
            )
        return {"root": str(root), "runs": runs}

    def run_meta(request: Request) -> dict[str, Any]:
        folder = run_of(request)
        text, config = read_config(folder)
        streams = {
            p.stem: p.stat().st_size for p in sorted(folder.glob("*.jsonl")) if p.is_file()
        }
        return {
            "run": relative(folder),
            "meta": read_meta(folder),
            "config": text,
            "streams": streams,
            **run_status(folder, config),
        }

    def run_version(request: Request) -> dict[str, Any]:
        folder = run_of(request)
        return {"version": version(folder), **run_status(folder)}

    def run_panels(request: Request) -> dict[str, Any]:
        folder = run_of(request)
        system = read_meta(folder).get("name")
        figures = run_figures(system, read_streams(folder), read_config(folder)[1])
        return {"version": version(folder), "figures": figures}

    def stream_records(request: Request) -> dict[str, Any]:
        folder = run_of(request)
        path = stream_path(root, folder, request.query_params.get("name"))
        start = _bounded(request, "start", 0, 0, 10**9)
        limit = _bounded(request, "limit", 100, 1, MAX_RECORDS)
        return {"start": start, "records": read_records(path, start, limit)}

    def stream_fields(request: Request) -> dict[str, Any]:
        folders = _runs(request)
        name = request.query_params.get("stream", "gen_summaries")
        fields: dict[str, None] = {}
        for folder in folders:
            stream_path(root, folder, name)
            fields.update(dict.fromkeys(numeric_fields(read_streams(folder).get(name, []))))
        return {"stream": name, "fields": list(fields)}

    def compare(request: Request) -> dict[str, Any]:
        folders = _runs(request)
        name = request.query_params.get("stream", "gen_summaries")
        key = request.query_params.get("key")
        if not key:
            raise Refused(400, "name the field to compare with ?key=FIELD")
        runs = {}
        for folder in folders:
            stream_path(root, folder, name)
            runs[relative(folder)] = read_streams(folder).get(name, [])
        return {"figure": field_figure("compare", f"{name}: {key}", runs, key)}

    def _runs(request: Request) -> list[Path]:
        named = request.query_params.getlist("run")
        if not named or len(named) > MAX_COMPARED:
            raise Refused(400, f"name 1 to {MAX_COMPARED} runs with ?run=A&run=B")
        return [resolve_run(root, item) for item in named]

    async def page(request: Request) -> Response:
        which = request.url.path.strip("/") or "index"
        return HTMLResponse(pages.page(which), headers=HEADERS)

    async def script(request: Request) -> Response:
        return Response(plotly_js(), media_type="text/javascript", headers=HEADERS)

    routes = [
        Route("/", page),
        Route("/run", page),
        Route("/compare", page),
        Route("/static/plotly.js", script),
        Route("/api/runs", api(list_runs)),
        Route("/api/meta", api(run_meta)),
        Route("/api/version", api(run_version)),
        Route("/api/panels", api(run_panels)),
        Route("/api/stream", api(stream_records)),
        Route("/api/fields", api(stream_fields)),
        Route("/api/compare", api(compare)),
    ]
    hosts = allowed_hosts or ["127.0.0.1", "localhost", "testserver"]
    guard = Middleware(TrustedHostMiddleware, allowed_hosts=hosts)  # no DNS rebinding
    return Starlette(routes=routes, middleware=[guard])


def _bounded(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; Refused (400) otherwise."""
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise Refused(400, f"'{name}' must be a whole number") from None
    if not low <= value <= high:
        raise Refused(400, f"'{name}' must lie between {low} and {high}")
    return value
