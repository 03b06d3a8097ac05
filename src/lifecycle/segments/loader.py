"""Reading segment YAML files (``campaigns/segments/``), every mistake as ``file:line: problem``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lifecycle import yamlfile
from lifecycle.segments.definition import DefinitionError, SegmentDef, parse_segment
from lifecycle.yamlfile import Problem, line_for


@dataclass(frozen=True)
class LoadedSegment:
    definition: SegmentDef
    file: str
    checksum: str
    line: int = 1


def parse_file(path: Path) -> tuple[LoadedSegment | None, list[Problem]]:
    name = str(path)
    data, lines, unreadable = yamlfile.read(path)
    if data is None:
        return None, unreadable
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    try:
        definition = parse_segment(data)
    except DefinitionError as err:
        found = [Problem(name, line_for(e.path, lines), str(e)) for e in err.each]
        return None, yamlfile.merged(unreadable, found)
    except ValueError as err:  # a value the YAML parser typed strangely (dates, say)
        return None, yamlfile.merged(unreadable, [Problem(name, 1, str(err))])
    if unreadable:
        return None, unreadable
    canonical = json.dumps(definition.source, sort_keys=True, default=str)
    return LoadedSegment(definition, name, hashlib.sha256(canonical.encode()).hexdigest()), []


def check_references(loaded: list[LoadedSegment], known: set[str] | None = None) -> list[Problem]:
    """Names used by ``{segment: ...}`` exist (here or in ``known``), and none refers to itself."""
    by_name = {item.definition.name: item for item in loaded}
    names = set(by_name) | (known or set())
    problems = []
    for item in loaded:
        for ref in sorted(item.definition.references()):
            if ref not in names:
                problems.append(Problem(item.file, 1, f"where: no segment named {ref!r}"))
    for item in loaded:
        seen: list[str] = []
        stack = [(item.definition.name, [item.definition.name])]
        while stack:
            current, chain = stack.pop()
            found = by_name.get(current)
            for ref in sorted(found.definition.references()) if found else []:
                if ref == item.definition.name:
                    loop = " -> ".join([*chain, ref])
                    problems.append(
                        Problem(item.file, 1, f"where: segments refer in a loop: {loop}")
                    )
                    stack = []
                    break
                if ref not in seen:
                    seen.append(ref)
                    stack.append((ref, [*chain, ref]))
    return problems


def yaml_files(folder: Path) -> list[Path]:
    """The folder's ``*.yaml`` and ``*.yml`` files, in name order (none if it is missing)."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def load_directory(directory: str | Path) -> tuple[list[LoadedSegment], list[Problem]]:
    """Every ``*.yaml``/``*.yml`` in ``directory``; a missing directory holds no segments."""
    root = Path(directory)
    if not root.is_dir():
        return [], []
    loaded: list[LoadedSegment] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in yaml_files(root):
        item, found = parse_file(path)
        problems.extend(found)
        if item is None:
            continue
        other = seen.get(item.definition.name)
        if other:
            problems.append(
                Problem(str(path), 1, f"segment name {item.definition.name!r} also in {other}")
            )
            continue
        seen[item.definition.name] = str(path)
        loaded.append(item)
    problems.extend(check_references(loaded))
    return loaded, problems


def segments_dir(campaigns_dir: str | Path) -> Path:
    return Path(campaigns_dir) / "segments"
