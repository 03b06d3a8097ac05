#!/usr/bin/env python
"""CSV import benchmark on PostgreSQL: ``lifecycle.imports.service.run`` beside a raw COPY.

One run, one scratch database (created, migrated with ``lifecycle.migrate.upgrade``,
dropped at the end, even on an error or Ctrl-C):

1. generates a Shopify-style customer export in memory (``Email``, ``First Name``,
   ``Last Name``, ``Phone``, ``City``, ``Zip``, ``Accepts Email Marketing``): unique
   emails and phones, some leading-zero zips, some empty cells;
2. ``copy``: a raw psycopg 3 ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of the very same
   bytes into a plain table (no index), plus the commit: the baseline;
3. ``import``: ``lifecycle.imports.service.run`` on the whole file in one session, as
   ``lifecycle import`` does (a commit after each batch). ``lifecycle.imports.service.ingest_parsed`` (once
   per batch of ``BATCH`` rows) is wrapped (in this process only) to time every batch, which gives the rate over the
   first and the last 10 % of the rows: it must not fall as ``profiles`` grows;
4. cProfile of one more 1000-row file (new people) imported into the now-full database.

Results: bench/results/import_csv-<time>.json. See bench/README.md.

    python bench/import_csv.py [--rows 100000] [--pg-url postgresql+psycopg://...]
                               [--seed 7] [--no-profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import random
import resource
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import libpq, scratch_database, write_results  # bench/ is on sys.path when run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = os.environ.get(
    "LIFECYCLE_BENCH_PG",
    os.environ.get("LIFECYCLE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)
TARGET_1M_S = 60.0
CEILING_1M_S = 120.0
WINDOW = 0.10  # share of the rows for the start and end rates
HEADER = (
    "Email",
    "First Name",
    "Last Name",
    "Phone",
    "City",
    "Zip",
    "Accepts Email Marketing",
)
PLAIN_TABLE = """
CREATE TABLE bench_copy (
    email text,
    first_name text,
    last_name text,
    phone text,
    city text,
    zip text,
    accepts boolean
)
"""

_FIRST = """james mary robert patricia john jennifer michael linda david elizabeth william barbara
richard susan joseph jessica thomas sarah christopher karen charles lisa daniel nancy matthew
betty anthony sandra mark margaret donald ashley steven kimberly andrew emily paul donna joshua
michelle kenneth carol kevin amanda brian melissa george deborah timothy stephanie ronald dorothy
jason rebecca edward sharon jeffrey laura ryan cynthia jacob amy gary kathleen nicholas angela
eric shirley jonathan brenda stephen emma larry anna justin pamela scott nicole brandon samantha
josé zoë renée françois"""
FIRST = _FIRST.split()
_LAST = """smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez
lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris
sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill
flores green adams nelson baker hall rivera campbell mitchell carter roberts o'brien müller
vandenberg"""
LAST = _LAST.split()
DOMAINS = (
    ["gmail.com"] * 8
    + ["yahoo.com"] * 3
    + ["hotmail.com", "outlook.com", "icloud.com", "aol.com", "comcast.net", "example.org"]
)
# (city, zip prefix): the north-east has leading-zero zips.
CITIES = [
    ("Jersey City", "073"),
    ("Newark", "071"),
    ("Boston", "021"),
    ("Hartford", "061"),
    ("Providence", "029"),
    ("Portland", "041"),
    ("New York", "100"),
    ("Philadelphia", "191"),
    ("Chicago", "606"),
    ("Houston", "770"),
    ("Phoenix", "850"),
    ("San Diego", "921"),
    ("Seattle", "981"),
    ("Denver", "802"),
    ("Atlanta", "303"),
    ("Miami", "331"),
]
AREA_CODES = (201, 212, 312, 415, 617, 646, 713, 718, 773, 202, 305, 404, 503, 602, 720, 858)
PHONE_SPACE = len(AREA_CODES) * 800 * 10_000  # exchanges 200-999, lines 0000-9999
PHONE_STEP = 7_919  # prime, coprime with PHONE_SPACE: a permutation, so phones are unique


# --------------------------------------------------------------------------- data


def phone(i: int) -> str:
    k = (i * PHONE_STEP + 12_345) % PHONE_SPACE
    k, line = divmod(k, 10_000)
    area, exchange = divmod(k, 800)
    return f"+1 {AREA_CODES[area]} {exchange + 200} {line:04d}"


def generate(n: int, seed: int, start: int = 0) -> bytes:
    """A Shopify-like customer export of ``n`` people (numbered from ``start``), as bytes."""
    rnd = random.Random(seed + start)
    out = io.StringIO()
    out.write(",".join(HEADER) + "\n")
    for i in range(start, start + n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        style = rnd.random()
        local = (
            f"{first}.{last}{i}"
            if style < 0.5
            else f"{first[0]}{last}{i}"
            if style < 0.8
            else f"{first}_{i}"
        )
        local = local.replace("'", "").replace(" ", "")
        email = local + "@" + rnd.choice(DOMAINS)
        if rnd.random() < 0.1:
            email = email.capitalize()
        tel = phone(i) if rnd.random() < 0.8 else ""
        city, prefix = rnd.choice(CITIES)
        zip_ = f"{prefix}{rnd.randrange(100):02d}" if rnd.random() < 0.95 else ""
        accepts = "yes" if rnd.random() < 0.4 else "no"
        cells = [email, first.title(), last.title(), tel, city, zip_, accepts]
        out.write(",".join(f'"{c}"' if "," in c or '"' in c else c for c in cells) + "\n")
    return out.getvalue().encode()


# --------------------------------------------------------------------------- measures


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc), 0.0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def copy_baseline(url: str, data: bytes) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(libpq(url)) as conn:
        conn.execute(PLAIN_TABLE)
        conn.commit()
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        cpu0, srv0 = time.process_time(), _cpu_seconds(pid)
        t = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY bench_copy (email, first_name, last_name, phone, city, zip, accepts)"
                " FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy,
        ):
            view = memoryview(data)
            for off in range(0, len(data), 1 << 20):
                copy.write(view[off : off + (1 << 20)])
        conn.commit()
        seconds = time.perf_counter() - t
        rows = conn.execute("SELECT count(*) FROM bench_copy").fetchone()[0]
        return {
            "rows": rows,
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds),
            "client_cpu_s": round(time.process_time() - cpu0, 2),
            "server_cpu_s": round(_cpu_seconds(pid) - srv0, 2),
        }


class BatchTimer:
    """Wraps ``ingest_parsed`` as the import service sees it: rows and seconds of every call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[int, float, float, float]] = []  # rows, start, end, ingest s

    def __call__(self, session: Any, calls: list[Any], **kwargs: Any) -> Any:
        t = time.perf_counter()
        out = self.inner(session, calls, **kwargs)
        end = time.perf_counter()
        self.calls.append((len(calls), t, end, end - t))
        return out


