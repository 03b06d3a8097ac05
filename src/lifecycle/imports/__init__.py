"""CSV import: the pure reading layer (bytes -> rows of text cells, or row errors)."""

from lifecycle.imports.reader import (
    AmbiguousEncoding,
    Column,
    Dialect,
    NotTextError,
    ReadResult,
    Row,
    RowError,
    StreamResult,
    detect,
    normalise_header,
    read,
    read_stream,
    recognise,
)
from lifecycle.imports.values import (
    DEFAULT_MARKERS,
    DateError,
    MonthDay,
    detect_date_order,
    is_missing,
    parse_date,
)

__all__ = [
    "DEFAULT_MARKERS",
    "AmbiguousEncoding",
    "Column",
    "DateError",
    "Dialect",
    "MonthDay",
    "NotTextError",
    "ReadResult",
    "Row",
    "RowError",
    "StreamResult",
    "detect",
    "detect_date_order",
    "is_missing",
    "normalise_header",
    "parse_date",
    "read",
    "read_stream",
    "recognise",
]
