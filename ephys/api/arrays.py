"""Serving stored ``.npy`` arrays (spike times, sites, depths, waveforms) without re-encoding them.

The ingest stores each unit's arrays as ``.npy`` bytes. Over the API they are sent as they are:

* one unit as ``application/x-npy`` — the stored bytes, untouched;
* many units at once as an ``np.savez``-compatible zip (``ZIP_STORED``): the stored payloads are
  concatenated behind one new ``.npy`` header, never decoded into Python objects;
* JSON — decoded with ``np.frombuffer`` (no copy) and listed.

On PostgreSQL the rows are read with ``COPY (query) TO STDOUT (FORMAT BINARY)``: bytea arrives
as raw bytes, row by row (Django's text protocol hex-encodes bytea on the server and decodes it
again in Python, about three times slower; a binary-format SELECT would buffer the whole result
in libpq first, one copy more). The query is the ORM's own and is logged like any other when
queries are being recorded (tests, ``DEBUG``). Elsewhere (the embedded SQLite default) the ORM
reads the same columns.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.db.models import QuerySet

from mapsite.core.npy import npy_bytes, npy_header

__all__ = [
    "ArrayRow",
    "NpyPayload",
    "concat_npy",
    "fetch_arrays",
    "npy_header",
    "npz_bytes",
    "parse_npy",
]

NPY_MAGIC = b"\x93NUMPY"
# A fixed timestamp keeps the zip of the same data byte-identical (cacheable, comparable).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class StoredArrayError(ValueError):
    """A stored array is not a plain 1-D numeric ``.npy`` (it would not be served as such)."""


@dataclass(frozen=True, slots=True)
class NpyPayload:
    """A parsed ``.npy``: its element type, element count and raw C-order data (a view)."""

    dtype: np.dtype
    count: int
    data: memoryview

    def array(self) -> np.ndarray:
        """The array itself, read-only, sharing the stored bytes (no copy)."""
        return np.frombuffer(self.data, dtype=self.dtype, count=self.count)


def parse_npy(blob: bytes | memoryview) -> NpyPayload:
    """Header of stored ``.npy`` bytes, checked: 1-D (or one non-trivial axis), no objects."""
    view = memoryview(blob)
    if bytes(view[:6]) != NPY_MAGIC or len(view) < 10:
        raise StoredArrayError("not .npy data")
    major = view[6]
    if major == 1:
        header_end = 10 + int.from_bytes(view[8:10], "little")
    elif major == 2:
        header_end = 12 + int.from_bytes(view[8:12], "little")
    else:
        raise StoredArrayError(f"unsupported .npy version {major}")
    fp = io.BytesIO(view[:header_end])
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise StoredArrayError(str(exc)) from exc
    if dtype.hasobject:
        raise StoredArrayError("object arrays are never served")
    if fortran_order and sum(1 for n in shape if n != 1) > 1:
        raise StoredArrayError("Fortran-ordered matrices are not served")
    count = math.prod(shape)
    data = view[header_end:]
    if len(data) != count * dtype.itemsize:
        raise StoredArrayError(
            f".npy data holds {len(data)} bytes, the header announces {count * dtype.itemsize}"
        )
    return NpyPayload(dtype, count, data)


def concat_npy(payloads: Sequence[NpyPayload], empty_dtype: np.dtype) -> list[bytes | memoryview]:
    """One ``.npy`` holding the payloads end to end: a new header, then the stored bytes.

    All payloads must share one dtype (the ingest writes one per column); if they do not, the
    odd ones are converted to the most common one rather than refused.
    """
    if not payloads:
        return [npy_header(empty_dtype, 0)]
    dtypes = [p.dtype for p in payloads]
    dtype = max(set(dtypes), key=dtypes.count)
    parts: list[bytes | memoryview] = [npy_header(dtype, sum(p.count for p in payloads))]
    for p in payloads:
        parts.append(p.data if p.dtype == dtype else p.array().astype(dtype).tobytes())
    return parts


def npz_bytes(members: Iterable[tuple[str, Sequence[bytes | memoryview]]]) -> bytes:
    """An ``np.load``-able zip (stored, not compressed) of ``.npy`` members given as parts."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, parts in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = sum(len(memoryview(p)) for p in parts)  # decides zip64 up front
            with zf.open(info, "w") as member:
                for part in parts:
                    member.write(part)
    return out.getvalue()


def array_npy(array: np.ndarray) -> bytes:
    """A small computed array (ids, offsets) as ``.npy`` bytes."""
    return npy_bytes(array)


# --- Reading the stored bytes ------------------------------------------------------------------


COPY_COLUMNS = "q.c0::int8, q.c1::int8, q.c2::int8, q.c3::bytea"


@dataclass(frozen=True, slots=True)
class ArrayRow:
    """One row read: the row's key, the two integers asked for beside it, the stored bytes."""

    pk: int
    a: int | None
    b: int | None
    blob: bytes


def fetch_arrays(queryset: QuerySet, column: str, extra: tuple[str, str]) -> list[ArrayRow]:
    """``(pk, extra[0], extra[1], column)`` of every row of ``queryset``, in one query.

    ``column`` and ``extra`` are ORM paths chosen by the code (never by the client); the rows
    come in the queryset's order. ``column`` rows that are null are left out.
    """
    qs = queryset.filter(**{f"{column}__isnull": False}).values_list("pk", *extra, column)
    if connection.vendor != "postgresql":
        return [ArrayRow(pk, a, b, bytes(blob)) for pk, a, b, blob in qs]
    sql, params = qs.query.sql_with_params()  # the ORM's SQL; values stay parameters
    # Nothing from the client is formatted into the statement: only the ORM's own SQL.
    copy_sql = f"COPY (SELECT {COPY_COLUMNS} FROM ({sql}) AS q (c0, c1, c2, c3)) TO STDOUT"  # noqa: S608
    copy_sql += " (FORMAT BINARY)"
    with connection.cursor() as cursor, connection.wrap_database_errors:
        log = getattr(cursor, "debug_sql", None)  # present when queries are being logged
        # Django's cursor wraps a psycopg cursor, whose COPY streams the rows as they come.
        with (
            log(copy_sql, params) if log else nullcontext(),
            cursor.cursor.copy(copy_sql, params) as copy,
        ):
            copy.set_types(["int8", "int8", "int8", "bytea"])
            return [ArrayRow(*row) for row in copy.rows()]
