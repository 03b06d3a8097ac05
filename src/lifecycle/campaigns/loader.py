"""Reading campaign YAML files and reporting every mistake as ``file:line: problem``.

Checks: YAML syntax, unknown or missing keys, bad values and durations (through
:mod:`.definition`), step targets, and templates (exist, parse, email blocks).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lifecycle import yamlfile
from lifecycle.campaigns.definition import REFERENCES_REPORTED_BY_CALLER, CampaignDef
from lifecycle.rendering.templates import CHANNELS, Templates
from lifecycle.segments import loader as segment_loader
from lifecycle.segments.loader import LoadedSegment
from lifecycle.yamlfile import Problem, line_for


@dataclass(frozen=True)
class LoadedCampaign:
    definition: CampaignDef
    file: str
    checksum: str


def parse_file(path: Path, templates: Templates) -> tuple[LoadedCampaign | None, list[Problem]]:
    name = str(path)
    data, lines, unreadable = yamlfile.read(path)
    if data is None:
        return None, unreadable
    if not isinstance(data, dict):
        return None, [Problem(name, 1, "a campaign file must be a mapping of keys")]
    data.setdefault("name", path.stem)
    # Templates are checked even when the rest of the file is wrong: every mistake at once.
    problems = _template_problems(name, data, lines, templates)
    try:
        definition = CampaignDef.model_validate(data, context={REFERENCES_REPORTED_BY_CALLER: True})
    except ValidationError as err:
        for e in err.errors():
            loc = tuple(e["loc"])
            where = ".".join(str(p) for p in loc) or "campaign"
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            problems.append(Problem(name, line_for(loc, lines), f"{where}: {msg}"))
        return None, yamlfile.merged(unreadable, problems)
    for loc, text in definition.reference_problems():
        where = ".".join(str(p) for p in loc)
        problems.append(Problem(name, line_for(loc, lines), f"{where}: {text}"))
    if problems or unreadable:
        return None, yamlfile.merged(unreadable, problems)
    canonical = json.dumps(definition.model_dump(mode="json", by_alias=True), sort_keys=True)
    checksum = hashlib.sha256(canonical.encode()).hexdigest()
    return LoadedCampaign(definition, name, checksum), []


def _template_problems(
    name: str, data: dict[Any, Any], lines: dict[tuple[Any, ...], int], templates: Templates
) -> list[Problem]:
    """Each well-formed ``send`` whose template is missing or broken, at the ``send`` key."""
    problems: list[Problem] = []
    steps = data.get("steps")
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        send = step.get("send") if isinstance(step, dict) else None
        if not isinstance(send, dict):
            continue
        channel, template = send.get("channel"), send.get("template")
        if channel not in CHANNELS or not isinstance(template, str) or not template:
            continue  # the model reports a bad channel or template name
        for _line, text in templates.problems(channel, template):
            problems.append(Problem(name, line_for(("steps", i, "send"), lines), text))
    return problems


def load_directory(
    directory: str | Path, templates: Templates, *, segment_names: set[str] | None = None
) -> tuple[list[LoadedCampaign], list[Problem]]:
    """Every ``*.yaml``/``*.yml`` directly under ``directory`` (subfolders are not campaigns).

    Segments a campaign names must exist: in ``segment_names`` when given, else in
    ``directory/segments``.
    """
    root = Path(directory)
    campaigns: list[LoadedCampaign] = []
    problems: list[Problem] = []
    if not root.is_dir():
        return [], [Problem(str(root), 1, "campaigns directory not found")]
    seen: dict[str, str] = {}
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        loaded, found = parse_file(path, templates)
        problems.extend(found)
        if loaded is None:
            continue
        other = seen.get(loaded.definition.name)
        if other:
            problems.append(
                Problem(str(path), 1, f"campaign name {loaded.definition.name!r} also in {other}")
            )
            continue
        seen[loaded.definition.name] = str(path)
        campaigns.append(loaded)
    if segment_names is None:
        found, _ = segment_loader.load_directory(segment_loader.segments_dir(root))
        segment_names = {item.definition.name for item in found}
    for item in campaigns:
        for name in sorted(item.definition.segments() - segment_names):
            problems.append(
                Problem(item.file, 1, f"no segment named {name!r} (campaigns/segments/)")
            )
    return campaigns, problems


def load_project(
    directory: str | Path, templates: Templates
) -> tuple[list[LoadedCampaign], list[LoadedSegment], list[Problem]]:
    """Campaigns in ``directory`` and segments in ``directory/segments``, checked together."""
    segments, problems = segment_loader.load_directory(segment_loader.segments_dir(directory))
    campaigns, more = load_directory(
        directory, templates, segment_names={s.definition.name for s in segments}
    )
    return campaigns, segments, problems + more
