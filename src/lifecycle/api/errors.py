"""Map domain errors to HTTP responses that name the field at fault."""

from __future__ import annotations

from fastapi import FastAPI, Request
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
