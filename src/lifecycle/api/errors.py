"""Map domain errors to HTTP responses that name the field at fault."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lifecycle.errors import Conflict, Invalid, LifecycleError, NotFound, TooLarge

# Most specific first: TooLarge is an Invalid.
STATUS = {NotFound: 404, Conflict: 409, TooLarge: 413, Invalid: 400}


def install(app: FastAPI) -> None:
    @app.exception_handler(LifecycleError)
    async def _domain_error(_request: Request, err: LifecycleError) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(err, cls)), 400)
        body: dict[str, object] = {"error": err.message}
        if err.field is not None:
            body["field"] = err.field
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, err: RequestValidationError) -> JSONResponse:
        """FastAPI's own checks (a query parameter that is not a number) answer in the same
        shape as ours, ``error`` and ``field``; its ``detail`` list is kept beside them."""
        problems = err.errors()
        first = problems[0] if problems else {}
        where = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
        field = ".".join(where) or "request"
        body = {
            "error": f"{field}: {first.get('msg', 'invalid request')}",
            "field": field,
            "detail": jsonable_encoder(problems),
        }
        return JSONResponse(body, status_code=422)
