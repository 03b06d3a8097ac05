#!/usr/bin/env python
"""Duplicate-finder benchmark on PostgreSQL: a full ``lifecycle.profiles.duplicates.scan``
over N generated profiles with a known share of planted duplicates.

Per size: a scratch database (created, migrated with ``lifecycle.migrate.upgrade``,
dropped at the end, even on an error or Ctrl-C); N profiles written set-wise with COPY
(realistic names, cities, postal codes, streets, phones and emails, half in snake_case
attributes and half as Segment traits with a nested ``address``), of which
``--dup-share`` are planted duplicates of another profile; then one timed full scan, as
``lifecycle duplicates scan`` runs it (one unit of work, committed); then precision and
recall of the stored pairs against the planted ones. Two or more sizes also give the
scaling exponent, and every run prints a projection for 1M profiles.
Results: bench/results/duplicates-<time>.json. See bench/README.md.

    python bench/duplicates.py [--sizes 100000[,300000,...]] [--dup-share 0.05]
                               [--seed 7] [--pg-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import resource
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from _common import libpq, scratch_database, write_results  # bench/ is on sys.path when run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = os.environ.get(
    "LIFECYCLE_BENCH_PG",
    os.environ.get("LIFECYCLE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)
TARGET_SECONDS = 60.0  # for 100k profiles

# US-like frequencies: the earlier a name, the more common (Zipf weights).
FIRST_NAMES = """james mary robert patricia john jennifer michael linda david elizabeth william
barbara richard susan joseph jessica thomas sarah christopher karen charles lisa daniel nancy
matthew betty anthony sandra mark margaret donald ashley steven kimberly andrew emily paul donna
joshua michelle kenneth carol kevin amanda brian melissa george deborah timothy stephanie ronald
dorothy jason rebecca edward sharon jeffrey laura ryan cynthia jacob amy gary kathleen nicholas
angela eric shirley jonathan brenda stephen emma larry anna justin pamela scott nicole brandon
samantha benjamin katherine samuel christine gregory helen alexander debra frank rachel patrick
carolyn raymond janet jack maria dennis catherine jerry heather tyler diane aaron olivia jose
julie adam joyce nathan victoria henry ruth zachary virginia douglas lauren peter kelly kyle
christina noah joan ethan evelyn jeremy judith walter andrea christian hannah keith megan roger
cheryl terry jacqueline austin martha sean madison gerald teresa carl gloria harold sara dylan
janice arthur ann lawrence kathryn jordan abigail jesse sophia bryan frances billy jean bruce
alice gabriel judy joe isabella logan julia alan grace juan amber albert denise willie danielle
elijah marilyn wayne beverly randy charlotte vincent natalie mason theresa roy diana ralph
brittany bobby doris russell kayla bradley alexis philip lori eugene marie""".split()  # noqa: SIM905
LAST_NAMES = """smith johnson williams brown jones garcia miller davis rodriguez martinez
hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson
white harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres
nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts gomez
phillips evans turner diaz parker cruz edwards collins reyes stewart morris morales murphy cook
rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos kim cox ward
richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes price alvarez
castillo sanders patel myers long ross foster jimenez powell jenkins perry russell sullivan bell
coleman butler henderson barnes gonzales fisher vasquez simmons romero jordan patterson
alexander hamilton graham reynolds griffin wallace moreno west cole hayes bryant herrera gibson
ellis tran medina aguilar stevens murray ford castro marshall owens harrison fernandez mcdonald
woods washington kennedy wells vargas henry chen freeman webb tucker guzman burns crawford olson
simpson porter hunter gordon mendez silva shaw snyder mason dixon munoz hunt hicks holmes palmer
wagner black robertson boyd rose stone salazar fox warren mills meyer rice schmidt garza daniels
ferguson nichols stephens soto weaver ryan gardner payne grant dunn kelley spencer hawkins
arnold pierce vazquez hansen peters santos hart bradley knight elliott cunningham duncan
armstrong hudson carroll lane riley andrews alvarado ray delgado berry perkins hoffman johnston
matthews pena richards contreras willis carpenter lawrence sandoval guerrero george chapman rios
estrada ortega watkins greene nunez wheeler valdez harper burke larson santiago maldonado morrison
franklin carlson austin dominguez carr lawson jacobs obrien lynch singh vega bishop montgomery
oliver jensen harvey williamson gilbert dean sims espinoza howell li wong reid hanson le mccoy
garrett burton fuller wang weber welch rojas lucas marquez fields park yang little banks padilla
day walsh bowman schultz luna fowler mejia davidson acosta brewer may holland juarez newman pearson
curtis cortez douglas schneider joseph barrett navarro figueroa keller avila wade molina stanley
hopkins campos barnett bates chambers caldwell beck lambert miranda byrd craig ayala lowe frazier
powers neal leonard gregory carrillo sutton fleming rhodes shelton schwartz norris jennings watts
duran walters cohen mcdaniel moran parks steele vaughn becker holt deleon barker terry hale leon
hail benson haynes horton miles lyons pham graves bush thornton wolfe warner cabrera mckinney mann
zimmerman dawson lara fletcher page mccarthy love robles cervantes solis erickson reeves chang
klein salinas fuentes baldwin daniel simon velasquez hardy higgins aguirre lin cummings chandler
sharp barber bowen ochoa dennis robbins liu ramsey francis griffith paul blair oconnor cardenas
pacheco cross calderon quinn moss swanson chan rivas khan rodgers serrano fitzgerald rosales
stevenson christensen manning gill curry mclaughlin harmon mcgee gross doyle garner newton burgess
reese walton blake trujillo adkins brady goodman roman webster goodwin fischer huang potter
delacruz montoya todd wu hines mullins castaneda malone cannon tate mack sherman hubbard hodges
zhang guerra wolf valencia saunders franco rowe gallagher farmer hammond hampton townsend ingram
wise gallegos clarke barton schroeder maxwell waters logan camacho strickland norman person
colon parsons frank harrington glover osborne buchanan casey floyd patton ibarra ball tyler suarez
bowers orozco salas cobb gibbs andrade bauer conner moody escobar mcguire lloyd mueller hartman
french kramer mcbride pope lindsey velazquez norton mccormick sparks flynn yates hogan marsh
macias villanueva zamora pratt stokes owen ballard lang brock villarreal charles drake barrera
cain patrick pineda burnett mercado santana shepherd bautista ali shaffer lamb trevino mckenzie
hess beil olsen cochran morton nash wilkins petersen briggs shah roth nicholson holloway lozano
flowers rangel hoover short arias mora valenzuela bryan meyers weiss underwood bass greer summers
houston carson morrow clayton whitaker decker yoder collier zuniga carey wilcox melendez poole
roberson larsen conley davenport copeland massey lam huff rocha cameron jefferson hood monroe
anthony pittman huynh randall singleton kirk combs mathis christian skinner bradford richard
galvan wall boone kirby wilkinson bridges bruce atkinson velez meza roy vincent york hodge villa
abbott allison tapia gates chase sosa sweeney farrell wyatt dalton horn barron phelps yu dickerson
heath foley atkins mathews bonilla acevedo benitez zavala hensley glenn cisneros harrell shields
rubio huffman choi boyer garrison arroyo bond kane hancock callahan dillon cline wiggins grimes
arellano melton oneill savage ho beltran pitts parrish ponce rich booth koch golden ware brennan
mcdowell marks cantu humphrey baxter sawyer clay tanner hutchinson kaur berg wiley gilmore russo
villegas hobbs keith wilkerson ahmed beard mcclain montes mata rosario vang walter henson oneal
mosley mcclure beasley stephenson snow huerta preston vance barry johns eaton blackwell dyer
prince macdonald solomon guevara stafford english hurst woodard cortes shannon kemp nolan mccullough
merritt murillo moon salgado strong kline cordova barajas roach rosas winters jacobson lester
knox bullock kerr leach meadows orr davila whitehead pruitt kent conway mckee barr david dejesus
marin berger mcintyre blankenship gaines palacios cuevas bartlett durham dorsey mccall odonnell
stein browning stout lowery sloan mclean hendricks calhoun sexton chung gentry hull duarte ellison
nielsen gillespie buck middleton sellers leblanc esparza hardin bradshaw mcintosh howe livingston
frost glass morse knapp herman stark bravo noble spears weeks""".split()  # noqa: SIM905
CITIES = [  # (city, state, share of profiles); each gets postal codes in proportion
    ("New York", "NY", 8.4),
    ("Los Angeles", "CA", 3.9),
    ("Chicago", "IL", 2.7),
    ("Houston", "TX", 2.3),
    ("Phoenix", "AZ", 1.6),
    ("Philadelphia", "PA", 1.6),
    ("San Antonio", "TX", 1.5),
    ("San Diego", "CA", 1.4),
    ("Dallas", "TX", 1.3),
    ("Austin", "TX", 1.0),
    ("Jacksonville", "FL", 0.95),
    ("San Jose", "CA", 0.97),
    ("Fort Worth", "TX", 0.92),
    ("Columbus", "OH", 0.9),
    ("Charlotte", "NC", 0.88),
    ("Indianapolis", "IN", 0.88),
    ("San Francisco", "CA", 0.87),
    ("Seattle", "WA", 0.74),
    ("Denver", "CO", 0.71),
    ("Washington", "DC", 0.69),
    ("Boston", "MA", 0.67),
    ("El Paso", "TX", 0.68),
    ("Nashville", "TN", 0.68),
    ("Oklahoma City", "OK", 0.68),
    ("Las Vegas", "NV", 0.64),
    ("Detroit", "MI", 0.63),
    ("Portland", "OR", 0.65),
    ("Memphis", "TN", 0.63),
    ("Louisville", "KY", 0.62),
    ("Milwaukee", "WI", 0.57),
    ("Baltimore", "MD", 0.58),
    ("Albuquerque", "NM", 0.56),
    ("Tucson", "AZ", 0.54),
    ("Fresno", "CA", 0.54),
    ("Sacramento", "CA", 0.52),
    ("Mesa", "AZ", 0.5),
    ("Kansas City", "MO", 0.5),
    ("Atlanta", "GA", 0.5),
    ("Omaha", "NE", 0.48),
    ("Colorado Springs", "CO", 0.48),
    ("Raleigh", "NC", 0.47),
    ("Miami", "FL", 0.44),
    ("Minneapolis", "MN", 0.43),
    ("Tulsa", "OK", 0.41),
    ("Cleveland", "OH", 0.37),
    ("Wichita", "KS", 0.39),
    ("Arlington", "TX", 0.39),
    ("New Orleans", "LA", 0.38),
    ("Tampa", "FL", 0.38),
    ("Honolulu", "HI", 0.35),
]
ZIP_PER_SHARE = 40  # postal codes per unit of share: about 2,000 in all
STREETS = """main oak pine maple cedar elm washington lake hill park view sunset lincoln
jackson church highland mill river spring ridge meadow forest franklin willow walnut center
north south chestnut union adams jefferson madison cherry dogwood birch holly magnolia laurel
valley broad market water prospect academy summit front""".split()  # noqa: SIM905
STREET_KINDS = [
    ("Street", "St"),
    ("Avenue", "Ave"),
    ("Road", "Rd"),
    ("Drive", "Dr"),
    ("Lane", "Ln"),
]
MISSING_STREET, MISSING_POSTAL = 0.25, 0.10
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com", "example.net"]
# Planted duplicate kinds and their shares: how a second profile of one person looks.
KINDS = {
    "email-attr": 0.15,  # the same email (other case/spaces) as an attribute; another user id
    "phone-attr": 0.10,  # the same phone, formatted otherwise, as an attribute; other email
    "typo-address": 0.35,  # a typo or case change in the name; same postal code and street
    "typo-phone": 0.25,  # a typo in the name; moved (other city); the same phone number
    "swapped": 0.15,  # first and last name swapped in one "name" attribute; same city, street
}


def _zipf(n: int, s: float = 0.9) -> list[float]:
    return [1 / (i + 1) ** s for i in range(n)]


@dataclass
class Person:
    first: str
    last: str
    city: str
    state: str
    postal: str
    street: str  # "12 Main Street"
    phone: str | None  # E.164
    email: str


@dataclass
class Generated:
    profiles: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    identities: list[tuple[str, str, str, int]] = field(
        default_factory=list
    )  # kind, value, display, pid
    planted: dict[tuple[int, int], str] = field(default_factory=dict)  # pair -> kind


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.first_w = list(accumulate(_zipf(len(FIRST_NAMES), 0.7)))
        self.last_w = list(accumulate(_zipf(len(LAST_NAMES), 0.9)))
        self.places: list[tuple[str, str, str]] = []
        weights: list[float] = []
        base = 10000
        for city, state, share in CITIES:
            count = max(2, round(share * ZIP_PER_SHARE))
            for k in range(count):
                self.places.append((city, state, f"{base + k:05d}"))
                weights.append(share / count)
            base += 1000
        self.place_w = list(accumulate(weights))
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()

    def person(self) -> Person:
        rng = self.rng
        first = rng.choices(FIRST_NAMES, cum_weights=self.first_w)[0]
        last = rng.choices(LAST_NAMES, cum_weights=self.last_w)[0]
        city, state, postal = rng.choices(self.places, cum_weights=self.place_w)[0]
        kind = rng.choice(STREET_KINDS)[0]
        street = f"{rng.randint(1, 9999)} {rng.choice(STREETS).title()} {kind}"
        phone = None
        if rng.random() < 0.75:
            while True:
                phone = (
                    f"+1{rng.randint(201, 989)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
                )
                if phone not in self.used_phones:
                    self.used_phones.add(phone)
                    break
        return Person(first, last, city, state, postal, street, phone, self.email(first, last))

    def email(self, first: str, last: str) -> str:
        rng = self.rng
        while True:
            style = rng.random()
            local = (
                f"{first}.{last}"
                if style < 0.3
                else f"{first[0]}{last}{rng.randint(1, 999)}"
                if style < 0.7
                else f"{first}{last[:3]}{rng.randint(10, 99999)}"
            )
            address = f"{local}@{rng.choice(DOMAINS)}"
            if address not in self.used_emails:
                self.used_emails.add(address)
                return address

    def typo(self, word: str) -> str:
        """One keyboard slip: a substitution, deletion, transposition or doubled letter."""
        rng = self.rng
        if len(word) < 3:
            return word + rng.choice("aeiou")
        i = rng.randrange(len(word))
        op = rng.random()
        if op < 0.3:
            return word[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + word[i + 1 :]
        if op < 0.55:
            return word[:i] + word[i + 1 :]
        if op < 0.8 and i < len(word) - 1:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return word[:i] + word[i] + word[i:]

    def casing(self, word: str) -> str:
        return self.rng.choice([word.title(), word.upper(), word.lower(), word.title()])

    @staticmethod
    def formatted(phone: str) -> str:
        d = phone[2:]
        return f"({d[:3]}) {d[3:6]}-{d[6:]}"

    def attributes(self, p: Person, *, segment: bool) -> dict[str, Any]:
        """As ingestion stores traits: snake_case, or Segment's camelCase + nested address."""
        if segment:
            attrs: dict[str, Any] = {
                "firstName": p.first.title(),
                "lastName": p.last.title(),
                "email": p.email,
                "address": {
                    "street": p.street,
                    "city": p.city,
                    "state": p.state,
                    "postalCode": p.postal,
                },
            }
        else:
            attrs = {
                "first_name": p.first.title(),
                "last_name": p.last.title(),
                "email": p.email,
                "address1": p.street,
                "city": p.city,
                "state": p.state,
                "postal_code": p.postal,
            }
        if p.phone:
            attrs["phone"] = p.phone
        # Real records are incomplete: a quarter lack the street, a tenth the postal code.
        place = attrs["address"] if segment else attrs
        if self.rng.random() < MISSING_STREET:
            place.pop("street" if segment else "address1")
        if self.rng.random() < MISSING_POSTAL:
            place.pop("postalCode" if segment else "postal_code")
        return attrs

    def generate(self, n: int, dup_share: float) -> Generated:
        rng = self.rng
        out = Generated()
        dups = int(n * dup_share)
        originals: list[tuple[int, Person]] = []
        for pid in range(1, n - dups + 1):
            p = self.person()
            attrs = self.attributes(p, segment=pid % 2 == 0)
            out.profiles.append((pid, attrs))
            out.identities.append(("email", p.email, p.email, pid))
            if p.phone:
                out.identities.append(("phone", p.phone, p.phone, pid))
            if rng.random() < 0.5:
                out.identities.append(("id", f"user-{pid}", f"user-{pid}", pid))
            originals.append((pid, p))
        kinds = list(KINDS)
        weights = list(KINDS.values())
        for pid in range(n - dups + 1, n + 1):
            orig_id, o = originals[rng.randrange(len(originals))]
            kind = rng.choices(kinds, weights)[0]
            if kind == "phone-attr" and not o.phone:
                kind = "typo-address"
            if kind == "typo-phone" and not o.phone:
                kind = "typo-address"
            d = Person(**vars(o))
            d.email = self.email(o.first, o.last)
            d.phone = None
            attrs: dict[str, Any]
            idents: list[tuple[str, str, str]] = []
            if kind == "email-attr":
                d.first, d.last = self.casing(o.first), self.casing(o.last)
                attrs = self.attributes(d, segment=rng.random() < 0.5)
                attrs["email"] = rng.choice([o.email.upper(), f" {o.email} ", o.email.title()])
                idents.append(("id", f"crm-{pid}", f"crm-{pid}"))
            elif kind == "phone-attr":
                attrs = self.attributes(d, segment=rng.random() < 0.5)
                attrs["phone"] = self.formatted(o.phone or "")
                idents.append(("email", d.email, d.email))
            elif kind == "typo-address":
                if rng.random() < 0.8:
                    if rng.random() < 0.5:
                        d.first = self.typo(o.first)
                    else:
                        d.last = self.typo(o.last)
                else:
                    d.first, d.last = self.casing(o.first), self.casing(o.last)
                number, rest = o.street.split(" ", 1)
                for full, short in STREET_KINDS:
                    rest = rest.replace(full, short) if rng.random() < 0.5 else rest
                d.street = f"{number} {rest}"
                attrs = self.attributes(d, segment=rng.random() < 0.5)
                idents.append(("email", d.email, d.email))
            elif kind == "typo-phone":
                if rng.random() < 0.5:
                    d.first = self.typo(o.first)
                else:
                    d.last = self.typo(o.last)
                mover = self.person()
                d.city, d.state, d.postal, d.street = (
                    mover.city,
                    mover.state,
                    mover.postal,
                    mover.street,
                )
                attrs = self.attributes(d, segment=rng.random() < 0.5)
                attrs["phone"] = rng.choice([self.formatted(o.phone or ""), (o.phone or "")[2:]])
                idents.append(("email", d.email, d.email))
            else:  # swapped
                attrs = {
                    "name": f"{o.last.title()} {o.first.title()}",
                    "email": d.email,
                    "city": o.city,
                    "postal_code": o.postal,
                    "address1": o.street,
                }
                idents.append(("email", d.email, d.email))
            out.profiles.append((pid, attrs))
            out.identities.extend((k, v, disp, pid) for k, v, disp in idents)
            out.planted[(orig_id, pid)] = kind
        return out


