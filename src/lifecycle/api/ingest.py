"""Segment-compatible ingestion: /v1/identify, /v1/track, /v1/alias, /v1/page, /v1/screen, /v1/batch."""

from __future__ import annotations

import json
import zlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from lifecycle import clock
from lifecycle.api.deps import RuntimeDep, SessionDep, WriteKey, check_body_key
from lifecycle.errors import Invalid, TooLarge
from lifecycle.events.service import ingest

router = APIRouter(prefix="/v1", tags=["ingestion"])


async def _json_body(request: Request, max_bytes: int) -> Any:
    """The body as JSON, read at most ``max_bytes`` (after gunzip, as SDKs may send it)."""
    too_large = TooLarge(f"the body is larger than {max_bytes} bytes", field="body")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            inflater = zlib.decompressobj(wbits=31)
            raw = inflater.decompress(raw, max_bytes + 1)
        except zlib.error as err:
            raise Invalid(f"the body is not valid gzip ({err})", field="body") from None
        if len(raw) > max_bytes or inflater.unconsumed_tail:
            raise too_large
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Invalid(f"the body is not valid JSON ({err})", field="body") from None
    except RecursionError:
        raise Invalid("the body is nested too deeply", field="body") from None


def _single(call_type: str):  # type: ignore[no-untyped-def]
    async def endpoint(
        request: Request, key: WriteKey, runtime: RuntimeDep, session: SessionDep
    ) -> JSONResponse:
        body = await _json_body(request, runtime.settings.max_body_bytes)
        check_body_key(key, body, runtime)
        [result] = await run_in_threadpool(
            ingest,
            session,
            [body],
            now=clock.now(),
            options=runtime.ingest_options,
            call_type=call_type,
        )
        if result.status == "rejected":
            raise Invalid(result.error or "rejected", field=result.field)
        return JSONResponse({"success": True, **result.as_dict()})

    endpoint.__name__ = f"{call_type}_call"
    return endpoint


for _type in ("identify", "track", "alias", "page", "screen"):
    router.add_api_route(
        f"/{_type}", _single(_type), methods=["POST"], summary=f"Segment {_type} call"
    )


@router.post("/batch", summary="Segment batch: each item answered on its own")
async def batch(
    request: Request, key: WriteKey, runtime: RuntimeDep, session: SessionDep
) -> JSONResponse:
    body = await _json_body(request, runtime.settings.max_body_bytes)
    check_body_key(key, body, runtime)
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise Invalid("a batch body is an object with a 'batch' list", field="batch")
    items = body["batch"]
    if len(items) > runtime.settings.max_batch_items:
        raise TooLarge(
            f"at most {runtime.settings.max_batch_items} items per batch (got {len(items)})",
            field="batch",
        )
    shared = body.get("context") if isinstance(body.get("context"), dict) else None
    if shared:
        # The batch's context fills in each item's (a malformed item context is left
        # as it is, to be rejected with its own field).
        items = [
            {**item, "context": {**shared, **(item.get("context") or {})}}
            if isinstance(item, dict) and isinstance(item.get("context") or {}, dict)
            else item
            for item in items
        ]
    results = await run_in_threadpool(
        ingest,
        session,
        items,
        now=clock.now(),
        options=runtime.ingest_options,
        field_prefix="batch",
    )
    counts = {
        s: sum(1 for r in results if r.status == s) for s in ("accepted", "duplicate", "rejected")
    }
    return JSONResponse(
        {"success": counts["rejected"] == 0, **counts, "results": [r.as_dict() for r in results]}
    )
