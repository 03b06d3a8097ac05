"""Segments over HTTP: the catalog with sizes, one segment, a sample of its members,
a profile's memberships with history, and a preview of definitions not yet deployed.

Reading only: segments are deployed from ``campaigns/segments/`` by publishing the
campaigns directory. The preview computes and writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from lifecycle import clock
from lifecycle.api.deps import AdminKey, RuntimeDep, SessionDep
from lifecycle.errors import Invalid, NotFound, TooLarge
from lifecycle.profiles.service import find_profile
from lifecycle.segments import service as segments
from lifecycle.segments.definition import DefinitionError, parse_segment
from lifecycle.segments.loader import LoadedSegment, check_references
from lifecycle.yamlfile import (
    Lines,
    Problem,
    line_for,
    merged,
    to_data,
    unreadable_problems,
)

router = APIRouter(prefix="/v1", tags=["segments"])

MAX_MEMBERS = 500  # a sample, not an export
MAX_PREVIEW_BODY = 1024 * 1024
MAX_PREVIEW_SEGMENTS = 50
BODY = "body"  # how problems in a request body name their "file"


def _limit(limit: int, *, most: int = MAX_MEMBERS) -> int:
    if not 1 <= limit <= most:
        raise Invalid(f"must be between 1 and {most}", field="limit")
    return limit


@router.get("/segments", summary="Every active segment with its size and when it was computed")
def list_segments(_admin: AdminKey, session: SessionDep) -> Any:
    return {"segments": [_public(item) for item in segments.summary(session)]}


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("definition", "source_file")}


def _one(session: Any, name: str) -> dict[str, Any]:
    for item in segments.summary(session):
        if item["name"] == name:
            return item
    raise NotFound(f"no segment named {name!r}", field="name")


@router.get("/segments/{name}", summary="One segment, with its definition as written")
def get_segment(name: str, _admin: AdminKey, session: SessionDep) -> Any:
    item = _one(session, name)
    definition = item["definition"]
    return {
        **item,
        "definition_yaml": yaml.safe_dump(definition, sort_keys=False, allow_unicode=True),
    }


@router.get("/segments/{name}/members", summary="A sample of the segment's current members")
def segment_members(name: str, _admin: AdminKey, session: SessionDep, limit: int = 20) -> Any:
    limit = _limit(limit)
    item = _one(session, name)
    return {
        "segment": name,
        "size": item["size"],
        "limit": limit,
        "members": segments.sample(session, name, limit=limit),
    }


@router.get(
    "/profiles/{ref}/segments",
    summary="The profile's current segments and every entry and exit, newest first",
)
def profile_segments(ref: str, _admin: AdminKey, runtime: RuntimeDep, session: SessionDep) -> Any:
    profile = find_profile(session, ref, default_region=runtime.settings.default_phone_region)
    history = segments.memberships_of(session, profile.id)
    current = [
        {"segment": h["segment"], "entered_at": h["entered_at"], "cause": h["entered_cause"]}
        for h in history
        if h["current"]
    ]
    return jsonable_encoder({"profile_id": profile.id, "current": current, "history": history})


# ------------------------------------------------------------------ preview


def parse_text(text: str, *, file: str = BODY) -> tuple[list[LoadedSegment], list[Problem]]:
    """Segment definitions from YAML (or JSON) text: one mapping per document (documents
    separated by ``---``), or a list of mappings. Problems are ``file:line: text``."""
    found: list[tuple[Any, Lines, tuple[Any, ...]]] = []
    unreadable: list[tuple[int, str]] = []
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if node is None:
                continue
            lines: Lines = {}
            data = to_data(node, (), lines, unreadable)
            if isinstance(data, list):
                found += [(item, lines, (i,)) for i, item in enumerate(data)]
            else:
                found.append((data, lines, ()))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return [], [Problem(file, line, f"YAML: {getattr(err, 'problem', None) or err}")]
    loaded, problems = _definitions(found, file)
    if unreadable:
        return [], merged(unreadable_problems(file, unreadable), problems)
    return loaded, problems


def parse_json(text: str, *, file: str = BODY) -> tuple[list[LoadedSegment], list[Problem]]:
    """One definition (an object) or several (an array) as JSON. JSON decides the values
    (YAML would read ``1e3`` as text); YAML, when it reads the same data, gives the lines."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return [], [Problem(file, err.lineno, f"JSON: {err.msg}")]
    lines: Lines = {}
    shown: Lines = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and to_data(node, (), shown) == data:
            lines = shown
    except yaml.YAMLError:
        pass  # valid JSON that YAML cannot read (tabs): problems point at line 1
    if isinstance(data, list):
        return _definitions([(item, lines, (i,)) for i, item in enumerate(data)], file)
    return _definitions([(data, lines, ())], file)