# --------------------------------------------------------------------------- database


def load(url: str, data: Generated, now: datetime) -> float:
    """COPY the generated profiles and identities; returns the seconds taken."""
    import psycopg

    started = time.perf_counter()
    created = now - timedelta(days=365)
    with psycopg.connect(libpq(url)) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY profiles (id, attributes, attribute_times, created_at, updated_at) FROM STDIN"
        ) as copy:
            for pid, attrs in data.profiles:
                at = created + timedelta(seconds=pid)
                copy.write_row((pid, json.dumps(attrs), "{}", at, at))
        with cur.copy(
            "COPY identities (kind, value, display, profile_id, source, first_seen, last_seen)"
            " FROM STDIN"
        ) as copy:
            for kind, value, display, pid in data.identities:
                copy.write_row((kind, value, display, pid, "bench", created, created))
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('profiles', 'id'), (SELECT max(id) FROM profiles))"
        )
        conn.commit()
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE profiles")
        conn.execute("VACUUM ANALYZE identities")
    return time.perf_counter() - started


# --------------------------------------------------------------------------- one size


def measure(args: argparse.Namespace, n: int) -> dict[str, Any]:
    from sqlalchemy import select

    from lifecycle import migrate
    from lifecycle.config import Settings
    from lifecycle.profiles import duplicates
    from lifecycle.profiles.models import DuplicateCandidate
    from lifecycle.runtime import build_runtime

    now = datetime.now(UTC)
    print(f"\n== {n:,} profiles: generating ...", flush=True)
    t = time.perf_counter()
    data = Generator(args.seed).generate(n, args.dup_share)
    generate_s = time.perf_counter() - t
    with scratch_database(args.pg_url) as url:
        runtime = build_runtime(Settings(database_url=url, outbox_path=os.devnull))
        try:
            migrate.upgrade(runtime.engine)
            load_s = load(url, data, now)
            print(
                f"   generated in {generate_s:.1f}s, COPY + ANALYZE in {load_s:.1f}s "
                f"({len(data.identities):,} identities, {len(data.planted):,} planted pairs);"
                " scanning ...",
                flush=True,
            )
            planted = data.planted
            del data
            gc.collect()
            cpu0 = time.process_time()
            t = time.perf_counter()
            with runtime.session() as session:
                report = duplicates.scan(session, now=now)
            scan_s = time.perf_counter() - t
            scan_cpu = time.process_time() - cpu0
            with runtime.session() as session:
                rows = session.execute(
                    select(
                        DuplicateCandidate.profile_a,
                        DuplicateCandidate.profile_b,
                        DuplicateCandidate.score,
                        DuplicateCandidate.evidence,
                    )
                ).all()
        finally:
            runtime.engine.dispose()
    found = {(a, b): (score, evidence) for a, b, score, evidence in rows}
    # One person may have several planted profiles: two of them are a true pair too.
    person_of: dict[int, int] = {}
    for orig, dup in planted:
        person_of[orig] = person_of[dup] = orig
    true_pairs = {p for p in found if person_of.get(p[0], -p[0]) == person_of.get(p[1], -p[1])}
    hits = [p for p in planted if p in found]
    false_pos = [p for p in found if p not in true_pairs]
    by_kind = Counter(planted.values())
    hit_kind = Counter(planted[p] for p in hits)
    exact = [p for p, (s, _) in found.items() if s >= 1.0]
    fuzzy = [p for p, (s, _) in found.items() if s < 1.0]
    result = {
        "profiles": n,
        "planted_pairs": len(planted),
        "generate_s": round(generate_s, 2),
        "load_s": round(load_s, 2),
        "scan_s": round(scan_s, 2),
        "scan_cpu_s": round(scan_cpu, 2),
        "phases_s": report.seconds,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "pairs_found": len(found),
        "exact_pairs": len(exact),
        "fuzzy_pairs": len(fuzzy),
        "comparisons": report.comparisons,
        "blocks": report.blocks,
        "oversized_blocks": report.oversized_total,
        "oversized_largest": report.oversized[:5],
        "precision": _share(list(true_pairs), list(found)),
        "recall": round(len(hits) / len(planted), 4) if planted else None,
        "precision_exact": _share([p for p in exact if p in true_pairs], exact),
        "precision_fuzzy": _share([p for p in fuzzy if p in true_pairs], fuzzy),
        "recall_by_kind": {k: round(hit_kind[k] / by_kind[k], 4) for k in sorted(by_kind)},
        "false_positives_sample": [
            {"pair": p, "score": found[p][0], "evidence": found[p][1]} for p in false_pos[:5]
        ],
        "missed_sample": [
            {"pair": p, "kind": planted[p]} for p in [p for p in planted if p not in found][:5]
        ],
    }
    print(
        f"   scan {scan_s:.1f}s (cpu {scan_cpu:.1f}s; {_phases(report.seconds)}), "
        f"{len(found):,} pairs ({len(exact):,} exact, {len(fuzzy):,} fuzzy), "
        f"{report.comparisons:,} comparisons in {report.blocks:,} blocks, "
        f"{report.oversized_total} oversized; precision {result['precision']}, "
        f"recall {result['recall']}; max RSS {result['max_rss_mb']} MB",
        flush=True,
    )
    print(f"   recall by kind: {result['recall_by_kind']}", flush=True)
    return result