def window_rates(timer: BatchTimer, started: float, share: float) -> dict[str, Any]:
    """Rates over the first and last ``share`` of the rows.

    ``cycle``: rows / wall time from the end of the previous batch to the end of the window's
    last batch (everything the service does per batch: mapping, ingest, bookkeeping);
    ``ingest``: rows / the seconds spent inside ``ingest`` only.
    """
    calls = timer.calls
    total = sum(c[0] for c in calls)
    want = max(1, round(total * share))

    def rate(chosen: list[int]) -> dict[str, Any]:
        rows = sum(calls[i][0] for i in chosen)
        first = chosen[0]
        begin = calls[first - 1][2] if first > 0 else calls[first][1]
        wall = calls[chosen[-1]][2] - begin
        inside = sum(calls[i][3] for i in chosen)
        return {
            "rows": rows,
            "batches": len(chosen),
            "cycle_rows_per_s": round(rows / wall),
            "ingest_rows_per_s": round(rows / inside),
            "ms_per_batch": round(1000 * wall / len(chosen), 1),
        }

    head, acc = [], 0
    for i, c in enumerate(calls):
        if acc >= want:
            break
        head.append(i)
        acc += c[0]
    tail, acc = [], 0
    for i in range(len(calls) - 1, -1, -1):
        if acc >= want:
            break
        tail.insert(0, i)
        acc += calls[i][0]
    return {
        "before_first_batch_s": round(calls[0][1] - started, 2),
        "start": rate(head),
        "end": rate(tail),
        "ingest_total_s": round(sum(c[3] for c in calls), 2),
    }


