"""YAML files read with the line of every key, so each mistake is reported as ``file:line``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Lines = dict[tuple[Any, ...], int]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def to_data(
    node: yaml.Node,
    path: tuple[Any, ...],
    lines: Lines,
    unreadable: list[tuple[int, str]] | None = None,
) -> Any:
    """The node as data, recording each location's line. A scalar YAML cannot construct
    (an unquoted 2026-02-30) raises, or, given ``unreadable``, is noted there and kept as
    its text, so the rest of the file is still read and checked."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            if isinstance(key, bool):
                # YAML 1.1 reads the keys on/off/yes/no as true/false; ours are names.
                key = key_node.value
            lines[(*path, key, "__key__")] = key_node.start_mark.line + 1
            out[key] = to_data(value_node, (*path, key), lines, unreadable)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [to_data(item, (*path, i), lines, unreadable) for i, item in enumerate(node.value)]
    try:
        return yaml.safe_load(yaml.serialize(node))
    except (ValueError, OverflowError) as err:
        # An unquoted 2026-02-30 is a date to YAML, and not one on any calendar: a
        # problem at its line, like any other mistake, not a crash.
        text = (
            f"{node.value!r} is not a valid date or number ({err}); "
            "write a real one, or put it in quotes to mean text"
        )
        if unreadable is not None:
            unreadable.append((node.start_mark.line + 1, text))
            return node.value
        raise yaml.constructor.ConstructorError(None, None, text, node.start_mark) from None


def line_for(loc: tuple[Any, ...], lines: Lines) -> int:
    """The line of a location (YAML keys and indexes); unknown keys point at the key itself."""
    key_line = lines.get((*loc, "__key__"))
    if key_line:
        return key_line
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


def read(path: Path) -> tuple[Any, Lines, list[Problem]]:
    """The file's data and the line of each location, with the problems found reading it:
    data None when they stop reading (a syntax error), else values that YAML could not
    construct (kept as text), so the caller checks the rest and reports every mistake."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, {}, [Problem(name, 1, f"cannot read: {err}")]
    lines: Lines = {}
    unreadable: list[tuple[int, str]] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = None if node is None else to_data(node, (), lines, unreadable)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return None, {}, [Problem(name, line, f"YAML: {getattr(err, 'problem', err)}")]
    if node is None:
        return None, {}, [Problem(name, 1, "the file is empty")]
    return data, lines, unreadable_problems(name, unreadable)


def unreadable_problems(file: str, unreadable: list[tuple[int, str]]) -> list[Problem]:
    """The values :func:`to_data` noted as unreadable, as problems of ``file``."""
    return [Problem(file, line, f"YAML: {text}") for line, text in unreadable]


def merged(first: list[Problem], more: list[Problem]) -> list[Problem]:
    """Problems of reading, then of checking, in line order; a value already reported as
    unreadable is not reported again on its line."""
    taken = {p.line for p in first}
    return sorted([*first, *(p for p in more if p.line not in taken)], key=lambda p: p.line)