def _share(part: list[Any], whole: list[Any]) -> float | None:
    return round(len(part) / len(whole), 4) if whole else None


def _phases(seconds: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in seconds.items() if k != "total")


def project(results: list[dict[str, Any]], target: int = 1_000_000) -> dict[str, Any]:
    """Linear from the largest size; and a power law t = c * n^k fitted on the two largest."""
    last = results[-1]
    out: dict[str, Any] = {
        "profiles": target,
        "linear_s": round(last["scan_s"] * target / last["profiles"], 1),
    }
    if len(results) >= 2:
        a, b = results[-2], results[-1]
        k = math.log(b["scan_s"] / a["scan_s"]) / math.log(b["profiles"] / a["profiles"])
        out["exponent"] = round(k, 3)
        out["power_law_s"] = round(b["scan_s"] * (target / b["profiles"]) ** k, 1)
        kc = math.log(b["comparisons"] / a["comparisons"]) / math.log(b["profiles"] / a["profiles"])
        out["comparisons_exponent"] = round(kc, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", default="100000", help="comma-separated profile counts")
    parser.add_argument("--dup-share", type=float, default=0.05, help="planted duplicates")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="an admin URL (SQLAlchemy form)")
    args = parser.parse_args(argv)
    # A TERM (or an INT while in the background) still drops the scratch database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, str(ROOT / "src"))  # when run without installing the package
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    results = [measure(args, n) for n in sizes]
    projection = project(results)
    summary = {
        "started_at": started_at.isoformat(),
        "arguments": vars(args),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
        "results": results,
        "projection_1m": projection,
    }
    print("\nprofiles    scan s   pairs   precision  recall  comparisons")
    for r in results:
        print(
            f"{r['profiles']:>9,}  {r['scan_s']:>7.1f}  {r['pairs_found']:>6,}  "
            f"{r['precision']:>9}  {r['recall']:>6}  {r['comparisons']:>11,}"
        )
    measured = [r for r in results if r["profiles"] == 1_000_000]
    if measured:
        line = f"1M measured: {measured[0]['scan_s']:.0f} s"
    else:
        line = (
            f"1M projection: {projection['linear_s']:.0f} s linear from {results[-1]['profiles']:,}"
        )
    if "power_law_s" in projection:
        line += (
            f"; {projection['power_law_s']:.0f} s on the fitted exponent "
            f"{projection['exponent']} (comparisons grow as n^{projection['comparisons_exponent']})"
        )
    print(line)
    hundred_k = [r for r in results if r["profiles"] == 100_000]
    if hundred_k:
        verdict = "met" if hundred_k[0]["scan_s"] < TARGET_SECONDS else "MISSED"
        print(f"target: 100k in under {TARGET_SECONDS:.0f} s: {verdict}")
    write_results("duplicates", summary, started_at)
    return 0


if __name__ == "__main__":
    sys.exit(main())
