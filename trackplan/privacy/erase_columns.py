"""Id columns of tabular files for ``trackplan erase``: CSV headers and parquet schemas.

Identity names match case-insensitively (``USER_ID`` as warehouses export them), at the
top level or one level down in a wrapper that is not a payload (``message.userId``).
Parquet columns are addressed by index, never by (possibly dotted or duplicated) name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "USER_KEYS",
    "ANON_KEYS",
    "USER_FOLDED",
    "ANON_FOLDED",
    "PAYLOADS",
    "id_leaf",
    "parquet_count",
    "parquet_write",
]

USER_KEYS = ("userId", "user_id")
ANON_KEYS = ("anonymousId", "anonymous_id")
#: The identity names, lower-cased: compare ``name.lower()`` with them.
USER_FOLDED = frozenset(k.lower() for k in USER_KEYS)
ANON_FOLDED = frozenset(k.lower() for k in ANON_KEYS)
#: Payload objects: an id inside them names someone else.
PAYLOADS = frozenset({"properties", "traits", "context", "integrations"})


def id_leaf(column: str) -> str:
    """``userid`` (folded) for ``userId``, ``USERID`` and a wrapper column ``message.userId``."""
    folded = column.lower()
    head, _, leaf = folded.rpartition(".")
    return leaf if head.split(".")[0] not in PAYLOADS else folded


# -- parquet ------------------------------------------------------------------------------
#: An id column: its name for messages and the field indices leading to it.
_Column = tuple[str, tuple[int, ...]]


def _parquet_id_columns(schema: Any) -> tuple[list[_Column], list[_Column]]:
    """Id columns (top level, or one level down in a non-payload struct), by index path.

    Raises:
        ValueError: an id column has a type that cannot hold an id (a struct, a list).
    """
    import pyarrow as pa

    users: list[_Column] = []
    anon: list[_Column] = []

    def add(name: str, leaf: str, typ: Any, where: tuple[int, ...]) -> bool:
        folded = leaf.lower()
        if folded not in USER_FOLDED and folded not in ANON_FOLDED:
            return False
        if not (
            pa.types.is_string(typ)
            or pa.types.is_large_string(typ)
            or pa.types.is_integer(typ)
            or pa.types.is_null(typ)
            or (pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type))
        ):
            raise ValueError(
                f"the id column {name!r} has type {typ}, which cannot hold an id; "
                "erase cannot check its rows"
            )
        (users if folded in USER_FOLDED else anon).append((name, where))
        return True

    for i, fld in enumerate(schema):
        if add(fld.name, fld.name, fld.type, (i,)):
            continue
        if pa.types.is_struct(fld.type) and fld.name.lower() not in PAYLOADS:
            for j in range(fld.type.num_fields):
                child = fld.type.field(j)
                add(f"{fld.name}.{child.name}", child.name, child.type, (i, j))
    return users, anon


def _parquet_mask(
    table: Any,
    users: list[_Column],
    anon: list[_Column],
    ids: tuple[frozenset[str], frozenset[str]],
    names: list[str],
) -> Any:
    """A boolean array: True for rows of a subject. ``names`` are the table's columns as
    read (``table`` may hold only the id columns' top-level fields, in that order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = pa.array([False] * table.num_rows, type=pa.bool_())
    for columns, wanted in ((users, ids[0]), (anon, ids[1])):
        if not wanted:
            continue
        value_set = pa.array(sorted(wanted), type=pa.string())
        for _name, where in columns:
            col: Any = table.column(names.index(str(where[0])))
            if len(where) > 1:
                col = pc.struct_field(col, [where[1]])
            if pa.types.is_null(col.type):
                continue
            col = pc.cast(col, pa.string()) if not pa.types.is_string(col.type) else col
            mask = pc.or_(mask, pc.fill_null(pc.is_in(col, value_set=value_set), False))
    return mask


def _top_indices(users: list[_Column], anon: list[_Column]) -> list[int]:
    return sorted({where[0] for _n, where in users + anon})


def parquet_count(
    path: Path, *, users: frozenset[str], anonymous: frozenset[str]
) -> tuple[int, int]:
    """Rows of a parquet file, and how many hold one of the ids in an id column.

    Raises:
        ValueError: an id column cannot hold ids; pyarrow's errors for unreadable files.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    columns, anon = _parquet_id_columns(pf.schema_arrow)
    total = pf.metadata.num_rows
    if not columns and not anon:
        return total, 0
    tops = _top_indices(columns, anon)
    removed = 0
    for index in range(pf.metadata.num_row_groups):
        group = pf.read_row_group(index)
        table = group.select(tops)
        names = [str(i) for i in tops]
        removed += int(
            pc.sum(_parquet_mask(table, columns, anon, (users, anonymous), names)).as_py() or 0
        )
    return total, removed


def parquet_write(
    path: Path, tmp: Path, *, users: frozenset[str], anonymous: frozenset[str]
) -> None:
    """Write ``path`` without the rows of the ids to ``tmp`` (schema, metadata, row groups,
    per-column compression kept), fsynced."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.metadata
    columns, anon = _parquet_id_columns(pf.schema_arrow)
    every = [str(i) for i in range(len(pf.schema_arrow))]
    compression: dict[str, str] = {}
    dictionary: list[str] = []
    if meta.num_row_groups:
        group = meta.row_group(0)
        for i in range(group.num_columns):
            col = group.column(i)
            codec = col.compression.lower()
            compression[col.path_in_schema] = {"lz4_raw": "lz4", "uncompressed": "none"}.get(
                codec, codec
            )
            if any("DICTIONARY" in e for e in col.encodings):
                dictionary.append(col.path_in_schema)
    with open(tmp, "wb") as sink:
        writer = pq.ParquetWriter(
            sink,
            pf.schema_arrow,
            compression=compression or "snappy",
            use_dictionary=dictionary if meta.num_row_groups else True,
            version=meta.format_version if meta.format_version in ("1.0", "2.4", "2.6") else "2.6",
        )
        try:
            for index in range(meta.num_row_groups):
                group_table = pf.read_row_group(index)
                mask = _parquet_mask(group_table, columns, anon, (users, anonymous), every)
                kept = group_table.filter(pc.invert(mask))
                if kept.num_rows:
                    writer.write_table(kept, row_group_size=max(kept.num_rows, 1))
        finally:
            writer.close()
        sink.flush()
        os.fsync(sink.fileno())
