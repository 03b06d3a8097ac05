"""CSV imports over HTTP: upload (the body is the file), status, rejected rows."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from lifecycle import clock
from lifecycle.api.deps import AdminKey, RuntimeDep, SessionDep
from lifecycle.errors import Invalid, TooLarge
from lifecycle.imports import service as imports
from lifecycle.imports.service import ImportOptions

router = APIRouter(prefix="/v1", tags=["imports"])
UPLOAD_PARAMETERS = frozenset(
    {
        *("filename", "key", "encoding", "delimiter", "existing", "empty_clears"),
        *("unknown_columns", "map", "list", "tag", "phone_region", "missing_markers"),
        *("date_order", "excel_serials", "year_required", "dry_run"),
    }
)
MAX_UPLOAD = 512 * 1024 * 1024


@router.post("/imports", status_code=202, summary="Upload a CSV (the body) to import on a worker")
async def upload(
    request: Request,
    _admin: AdminKey,
    runtime: RuntimeDep,
    session: SessionDep,
    filename: str = "upload.csv",
    key: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    existing: str = "update",
    empty_clears: bool = False,
    unknown_columns: str = "refuse",
    map_: Annotated[list[str] | None, Query(alias="map")] = None,
    list_: Annotated[list[str] | None, Query(alias="list")] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    phone_region: str | None = None,
    missing_markers: Annotated[
        str | None, Query(description="Comma-separated; empty for none (NULL is then text).")
    ] = None,
    date_order: Annotated[str | None, Query(description="DMY, MDY or YMD.")] = None,
    excel_serials: bool = False,
    year_required: bool = False,
    dry_run: Annotated[
        bool, Query(description="Read, map and count now, write nothing: 200 with the report.")
    ] = False,
) -> Any:
    unknown = sorted(set(request.query_params) - UPLOAD_PARAMETERS)
    if unknown:  # a misspelt option would otherwise be ignored without a word
        raise Invalid(
            f"unknown query parameter {unknown[0]!r}; the options are "
            + ", ".join(sorted(UPLOAD_PARAMETERS)),
            field=unknown[0],
        )
    for name in set(request.query_params) - {"map", "list", "tag"}:
        given = request.query_params.getlist(name)
        if len(set(given)) > 1:  # dry_run=true&dry_run=false must not quietly run
            raise Invalid(f"query parameter {name!r} is given twice: {given}", field=name)
    mapped = [item.split("=", 1)[0] for item in map_ or [] if "=" in item]
    twice = sorted({c for c in mapped if mapped.count(c) > 1})
    if twice:
        raise Invalid(f"map gives column {twice[0]!r} more than once", field="map")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD:
            raise TooLarge(f"the file is larger than {MAX_UPLOAD} bytes", field="body")
        chunks.append(chunk)
    mapping = dict(item.split("=", 1) for item in map_ or [] if "=" in item)
    options = ImportOptions(
        key=key,
        mapping=mapping,
        encoding=encoding,
        delimiter=delimiter,
        existing=existing,
        empty_clears=empty_clears,
        unknown_columns=unknown_columns,
        lists=tuple(list_ or ()),
        tags=tuple(tag or ()),
        phone_region=phone_region,
        date_order=date_order.upper() if date_order else None,
        excel_serials=excel_serials,
        year_required=year_required,
        dry_run=dry_run,
        via="http",
        missing_markers=None
        if missing_markers is None
        else tuple(m.strip() for m in missing_markers.split(",") if m.strip()),
    )
    if dry_run:
        report = await run_in_threadpool(  # database work: off the event loop
            imports.run,
            session,
            b"".join(chunks),
            filename=filename,
            options=options,
            ingest_options=runtime.ingest_options,
            now=clock.now(),
        )
        return JSONResponse(jsonable_encoder(asdict(report)), status_code=200)
    record = imports.queue(
        session, b"".join(chunks), filename=filename, options=options, now=clock.now()
    )
    return {"id": record.id, "status": record.status}


@router.get("/imports/{import_id}", summary="Status, counts, rows done and rate")
def import_status(import_id: int, _admin: AdminKey, session: SessionDep) -> Any:
    return jsonable_encoder(imports.status(session, import_id))


@router.get(
    "/imports/{import_id}/rejected",
    response_class=PlainTextResponse,
    summary="Rejected rows as CSV",
)
def import_rejected(import_id: int, _admin: AdminKey, session: SessionDep) -> Response:
    # A download a browser saves as a CSV file, named after the import.
    return Response(
        imports.rejected_csv(session, import_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-rejected.csv"'},
    )
