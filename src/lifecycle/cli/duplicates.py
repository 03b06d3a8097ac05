"""``lifecycle duplicates``: scan for possible duplicate profiles, list, accept, dismiss.

Mounted by ``lifecycle.cli.main`` with ``app.add_typer(duplicates.app, name="duplicates")``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from lifecycle.config import Settings, get_settings

app = typer.Typer(
    help="Possible duplicate profiles: scan, review, accept (merge) or dismiss.",
    no_args_is_help=True,
)
# Piped output (CI logs, files) gets wide tables instead of rich's 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)

DbOption = Annotated[
    str | None, typer.Option("--database-url", help="Overrides LIFECYCLE_DATABASE_URL.")
]


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


@app.command()
def scan(
    limit: Annotated[
        int | None, typer.Option(help="Only the first N live profiles (by id).")
    ] = None,
    database_url: DbOption = None,
) -> None:
    """Scan every live profile and store the pairs found (nothing is merged)."""
    from lifecycle import clock
    from lifecycle.profiles import duplicates

    runtime = _runtime(database_url)
    with runtime.session() as session:
        report = duplicates.scan(
            session,
            now=clock.now(),
            limit=limit,
            **runtime.identifier_rules,  # type: ignore[arg-type]
        )
    print(
        f"scanned {report.profiles} profiles in {report.seconds['total']:.1f}s: "
        f"{report.exact_pairs} exact and {report.fuzzy_pairs} fuzzy pairs; "
        f"{report.inserted} new, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.decided} already decided"
    )
    if report.oversized_total:
        print(f"{report.oversized_total} blocks too large to compare (largest first):")
        for block in report.oversized:
            print(f"  {block['family']} {block['key']!r}: {block['profiles']} profiles")


def _who(profile: dict[str, Any]) -> str:
    parts = [f"#{profile['id']}", profile.get("name") or ""]
    parts += profile.get("emails", [])[:2] + profile.get("phones", [])[:1]
    if profile.get("external_ids"):
        parts.append("id:" + ",".join(profile["external_ids"]))
    return " ".join(p for p in parts if p)


@app.command("list")
def list_cmd(
    status: Annotated[str, typer.Option(help="open, dismissed or merged.")] = "open",
    limit: int = 50,
    offset: int = 0,
    database_url: DbOption = None,
) -> None:
    """Candidate pairs, best evidence first."""
    from lifecycle.errors import LifecycleError
    from lifecycle.profiles import duplicates

    runtime = _runtime(database_url)
    try:
        with runtime.session() as session:
            page = duplicates.list_candidates(session, status=status, limit=limit, offset=offset)
    except LifecycleError as err:
        _fail(err)
    if not page["items"]:
        print(f"no {status} duplicate candidates")
        return
    table = Table(title=f"{status} duplicate candidates: {page['total']}")
    for column in ("id", "score", "profile", "profile", "evidence"):
        table.add_column(column, overflow="fold")
    for item in page["items"]:
        a, b = item["profiles"]
        table.add_row(
            str(item["id"]),
            f"{item['score']:.2f}",
            _who(a),
            _who(b),
            "\n".join(e.removeprefix("scan: ") for e in item["evidence"]),
        )
    console.print(table)
    shown = page["offset"] + len(page["items"])
    if shown < page["total"]:
        print(f"{page['total'] - shown} more: --offset {shown}")


@app.command()
def accept(
    candidate_id: Annotated[int, typer.Argument(metavar="ID", help="The candidate's id.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the merge log.")],
    by: Annotated[str, typer.Option(help="Who decides; kept in the merge log.")],
    force: Annotated[bool, typer.Option(help="Needed when both have an external id.")] = False,
    database_url: DbOption = None,
) -> None:
    """The same person: merge the younger profile into the older one."""
    from lifecycle import clock
    from lifecycle.errors import LifecycleError
    from lifecycle.profiles import duplicates

    runtime = _runtime(database_url)
    try:
        with runtime.session() as session:
            done = duplicates.accept(
                session, candidate_id, actor=by, reason=reason, now=clock.now(), force=force
            )
    except LifecycleError as err:
        _fail(err)
    print(
        f"candidate {candidate_id}: profile {done['merged_id']} merged into "
        f"{done['survivor_id']} (merge {done['merge_id']}; undo with "
        f"`lifecycle profiles unmerge {done['merge_id']}`)"
    )


@app.command()
def dismiss(
    candidate_id: Annotated[int, typer.Argument(metavar="ID", help="The candidate's id.")],
    by: Annotated[str, typer.Option(help="Who decides.")],
    database_url: DbOption = None,
) -> None:
    """Not the same person: the pair is remembered and not shown again."""
    from lifecycle import clock
    from lifecycle.errors import LifecycleError
    from lifecycle.profiles import duplicates

    runtime = _runtime(database_url)
    try:
        with runtime.session() as session:
            candidate = duplicates.dismiss(session, candidate_id, actor=by, now=clock.now())
            status = candidate.status
    except LifecycleError as err:
        _fail(err)
    print(f"candidate {candidate_id}: {status}")
