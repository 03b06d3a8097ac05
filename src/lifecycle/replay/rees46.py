"""The REES46 e-commerce event format (Kaggle "eCommerce behavior data") as Segment calls.

Columns: event_time, event_type, product_id, category_id, category_code, brand, price,
user_id, user_session. ``view`` -> Product Viewed, ``cart`` -> Product Added,
``purchase`` -> Order Completed (Segment's e-commerce names). The data has no
contact details: each user gets ``user<id>@example.com`` and a 555 number, both
derived from the user id alone so a replay is repeatable. Pure: no database.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from lifecycle.errors import Invalid

COLUMNS = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
]
EVENT_NAMES = {"view": "Product Viewed", "cart": "Product Added", "purchase": "Order Completed"}
AREA_CODES = ("212", "312", "415", "617", "718", "202", "305", "404", "503", "713")


@dataclass(frozen=True)
class Row:
    line: int
    at: datetime
    calls: list[dict[str, Any]]  # an identify the first time a user is seen, then the track


def contact(user_id: str, ordinal: int) -> tuple[str, str]:
    """The n-th user of a file gets the n-th 555 number: unique for 100,000 users, and
    the same on every replay of the file."""
    area = AREA_CODES[(ordinal // 10000) % len(AREA_CODES)]
    return f"user{user_id}@example.com", f"+1{area}555{ordinal % 10000:04d}"


def parse_time(text: str, line: int) -> datetime:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    except ValueError:
        raise Invalid(
            f"event_time {text!r} is not 'YYYY-MM-DD HH:MM:SS UTC'", field=f"line {line}"
        ) from None


def to_calls(record: dict[str, str], line: int, raw: str, ordinal: int | None) -> Row:
    """One CSV record -> the Segment calls it stands for (messageIds are stable);
    ``ordinal`` is set the first time a user appears (an identify comes first)."""
    name = EVENT_NAMES.get(record["event_type"])
    if name is None:
        raise Invalid(
            f"event_type {record['event_type']!r} is not view, cart or purchase",
            field=f"line {line}",
        )
    user_id = record["user_id"].strip()
    if not user_id:
        raise Invalid("user_id is empty", field=f"line {line}")
    at = parse_time(record["event_time"], line)
    try:
        price = float(record["price"]) if record["price"] else None
    except ValueError:
        raise Invalid(f"price {record['price']!r} is not a number", field=f"line {line}") from None
    product = {
        "product_id": record["product_id"],
        "category_id": record["category_id"],  # 19 digits: kept as text, never rounded
        "category": record["category_code"] or None,
        "brand": record["brand"] or None,
        "price": price,
    }
    digest = hashlib.sha1(raw.encode()).hexdigest()[:16]
    stamp = at.isoformat().replace("+00:00", "Z")
    properties: dict[str, Any] = {**product, "session_id": record["user_session"] or None}
    if name == "Order Completed":
        properties.update(
            order_id=f"{record['user_session']}-{record['product_id']}-{line}",
            total=price,
            currency="USD",
            products=[product],
        )
    calls: list[dict[str, Any]] = []
    if ordinal is not None:
        email, phone = contact(user_id, ordinal)
        calls.append(
            {
                "type": "identify",
                "userId": user_id,
                "traits": {"email": email, "phone": phone},
                "timestamp": stamp,
                "messageId": f"rees46-identify-{user_id}",
            }
        )
    calls.append(
        {
            "type": "track",
            "userId": user_id,
            "event": name,
            "properties": properties,
            "timestamp": stamp,
            "messageId": f"rees46-{line}-{digest}",
        }
    )
    return Row(line=line, at=at, calls=calls)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    text: str


def read(handle: TextIO) -> Iterator[Row | Rejected]:
    """Rows of a REES46 file in file order. A malformed row is yielded as
    :class:`Rejected` with its line number and reason; a wrong header raises."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None or [h.strip().lstrip("\ufeff") for h in header] != COLUMNS:
        raise Invalid(f"the header must be {','.join(COLUMNS)}", field="line 1")
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not values:
            continue
        text = ",".join(values)
        if len(values) != len(COLUMNS):
            yield Rejected(line, f"expected {len(COLUMNS)} columns, found {len(values)}", text)
            continue
        record = dict(zip(COLUMNS, values, strict=True))
        user = record["user_id"].strip()
        try:
            row = to_calls(record, line, text, None if user in seen else len(seen))
        except Invalid as err:
            yield Rejected(line, err.message, text)
            continue
        seen.setdefault(user, len(seen))
        yield row


def generate(path: Path, *, users: int = 600, events: int = 4000, seed: int = 46) -> Path:
    """Write a synthetic file in the REES46 format: browsing, carts and some orders."""
    rng = random.Random(seed)
    start = datetime(2019, 10, 1, tzinfo=UTC)
    brands = ["samsung", "apple", "xiaomi", "lenovo", "bosch", "nike", "", "lg", "sony"]
    categories = [
        "electronics.smartphone",
        "computers.notebook",
        "apparel.shoes",
        "appliances.kitchen.kettle",
        "",
    ]
    user_ids = [str(500_000_000 + rng.randrange(10_000_000)) for _ in range(users)]
    carts: dict[str, tuple[str, str, str, float, str]] = {}
    rows = []
    for i in range(events):
        at = start + timedelta(seconds=i * 30 * 60 // events)
        user = rng.choice(user_ids)
        session = hashlib.md5(f"{seed}-{user}".encode()).hexdigest()
        roll = rng.random()
        if user in carts and roll < 0.35:
            product, category_id, category, price, brand = carts.pop(user)
            kind = "purchase"
        else:
            product = str(rng.randrange(1_000_000, 60_000_000))
            category_id = str(2_053_013_552_000_000_000 + rng.randrange(10**9))
            category = rng.choice(categories)
            price = round(rng.uniform(5, 900), 2)
            brand = rng.choice(brands)
            kind = "cart" if roll > 0.85 else "view"
            if kind == "cart":
                carts[user] = (product, category_id, category, price, brand)
        rows.append(
            [
                at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                kind,
                product,
                category_id,
                category,
                brand,
                f"{price:.2f}",
                user,
                f"{session[:8]}-{session[8:12]}-{session[12:16]}-{session[16:20]}-{session[20:]}",
            ]
        )
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path
