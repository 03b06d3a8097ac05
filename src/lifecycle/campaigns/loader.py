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

import yaml
from pydantic import ValidationError

from lifecycle.campaigns.definition import REFERENCES_REPORTED_BY_CALLER, CampaignDef
from lifecycle.rendering.templates import CHANNELS, Templates


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


@dataclass(frozen=True)
class LoadedCampaign:
    definition: CampaignDef
    file: str
    checksum: str


def _to_data(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            lines[(*path, key, "__key__")] = key_node.start_mark.line + 1
            out[key] = _to_data(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    # Pydantic locations use aliases ("if", "else"); unknown keys point at the key itself.
    key_line = lines.get((*loc, "__key__"))
    if key_line:
        return key_line
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


def parse_file(path: Path, templates: Templates) -> tuple[LoadedCampaign | None, list[Problem]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, [Problem(name, 1, f"cannot read: {err}")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return None, [Problem(name, line, f"YAML: {getattr(err, 'problem', err)}")]
    if node is None:
        return None, [Problem(name, 1, "the file is empty")]
    lines: dict[tuple[Any, ...], int] = {}
    data = _to_data(node, (), lines)
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
            problems.append(Problem(name, _line_for(loc, lines), f"{where}: {msg}"))
        return None, sorted(problems, key=lambda p: p.line)
    for loc, text in definition.reference_problems():
        where = ".".join(str(p) for p in loc)
        problems.append(Problem(name, _line_for(loc, lines), f"{where}: {text}"))
    if problems:
        return None, sorted(problems, key=lambda p: p.line)
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
            problems.append(Problem(name, _line_for(("steps", i, "send"), lines), text))
    return problems


def load_directory(
    directory: str | Path, templates: Templates
) -> tuple[list[LoadedCampaign], list[Problem]]:
    """Every ``*.yaml``/``*.yml`` directly under ``directory`` (subfolders are not campaigns)."""
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
    return campaigns, problems