def run_import(runtime: Any, data: bytes, name: str, now: datetime) -> Any:
    from lifecycle.imports.service import ImportOptions, run

    with runtime.session() as session:
        report = run(
            session,
            data,
            filename=name,
            options=ImportOptions(),
            ingest_options=runtime.ingest_options,
            now=now,
            # As `lifecycle import` and the worker do: each batch lands on its own, so an
            # interrupted import resumes. The jobs each commit sends (segment re-checks)
            # go nowhere here: on a deployment a worker elsewhere runs them.
            on_batch=lambda _: session.commit(),
        )
        session.commit()
    return report


def import_measure(runtime: Any, data: bytes, now: datetime) -> dict[str, Any]:
    from sqlalchemy import text

    import lifecycle.imports.service as service

    with runtime.engine.connect() as conn:
        # The pool hands this connection back to the session: its backend's CPU is measured.
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    timer = BatchTimer(service.ingest_parsed)
    service.ingest_parsed = timer
    try:
        gc.collect()
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0, srv0 = time.process_time(), _cpu_seconds(pid)
        t = time.perf_counter()
        report = run_import(runtime, data, "customers.csv", now)
        seconds = time.perf_counter() - t
        cpu, srv = time.process_time() - cpu0, _cpu_seconds(pid) - srv0
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        workers_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    finally:
        service.ingest_parsed = timer.inner
    rows = report.counts["read"]
    with runtime.engine.connect() as conn:
        profiles = conn.execute(text("SELECT count(*) FROM profiles")).scalar_one()
        identities = conn.execute(text("SELECT count(*) FROM identities")).scalar_one()
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "client_cpu_s": round(cpu, 2),
        "workers_cpu_s": round(workers_cpu, 2),  # the processes preparing rows (ended)
        "server_cpu_s": round(srv, 2),
        "counts": report.counts,
        "status": report.status,
        "rejections_sample": report.rejections[:3],
        "profiles": profiles,
        "identities": identities,
        **window_rates(timer, t, WINDOW),
    }


