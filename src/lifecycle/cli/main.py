"""``lifecycle``: demo, migrate, campaigns validate, serve, api, worker, scheduler."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lifecycle.cli.duplicates import app as duplicates_app
from lifecycle.cli.segments import app as segments_app
from lifecycle.config import Settings, get_settings

app = typer.Typer(help="lifecycle: behaviour in, the right message out.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Campaign files.", no_args_is_help=True)
journeys_app = typer.Typer(help="Journeys.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(journeys_app, name="journeys")
app.add_typer(
    duplicates_app, name="duplicates", help="Possible duplicates: scan, review, accept, dismiss."
)
app.add_typer(
    segments_app, name="segments", help="Segments: list, preview, members, recompute, validate."
)
# Piped output (CI logs, files) gets wide tables instead of rich's 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)


def _settings(database_url: str | None = None) -> Settings:
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


DbOption = Annotated[
    str | None, typer.Option("--database-url", help="Overrides LIFECYCLE_DATABASE_URL.")
]


@app.command()
def demo(
    events: Annotated[
        Path | None, typer.Option(help="A REES46-format CSV; default: a generated one.")
    ] = None,
    database_url: DbOption = None,
    batch_size: Annotated[int, typer.Option(help="Calls per ingestion batch.")] = 500,
) -> None:
    """Replay shop behaviour through the whole pipeline and print what happened."""
    from lifecycle.cli.demo import run_demo

    sys.exit(run_demo(_settings(database_url), events, batch_size=batch_size, console=console))


@app.command("migrate")
def migrate_cmd(database_url: DbOption = None) -> None:
    """Bring the database schema to the latest migration."""
    from lifecycle import migrate
    from lifecycle.db import make_engine

    settings = _settings(database_url)
    migrate.upgrade(make_engine(settings.database_url))
    console.print(f"schema up to date on {settings.database_url}")


@campaigns_app.command("validate")
def validate(
    directory: Annotated[
        Path | None, typer.Argument(help="Default: the campaigns directory.")
    ] = None,
) -> None:
    """Check every campaign file; print file:line: problem for each mistake."""
    from lifecycle.campaigns.loader import load_directory
    from lifecycle.rendering.templates import Templates

    settings = get_settings()
    loaded, problems = load_directory(
        directory or settings.campaigns_dir, Templates(settings.templates_dir)
    )
    for problem in problems:
        print(problem)
    if problems:
        raise typer.Exit(1)
    for item in loaded:
        steps = len(item.definition.steps)
        print(f"{item.file}: ok ({item.definition.name}, {steps} step{'' if steps == 1 else 's'})")


def _serve_api(runtime, host: str, port: int) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from lifecycle.api.app import create_app

    uvicorn.run(create_app(runtime), host=host, port=port)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, database_url: DbOption = None) -> None:
    """Everything in one process: API, in-process worker and scheduler (embedded default)."""
    from lifecycle.runtime import build_runtime
    from lifecycle.workers.processes import prepare, start_embedded

    runtime = build_runtime(_settings(database_url))
    _exit_on_problems(prepare(runtime)[1])
    bound, scheduler = start_embedded(runtime)
    try:
        _serve_api(runtime, host, port)
    finally:
        scheduler.shutdown()
        bound.stop()


@app.command()
def api(host: str = "0.0.0.0", port: int = 8000, database_url: DbOption = None) -> None:
    """The HTTP API only (production: jobs go to Redis, workers run elsewhere)."""
    from lifecycle.runtime import build_runtime
    from lifecycle.workers.broker import bind

    runtime = build_runtime(_settings(database_url))
    bind(runtime)
    _serve_api(runtime, host, port)


@app.command()
def worker(database_url: DbOption = None, threads: int | None = None) -> None:
    """A dramatiq worker consuming the configured broker."""
    from lifecycle.runtime import build_runtime
    from lifecycle.workers.broker import bind
    from lifecycle.workers.processes import run_until_signal

    runtime = build_runtime(_settings(database_url))
    bound = bind(runtime)
    bound.start_worker(threads or runtime.settings.worker_threads)
    console.print(f"worker consuming {runtime.settings.broker} broker; Ctrl-C stops")
    run_until_signal(bound)


@app.command()
def scheduler(database_url: DbOption = None) -> None:
    """The scheduler: publishes campaigns, then wakes due journeys and retries on a tick."""
    from lifecycle.runtime import build_runtime
    from lifecycle.workers.broker import bind
    from lifecycle.workers.processes import prepare, run_until_signal, start_scheduler

    runtime = build_runtime(_settings(database_url))
    _exit_on_problems(prepare(runtime)[1])
    bind(runtime)
    console.print(
        f"scheduler ticking every {runtime.settings.scheduler_interval_seconds}s; Ctrl-C stops"
    )
    run_until_signal(start_scheduler(runtime))


@app.command()
def publish(database_url: DbOption = None) -> None:
    """Check the campaigns directory and its segments, then deploy them (as serve and
    scheduler do when they start); nothing is deployed when any file has a problem."""
    from lifecycle.runtime import build_runtime
    from lifecycle.workers.processes import prepare

    runtime = build_runtime(_settings(database_url))
    changed, problems = prepare(runtime)
    _exit_on_problems(problems)
    for item in changed:
        console.print(item if " archived " in item else f"published {item}", highlight=False)
    if not changed:
        console.print("nothing changed: every campaign and segment is deployed as written")


@journeys_app.command("stuck")
def stuck(database_url: DbOption = None, grace_minutes: float = 30.0) -> None:
    """Active journeys whose wake time passed long ago (the scheduler is behind or down)."""
    from datetime import timedelta

    from lifecycle import clock
    from lifecycle.campaigns.service import stuck_journeys
    from lifecycle.runtime import build_runtime

    runtime = build_runtime(_settings(database_url))
    with runtime.session() as session:
        found = stuck_journeys(session, now=clock.now(), grace=timedelta(minutes=grace_minutes))
        for j in found:
            print(
                f"journey {j.id} profile {j.profile_id} step {j.step_index} waiting on {j.waiting_on} since {j.wake_at}"
            )
    if not found:
        print("no stuck journeys")


def _exit_on_problems(problems) -> None:  # type: ignore[no-untyped-def]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        raise typer.Exit(1)


profiles_app = typer.Typer(help="Profiles: merge and undo by hand.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")


@profiles_app.command("merge")
def merge_cmd(
    into: Annotated[str, typer.Argument(help="The profile that stays (id:..., email:..., 42).")],
    other: Annotated[str, typer.Argument(help="The profile merged into it.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the merge log.")],
    by: Annotated[str, typer.Option(help="Who asks; kept in the merge log.")],
    force: Annotated[bool, typer.Option(help="Needed when both have an external id.")] = False,
    database_url: DbOption = None,
) -> None:
    """Merge OTHER into INTO (undo with `lifecycle profiles unmerge MERGE_ID`)."""
    from lifecycle import clock
    from lifecycle.errors import LifecycleError
    from lifecycle.profiles import service
    from lifecycle.runtime import build_runtime

    runtime = build_runtime(_settings(database_url))
    try:
        with runtime.session() as session:
            record = service.merge(
                session,
                into,
                other,
                reason=reason,
                actor=by,
                now=clock.now(),
                force=force,
                default_region=runtime.settings.default_phone_region,
            )
            print(f"merge {record.id}: profile {record.merged_id} merged into {record.survivor_id}")
    except LifecycleError as err:
        print(f"error: {err.message}", file=sys.stderr)
        raise typer.Exit(1) from None


@profiles_app.command("unmerge")
def unmerge_cmd(
    merge_id: int,
    reason: Annotated[str, typer.Option(help="Why; kept in the merge log.")],
    by: Annotated[str, typer.Option(help="Who asks; kept in the merge log.")],
    database_url: DbOption = None,
) -> None:
    """Undo a merge exactly: both profiles come back, with what happened since."""
    from lifecycle import clock
    from lifecycle.errors import LifecycleError
    from lifecycle.profiles import service
    from lifecycle.runtime import build_runtime

    runtime = build_runtime(_settings(database_url))
    try:
        with runtime.session() as session:
            record = service.undo_merge(session, merge_id, reason=reason, actor=by, now=clock.now())
            print(f"merge {record.id} undone: profiles {record.survivor_id} and {record.merged_id}")
    except LifecycleError as err:
        print(f"error: {err.message}", file=sys.stderr)
        raise typer.Exit(1) from None


def run() -> None:
    """The ``lifecycle`` console command: configuration and connection problems are one
    line naming the setting, not a traceback."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

    try:
        app()
    except (SettingsError, ValidationError) as err:
        print(f"error: a LIFECYCLE_* setting is not valid: {err}", file=sys.stderr)
        sys.exit(2)
    except (ArgumentError, NoSuchModuleError) as err:
        print(
            f"error: LIFECYCLE_DATABASE_URL (or --database-url) is not usable: {err}",
            file=sys.stderr,
        )
        sys.exit(2)
    except OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        if reason.startswith("no such table"):  # SQLite: a database never migrated
            print(
                f"error: {reason}; run `lifecycle migrate` on this database first",
                file=sys.stderr,
            )
            sys.exit(2)
        print(
            f"error: cannot use the database ({reason}); check LIFECYCLE_DATABASE_URL",
            file=sys.stderr,
        )
        sys.exit(2)
    except ProgrammingError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        print(
            f"error: {reason}; has `lifecycle migrate` been run on this database?", file=sys.stderr
        )
        sys.exit(2)


