"""``lifecycle segments``: list, preview files before deploying, members, recompute, validate.

Mounted by ``lifecycle.cli.main`` with ``app.add_typer(segments.app, name="segments")``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lifecycle.config import Settings, get_settings
from lifecycle.yamlfile import Problem

app = typer.Typer(
    help="Segments: list with sizes, preview files before deploying, members, recompute.",
    no_args_is_help=True,
)
# Piped output (CI logs, files) gets wide tables instead of rich's 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)

DbOption = Annotated[
    str | None, typer.Option("--database-url", help="Overrides LIFECYCLE_DATABASE_URL.")
]
MAX_MEMBERS = 500


def _settings(database_url: str | None) -> Settings:
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def _runtime(database_url: str | None) -> Any:
    from lifecycle.runtime import build_runtime

    return build_runtime(_settings(database_url))


def _fail(err: Any) -> NoReturn:
    print(f"error: {err.message}", file=sys.stderr)
    raise typer.Exit(1) from None


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _when(iso: str | None) -> str:
    """``2026-03-10 12:00:00 UTC`` from the ISO text the service gives (always UTC)."""
    from datetime import UTC, datetime

    if not iso:
        return "never"
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _who(member: dict[str, Any]) -> str:
    parts = [f"#{member['profile_id']}"]
    parts += [f"{k}:{member[k]}" for k in ("id", "email", "phone") if member.get(k)]
    return " ".join(parts)


@app.command("list")
def list_cmd(database_url: DbOption = None) -> None:
    """Every active segment: size, whether time moves people in or out, when computed."""
    from lifecycle.segments import service

    runtime = _runtime(database_url)
    with runtime.session() as session:
        found = service.summary(session)
    if not found:
        print(
            "no segments deployed (files in campaigns/segments/ are published by "
            "`lifecycle publish`, and when `lifecycle serve` or `lifecycle scheduler` starts)"
        )
        return
    table = Table(title=f"segments: {len(found)}")
    for column in ("name", "size", "time-based", "computed at", "version", "description"):
        table.add_column(column, overflow="fold", justify="right" if column == "size" else "left")
    for item in found:
        table.add_row(
            escape(item["name"]),
            str(item["size"]),
            "yes" if item["time_based"] else "no",
            _when(item["computed_at"]),
            str(item["version"]),
            escape(item["description"] or ""),
        )
    console.print(table)


def _not_comparable(definition: Any, counts: dict[str, int]) -> list[str]:
    """``1 profile has an age that is not a number`` for each attribute that cannot be read."""
    from lifecycle.segments.definition import Attribute, DateSpec, walk

    kinds: dict[str, str] = {}
    for node in walk(definition.where):
        if isinstance(node, Attribute):
            parts = node.test.value if isinstance(node.test.value, tuple) else (node.test.value,)
            is_date = node.test.op in ("within_last", "within_next", "anniversary") or any(
                isinstance(p, DateSpec) for p in parts
            )
            kinds.setdefault(node.name, "a date" if is_date else "a number")
    out = []
    for name, n in sorted(counts.items()):
        article = "an" if name[:1].lower() in "aeiou" else "a"
        verb = "has" if n == 1 else "have"
        what = kinds.get(name, "a number or a date")
        out.append(f"{_plural(n, 'profile')} {verb} {article} {name} that is not {what}")
    return out


@app.command()
def preview(
    files: Annotated[list[Path], typer.Argument(help="Segment YAML files, not yet deployed.")],
    limit: Annotated[int, typer.Option(help="Members shown per segment.")] = 10,
    database_url: DbOption = None,
) -> None:
    """Check FILES, then print each segment's size and a sample: nothing is written."""
    from lifecycle import clock
    from lifecycle.errors import LifecycleError
    from lifecycle.segments import service
    from lifecycle.segments.loader import check_references, parse_file

    if not 1 <= limit <= MAX_MEMBERS:
        print(f"error: --limit must be between 1 and {MAX_MEMBERS}", file=sys.stderr)
        raise typer.Exit(2)
    loaded: list[Any] = []
    problems: list[Problem] = []
    for path in files:
        item, found = parse_file(path)
        problems += found
        if item is not None:
            loaded.append(item)
    names = [item.definition.name for item in loaded]
    for item in loaded:
        if names.count(item.definition.name) > 1:
            text = f"segment name {item.definition.name!r} in more than one file"
            problems.append(Problem(item.file, 1, text))
    if problems:
        _print_problems(problems)
    runtime = _runtime(database_url)
    try:
        with runtime.session() as session:
            try:
                problems = check_references(loaded, set(service.catalog(session).entries))
                if problems:
                    _print_problems(problems)
                results = service.preview(
                    session,
                    loaded,
                    now=clock.now(),
                    zone=runtime.settings.workspace_timezone,
                    limit=limit,
                )
            finally:
                session.rollback()  # a preview leaves nothing behind
    except LifecycleError as err:
        _fail(err)
    by_name = {item.definition.name: item for item in loaded}
    for result in results:
        timed = ", time-based" if result["time_based"] else ""
        console.print(
            f"[bold]{escape(result['name'])}[/bold] ({escape(result['file'])}{timed}): "
            f"{_plural(result['size'], 'profile')}",
            highlight=False,
        )
        for member in result["sample"]:
            console.print(f"  {escape(_who(member))}", highlight=False)
        if result["size"] > len(result["sample"]):
            console.print(f"  … and {result['size'] - len(result['sample'])} more", highlight=False)
        for warning in _not_comparable(
            by_name[result["name"]].definition, result["not_comparable"]
        ):
            console.print(f"  [yellow]warning: {escape(warning)}[/yellow]", highlight=False)