def profile_batch(runtime: Any, args: argparse.Namespace, now: datetime, top: int = 8) -> str:
    """cProfile of one 1000-row file (new people) imported into the now-full database."""
    data = generate(1000, args.seed, start=args.rows + 10_000_000)
    profiler = cProfile.Profile()
    profiler.enable()
    run_import(runtime, data, "profile.csv", now)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top + 12)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=100_000, help="customers in the file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile step")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="an admin URL (SQLAlchemy form)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, str(ROOT / "src"))  # when run without installing the package

    from lifecycle import migrate
    from lifecycle.config import Settings
    from lifecycle.runtime import build_runtime

    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    t = time.perf_counter()
    data = generate(args.rows, args.seed)
    generate_s = time.perf_counter() - t
    print(
        f"== {args.rows:,} rows, {len(data) / 1e6:.1f} MB generated in {generate_s:.1f}s; "
        f"RSS {_rss_mb()} MB",
        flush=True,
    )
    profile_text = ""
    with scratch_database(args.pg_url) as url:
        runtime = build_runtime(Settings(database_url=url, outbox_path=os.devnull))
        try:
            migrate.upgrade(runtime.engine)
            copy = copy_baseline(url, data)
            print(
                f"   copy: {copy['rows']:,} rows in {copy['seconds']:.2f}s "
                f"({copy['rows_per_s']:,} rows/s); importing ...",
                flush=True,
            )
            rss_before_import = _rss_mb()
            imp = import_measure(runtime, data, started_at)
            imp["max_rss_mb_before"] = rss_before_import
            imp["max_rss_mb_after"] = _rss_mb()
            print(
                f"   import: {imp['rows']:,} rows in {imp['seconds']:.1f}s "
                f"({imp['rows_per_s']:,} rows/s), status {imp['status']}, {imp['counts']}",
                flush=True,
            )
            if not args.no_profile:
                profile_text = profile_batch(runtime, args, started_at)
        finally:
            runtime.engine.dispose()

    ratio = imp["rows_per_s"] / copy["rows_per_s"]
    start, end = imp["start"], imp["end"]
    linear_1m = imp["seconds"] * 1_000_000 / imp["rows"]
    end_1m = imp["before_first_batch_s"] * 1_000_000 / imp["rows"] + (
        1_000_000 / end["cycle_rows_per_s"]
    )
    summary = {
        "started_at": started_at.isoformat(),
        "arguments": vars(args),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
        "file_mb": round(len(data) / 1e6, 1),
        "generate_s": round(generate_s, 2),
        "copy": copy,
        "import": imp,
        "ratio_import_to_copy": round(ratio, 4),
        "end_to_start_rate": round(end["cycle_rows_per_s"] / start["cycle_rows_per_s"], 3),
        "projection_1m_s": {"linear": round(linear_1m), "at_end_rate": round(end_1m)},
        "max_rss_mb": _rss_mb(),
        "profile": profile_text,
    }
    print("\nmeasure        rows    seconds     rows/s   client cpu  server cpu")
    for name, r in (("copy", copy), ("import", imp)):
        print(
            f"{name:<8} {r['rows']:>10,} {r['seconds']:>10.2f} {r['rows_per_s']:>10,} "
            f"{r['client_cpu_s']:>11.1f} {r['server_cpu_s']:>11.1f}"
        )
    print(f"\nimport / COPY: {ratio:.2%} (COPY is {1 / ratio:.0f}x faster)")
    print(
        f"import: worker processes {imp['workers_cpu_s']:.1f} s CPU (main process and PostgreSQL"
        " above)"
    )
    print(
        "before the first batch is stored (start the worker, read and prepare one batch): "
        f"{imp['before_first_batch_s']:.1f}s"
    )
    for label, w in (("start", start), ("end", end)):
        print(
            f"rate at the {label:<5} (first/last {WINDOW:.0%}, {w['rows']:,} rows): "
            f"{w['cycle_rows_per_s']:,} rows/s per batch cycle, "
            f"{w['ingest_rows_per_s']:,} rows/s inside ingest, {w['ms_per_batch']} ms/batch"
        )
    verdict = "holds" if end["cycle_rows_per_s"] >= 0.9 * start["cycle_rows_per_s"] else "FALLS"
    print(f"end / start rate: {summary['end_to_start_rate']:.2f} ({verdict})")
    if imp["rows"] >= 1_000_000:
        line = f"1M measured: {imp['seconds'] * 1_000_000 / imp['rows']:.0f} s"
        measured_1m = imp["seconds"] * 1_000_000 / imp["rows"]
    else:
        line = (
            f"1M projection: {linear_1m:.0f} s linear from {imp['rows']:,}, "
            f"{end_1m:.0f} s at the end rate"
        )
        measured_1m = max(linear_1m, end_1m)
    verdict = (
        "met"
        if measured_1m < TARGET_1M_S
        else "only the ceiling"
        if measured_1m < CEILING_1M_S
        else "MISSED"
    )
    print(f"{line}; target {TARGET_1M_S:.0f} s (ceiling {CEILING_1M_S:.0f} s): {verdict}")
    print(f"peak RSS: {summary['max_rss_mb']} MB (file {summary['file_mb']} MB)")
    if profile_text:
        print("\ncProfile, one 1000-row import into the full database:")
        print(profile_text)
    write_results("import_csv", summary, started_at)
    return 0


if __name__ == "__main__":
    sys.exit(main())