imports_app = typer.Typer(help="Past imports: their rejected rows.", no_args_is_help=True)
app.add_typer(imports_app, name="imports")


def _follow_up_jobs(runtime):  # type: ignore[no-untyped-def]
    """Jobs to the configured broker; on the embedded one, worker threads here."""
    from lifecycle.workers.broker import bind

    bound = bind(runtime)
    if runtime.settings.broker != "redis":
        bound.start_worker(runtime.settings.worker_threads)
    return bound


@app.command("import")
def import_file(
    path: Path,
    key: Annotated[str | None, typer.Option(help="Match people on email, phone or id.")] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="COLUMN=FIELD (FIELD 'ignore' skips it).")
    ] = None,
    encoding: Annotated[str | None, typer.Option(help="Default: detected.")] = None,
    delimiter: Annotated[str | None, typer.Option(help="Default: sniffed among , ; tab |.")] = None,
    empty_clears: Annotated[bool, typer.Option(help="Empty cells clear fields.")] = False,
    existing: Annotated[
        str, typer.Option(help="Profiles that exist: update, fill_empty or skip.")
    ] = "update",
    date_order: Annotated[
        str | None, typer.Option(help="DMY, MDY or YMD, for dates like 03/04/2024.")
    ] = None,
    excel_serials: Annotated[bool, typer.Option(help="Read 31182 as a spreadsheet date.")] = False,
    year_required: Annotated[bool, typer.Option(help="Reject dates without a year.")] = False,
    unknown_columns: Annotated[
        str, typer.Option(help="Unrecognised, unmapped columns: refuse, keep or ignore.")
    ] = "refuse",
    list_: Annotated[
        list[str] | None, typer.Option("--list", help="Add everyone imported to this list.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag everyone imported.")] = None,
    phone_region: Annotated[
        str | None,
        typer.Option(
            help="Country (code or name) of phone numbers written without one, for rows"
            " without a country column. Default: the settings' default_phone_region."
        ),
    ] = None,
    missing_markers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated words read as missing values (default: NULL,N/A,#N/A,"
            "(null),#NULL!); '' for none, so NULL is text."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Preview and count; write nothing.")] = False,
    database_url: DbOption = None,
) -> None:
    """Import a CSV of customers (re-running the same file changes nothing)."""
    from rich.progress import Progress, TransferSpeedColumn

    from lifecycle import clock
    from lifecycle.errors import LifecycleError
    from lifecycle.imports.service import ImportOptions, mark_interrupted, run
    from lifecycle.runtime import build_runtime

    mapping = {}
    for item in map_ or []:
        column, sep, target = item.partition("=")
        if not sep or not column or not target:
            print(f"error: --map {item!r}: use COLUMN=FIELD", file=sys.stderr)
            raise typer.Exit(2)
        if column in mapping and mapping[column] != target:
            print(
                f"error: --map gives column {column!r} twice ({mapping[column]} and {target})",
                file=sys.stderr,
            )
            raise typer.Exit(2)
        mapping[column] = target
    try:
        data = path.open("rb")  # streamed: memory stays flat whatever the file's size
    except OSError as err:
        print(f"error: cannot read {path}: {err.strerror}", file=sys.stderr)
        raise typer.Exit(2) from None
    runtime = build_runtime(_settings(database_url))
    if runtime.engine.dialect.name == "sqlite":
        # The embedded default needs no set-up step: its schema is brought up to date here
        # (a newcomer's first import). PostgreSQL is migrated deliberately (`migrate`).
        from lifecycle import migrate

        migrate.upgrade(runtime.engine)
    options = ImportOptions(
        key=key,
        mapping=mapping,
        encoding=encoding,
        delimiter=delimiter,  # "tab" and a typed \t are read by the service
        empty_clears=empty_clears,
        dry_run=dry_run,
        existing=existing,
        date_order=date_order.upper() if date_order else None,
        excel_serials=excel_serials,
        year_required=year_required,
        unknown_columns=unknown_columns,
        lists=tuple(list_ or ()),
        tags=tuple(tag or ()),
        phone_region=phone_region,
        missing_markers=None
        if missing_markers is None
        else tuple(m.strip() for m in missing_markers.split(",") if m.strip()),
    )
    # What the import sets off (segment re-checks, then the campaigns they trigger) runs
    # as it does behind the API: on the embedded default in this process, and the import
    # waits for it; with Redis, on the workers. A dry run sets off nothing.
    bound = None if dry_run else _follow_up_jobs(runtime)
    size = path.stat().st_size
    landed: list[int] = []  # the import's id, once a batch has landed
    done: list[int] = [0]  # rows read so far

    def batch_done(record: Any) -> None:
        session.commit()  # each batch lands: an interrupted import resumes
        landed[:] = [record.id]

    def moved(rows: int) -> None:
        done[:] = [rows]
        # The bytes read so far give the bar its length: rows are not known ahead.
        progress.update(task, completed=min(data.tell(), size), description=f"{rows:,} rows")

    # A stop from outside (kill, a container's shutdown) ends as Ctrl-C does: the batches
    # done stay, the import shows as interrupted.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with (
            runtime.session() as session,
            Progress(
                *Progress.get_default_columns(),
                TransferSpeedColumn(),
                console=console,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task(f"importing {path.name}", total=size)
            report = run(
                session,
                data,
                filename=path.name,
                options=options,
                ingest_options=runtime.ingest_options,
                now=clock.now(),
                on_batch=batch_done,
                on_progress=moved,
            )
        if bound is not None and bound.worker is not None:
            with console.status("updating segment memberships"):
                bound.drain()
    except LifecycleError as err:
        print(f"error: {err.message}", file=sys.stderr)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        if landed:
            with runtime.session() as session:
                mark_interrupted(session, landed[0])
                session.commit()
        print(
            f"interrupted after {done[0]:,} rows: the rows imported so far are kept; run the"
            " same command again to resume where it stopped",
            file=sys.stderr,
        )
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        data.close()
        if bound is not None:
            bound.stop()
    console.print(
        f"{'dry run: ' if dry_run else ''}{report.filename}: encoding {report.encoding}, "
        f"delimiter {report.delimiter!r}, matching on {report.key}"
    )
    for column in report.columns:
        missing = f" ({column['missing']} read as missing)" if column.get("missing") else ""
        console.print(
            f"  column {column['header']!r} -> {column['field']}{missing}", highlight=False
        )
    console.print(f"  {report.notes[0]}" if report.notes else "", highlight=False)
    for warning in report.warnings:
        console.print(f"  [yellow]warning: {warning}[/yellow]", highlight=False)
    console.print("  " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.counts.items()))
    for row in report.preview[:3] if dry_run else []:
        shown = {
            name: value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
            for name, value in (row.get("stored") or row["traits"]).items()
        }  # a 100 KB cell would flood the terminal
        console.print(f"  row {row['line']} would store {shown}", highlight=False)
    for row in report.folded[:10]:
        earlier = f"row {row['into']}" if row["into"] else "an earlier row"
        console.print(
            f"  row {row['line']}: the same person as {earlier}, folded into it"
            " (later non-empty values win)",
            highlight=False,
        )
    for row in report.warned[:20]:
        for warning in row["warnings"]:
            console.print(f"  [yellow]row {row['line']}: {warning}[/yellow]", highlight=False)
    if report.counts.get("warned", 0) > 20:
        console.print(
            f"  ... and {report.counts['warned'] - 20} more rows with warnings"
            + (f" (GET /v1/imports/{report.import_id})" if report.import_id else ""),
            highlight=False,
        )
    for rejection in report.rejections[:20]:
        console.print(
            f"  [yellow]row {rejection['line']}: {rejection['reason']}[/yellow]", highlight=False
        )
    if report.counts["rejected"] > 20:
        console.print(f"  ... and {report.counts['rejected'] - 20} more rejected rows")
    if report.import_id is not None and report.rejections:
        console.print(
            f"  rejected rows: lifecycle imports rejected {report.import_id} > fix-me.csv"
        )
    if report.status != "done":
        console.print(f"[red]{report.message}[/red]")
        raise typer.Exit(1)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@imports_app.command("rejected")
def import_rejected(import_id: int, database_url: DbOption = None) -> None:
    """The rejected rows of an import as a CSV to fix and import again (line, reason, cells)."""
    from lifecycle.errors import LifecycleError
    from lifecycle.imports.service import rejected_csv
    from lifecycle.runtime import build_runtime

    runtime = build_runtime(_settings(database_url))
    try:
        with runtime.session() as session:
            sys.stdout.write(rejected_csv(session, import_id))
    except LifecycleError as err:
        print(f"error: {err.message}", file=sys.stderr)
        raise typer.Exit(1) from None