def _print_problems(problems: list[Problem]) -> NoReturn:
    for problem in sorted(problems, key=lambda p: (p.file, p.line)):
        print(problem)
    raise typer.Exit(1)


@app.command()
def members(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    limit: Annotated[int, typer.Option(help=f"At most {MAX_MEMBERS}.")] = 20,
    database_url: DbOption = None,
) -> None:
    """A sample of the segment's current members, with when and why they entered."""
    from lifecycle.errors import LifecycleError
    from lifecycle.segments import service

    if not 1 <= limit <= MAX_MEMBERS:
        print(f"error: --limit must be between 1 and {MAX_MEMBERS}", file=sys.stderr)
        raise typer.Exit(2)
    runtime = _runtime(database_url)
    try:
        with runtime.session() as session:
            size = len(service.current_members(session, name))
            found = service.sample(session, name, limit=limit)
    except LifecycleError as err:
        _fail(err)
    if not found:
        print(f"{name}: no members")
        return
    table = Table(title=f"{escape(name)}: {_plural(size, 'member')}")
    for column in ("profile", "id", "email", "phone", "entered at", "cause"):
        table.add_column(column, overflow="fold")
    for member in found:
        table.add_row(
            str(member["profile_id"]),
            *(escape(member.get(k) or "") for k in ("id", "email", "phone")),
            _when(member["entered_at"]),
            escape(member["cause"]),
        )
    console.print(table)
    if size > len(found):
        print(f"{size - len(found)} more: --limit {min(size, MAX_MEMBERS)}")


@app.command()
def recompute(
    name: Annotated[str | None, typer.Argument(help="One segment; default: every one.")] = None,
    database_url: DbOption = None,
) -> None:
    """Recompute now and store who entered and who left (campaigns they trigger start)."""
    from lifecycle import clock
    from lifecycle.campaigns.service import apply_transitions
    from lifecycle.errors import LifecycleError
    from lifecycle.segments import service

    runtime = _runtime(database_url)
    now = clock.now()
    zone = runtime.settings.workspace_timezone
    try:
        with runtime.session() as session:
            found = service.catalog(session)
            entries = [found.get(name)] if name else list(found.entries.values())
            lines, transitions = [], []
            for entry in entries:
                moved = service.recompute(
                    session, entry, now=now, zone=zone, cause="recomputed by hand"
                )
                transitions += moved
                entered = sum(t.entered for t in moved)
                size = len(service.current_members(session, entry.name))
                lines.append(
                    f"{entry.name}: {entered} entered, {len(moved) - entered} left, "
                    f"{_plural(size, 'member')} now"
                )
            started = apply_transitions(
                session, transitions, now=now, settle_window=runtime.settle_window, zone=zone
            )
    except LifecycleError as err:
        _fail(err)
    if not entries:
        print("no segments deployed")
    for line in lines:
        print(line)
    if started:
        print(f"{_plural(started, 'journey')} started")


@app.command()
def validate(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="A campaigns directory (its segments/), a folder of segment files, or one file."
        ),
    ] = None,
) -> None:
    """Check every segment file; print file:line: problem for each mistake."""
    from lifecycle.segments.loader import (
        check_references,
        load_directory,
        parse_file,
        segments_dir,
        yaml_files,
    )

    root = Path(directory or get_settings().campaigns_dir)
    if root.is_file() or root.suffix in (".yaml", ".yml"):
        # One file: checked, and its references against the files beside it.
        if not root.is_file():
            print(f"{root}:1: file not found")
            raise typer.Exit(1)
        item, problems = parse_file(root)
        if item is not None:
            siblings = {p.stem for p in yaml_files(root.parent)}
            problems += check_references([item], siblings)
        for problem in problems:
            print(problem)
        if problems or item is None:
            raise typer.Exit(1)
        print(f"{item.file}: ok ({item.definition.name})")
        return
    folder = root if root.name == "segments" else segments_dir(root)
    if directory is not None and not folder.is_dir() and yaml_files(root):
        folder = root  # a folder of segment files under another name
    if not folder.is_dir():
        if directory is not None and not root.is_dir():
            print(f"{root}:1: directory not found")
            raise typer.Exit(1)
        print(f"{folder}: no segments directory, no segments")
        return
    loaded, problems = load_directory(folder)
    for problem in problems:
        print(problem)
    if problems:
        raise typer.Exit(1)
    if not loaded:
        print(f"{folder}: no segment files")
    for item in loaded:
        print(f"{item.file}: ok ({item.definition.name})")