def _definitions(
    found: list[tuple[Any, Lines, tuple[Any, ...]]], file: str
) -> tuple[list[LoadedSegment], list[Problem]]:
    if not found:
        return [], [Problem(file, 1, "no segment definition: send one mapping with name and where")]
    if len(found) > MAX_PREVIEW_SEGMENTS:
        return [], [Problem(file, 1, f"at most {MAX_PREVIEW_SEGMENTS} segments at a time")]
    loaded: list[LoadedSegment] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for data, lines, prefix in found:
        start = line_for(prefix, lines)
        try:
            definition = parse_segment(data)
        except DefinitionError as err:
            problems += [
                Problem(file, line_for((*prefix, *e.path), lines), str(e)) for e in err.each
            ]
            continue
        except ValueError as err:
            problems.append(Problem(file, start, str(err)))
            continue
        if definition.name in seen:
            problems.append(Problem(file, start, f"segment name {definition.name!r} given twice"))
            continue
        seen.add(definition.name)
        loaded.append(LoadedSegment(definition, file, "", start))
    return loaded, problems


def _reference_problems(session: Any, loaded: list[LoadedSegment]) -> list[Problem]:
    """Unknown or looping ``{segment: ...}`` references, at the first line of the definition."""
    known = set(segments.catalog(session).entries)
    numbered = [replace(item, file=str(i)) for i, item in enumerate(loaded)]
    return [
        Problem(BODY, loaded[int(p.file)].line, p.text) for p in check_references(numbered, known)
    ]


def _problems_response(problems: list[Problem]) -> JSONResponse:
    problems = sorted(problems, key=lambda p: p.line)
    return JSONResponse(
        {
            "error": "; ".join(str(p) for p in problems),
            "field": BODY,
            "problems": [{"line": p.line, "text": p.text, "problem": str(p)} for p in problems],
        },
        status_code=422,
    )


@router.post(
    "/segments/preview",
    summary="Size, sample and unreadable values of definitions not yet deployed (writes nothing)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def preview_segments(
    request: Request, _admin: AdminKey, runtime: RuntimeDep, limit: int = 10
) -> Any:
    limit = _limit(limit, most=100)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_PREVIEW_BODY:
            raise TooLarge(f"the body is larger than {MAX_PREVIEW_BODY} bytes", field=BODY)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("the body is not UTF-8 text", field=BODY) from None
    if "json" in request.headers.get("content-type", ""):
        loaded, problems = parse_json(text)
    else:
        loaded, problems = parse_text(text)
    if problems:
        return _problems_response(problems)
    # Its own unit of work, rolled back: a preview leaves nothing behind, whatever it ran.
    with runtime.session() as session:
        try:
            problems = _reference_problems(session, loaded)
            if problems:
                return _problems_response(problems)
            results = segments.preview(
                session,
                loaded,
                now=clock.now(),
                zone=runtime.settings.workspace_timezone,
                limit=limit,
            )
        finally:
            session.rollback()
    for result in results:
        result.pop("file", None)
    return jsonable_encoder({"segments": results})
