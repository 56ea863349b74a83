"""Render a query result (a pyarrow Table) as table, CSV, JSON, JSON lines, Markdown or Parquet.

Only `table` rounds and shortens, for reading on a terminal: seconds (`*_s`) to 0.1,
rates to 0.001, other floats to 0.01, timestamps to the minute (all UTC), long text cut
with `…` (names and ids in the middle, other text at the end) so the grid fits the
width (80 unless standard output is a wider terminal); numbers and times are never cut:
when the grid cannot fit, each row is printed as `column  value` lines instead.
csv, json, jsonl, markdown and parquet carry every value at full precision:
timestamps as ISO 8601 (`2026-01-31T12:00:00Z`), floats as Python's shortest repr.

Columns are kept by position, so two columns of one name (`SELECT e.status,
a.status`) both show. JSON objects and Parquet files need unique names: a repeated
name gets `_2`, `_3`, ... in order of appearance (`status`, `status_2`). An INTERVAL
is written in every format as an ISO 8601 duration (`PT602.991S`, `P1M2DT3S`):
months and days are kept apart, since their length in seconds depends on the date.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recorder.errors import UserError, first_line

MIN_TEXT = 12  # text columns are cut down to this; if the grid still does not fit: records


# Formats written batch by batch from a streamed result: the process holds one batch, not
# the result (a year of failures is a million rows). `table` needs every row to size its
# columns, so a streamed result is read whole for it.
STREAMED = ("csv", "json", "jsonl", "markdown", "parquet")
BATCH_ROWS = 50_000


def write_result(
    result: pa.Table | pa.RecordBatchReader,
    fmt: str,
    output: Path | None = None,
    *,
    width: int | None = None,
) -> int:
    """Write `result` in `fmt` to `output` (written under a temporary name, then renamed
    into place: never a partial file), or to standard output. Returns the rows written."""
    if isinstance(result, pa.RecordBatchReader) and fmt not in STREAMED:
        result = result.read_all()
    if isinstance(result, pa.Table):
        result = pa.RecordBatchReader.from_batches(result.schema, result.to_batches(BATCH_ROWS))
    if fmt == "parquet" and output is None:
        raise UserError("--format parquet needs -o/--output FILE")
    tmp = None if output is None else output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        if tmp is None:
            rows = _write(result, fmt, sys.stdout, None, width)
            sys.stdout.flush()
            return rows
        try:
            if fmt == "parquet":
                rows = _write(result, fmt, None, tmp, width)
            else:
                with open(tmp, "w", encoding="utf-8", newline="") as fh:
                    rows = _write(result, fmt, fh, None, width)
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
        return rows
    except OSError as e:
        raise UserError(f"cannot write {output or 'standard output'}: {e.strerror or e}") from None
    except (OverflowError, pa.ArrowNotImplementedError, pa.ArrowInvalid) as e:
        # values Python or the format cannot hold (an infinite timestamp, an INTERVAL
        # inside a list written as Parquet): say so rather than print a traceback
        raise UserError(f"cannot write this result as {fmt}: {first_line(e)}") from None


def _write(reader: pa.RecordBatchReader, fmt: str, fh, path: Path | None, width) -> int:
    """Write each batch of `reader` as it comes; the text equals render() of the whole."""
    rows = 0
    if fmt == "table":
        table = reader.read_all()
        fh.write(render(table, fmt, width=width or terminal_width()))
        return table.num_rows
    if fmt == "parquet":
        writer = None
        for batch in reader:
            table = plain(pa.Table.from_batches([batch], reader.schema))
            table = table.rename_columns(unique_names(table.column_names))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:  # no rows: the columns still
            table = plain(reader.schema.empty_table())
            pq.write_table(table.rename_columns(unique_names(table.column_names)), path,
                           compression="zstd")  # fmt: skip
        else:
            writer.close()
        return rows
    first = True  # (json: no object written yet; the others: no header yet)
    for batch in reader:
        if fmt == "json" and not batch.num_rows:
            continue
        table = plain(pa.Table.from_batches([batch], reader.schema))
        fh.write(_chunk(table, fmt, first))
        first = False
        rows += table.num_rows
    if first:  # nothing written: the header (or the empty list) still
        fh.write(render(reader.schema.empty_table(), fmt))
    elif fmt == "json":
        fh.write("\n]\n")
    return rows


def _chunk(table: pa.Table, fmt: str, first: bool) -> str:
    """render() of a batch, as the continuation of the batches before it."""
    columns = table.column_names
    rows = list(zip(*(c.to_pylist() for c in table.columns), strict=True))
    if fmt == "csv":
        text = render_csv(columns, rows)
        return text if first else text.split("\n", 1)[1]
    if fmt == "markdown":
        text = render_markdown(columns, rows)
        return text if first else text.split("\n", 2)[2]
    keys = unique_names(columns)
    objects = [{k: _json_value(v) for k, v in zip(keys, r, strict=True)} for r in rows]
    if fmt == "jsonl":
        return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)
    # json: the list render() writes (indent 2), opened by the first batch
    items = ",\n".join(
        "  " + json.dumps(o, indent=2, ensure_ascii=False).replace("\n", "\n  ") for o in objects
    )
    return ("[\n" if first else ",\n") + items


def terminal_width() -> int:
    """COLUMNS when set, else the terminal's width, else 80 (piped or written to a file)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), 40)
    if sys.stdout.isatty():
        return max(shutil.get_terminal_size((80, 24)).columns, 40)
    return 80


def unique_names(names: list[str]) -> list[str]:
    """`names` with each repeat suffixed `_2`, `_3`, ... (skipping names already taken)."""
    taken = set(names)
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name not in seen:
            seen[name] = 1
            out.append(name)
            continue
        n = seen[name]
        while f"{name}_{n + 1}" in taken:
            n += 1
        seen[name] = n + 1
        taken.add(f"{name}_{n + 1}")
        out.append(f"{name}_{n + 1}")
    return out


def iso_duration(value: pa.MonthDayNano | None) -> str | None:
    """An INTERVAL as ISO 8601: P<months>M<days>DT<seconds>S, zero parts left out."""
    if value is None:
        return None
    months, days, nanos = value.months, value.days, value.nanoseconds
    seconds = Decimal(nanos) / Decimal(1_000_000_000)
    text = "P" + (f"{months}M" if months else "") + (f"{days}D" if days else "")
    if seconds or text == "P":
        whole = seconds.to_integral_value()
        shown = f"{whole:f}" if seconds == whole else f"{seconds.normalize():f}"
        text += f"T{shown}S"
    return text


def plain(table: pa.Table) -> pa.Table:
    """The table with INTERVAL columns as ISO 8601 duration text (see the module doc)."""
    columns = []
    for column in table.columns:
        if pa.types.is_interval(column.type):
            column = pa.array([iso_duration(v) for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def render(table: pa.Table, fmt: str, *, width: int = 80) -> str:
    table = plain(table)
    columns = table.column_names
    rows = list(zip(*(c.to_pylist() for c in table.columns), strict=True))
    if fmt == "table":
        return render_table(columns, rows, table.schema.types, width=width)
    if fmt == "csv":
        return render_csv(columns, rows)
    if fmt in ("json", "jsonl"):
        keys = unique_names(columns)
        objects = [{k: _json_value(v) for k, v in zip(keys, r, strict=True)} for r in rows]
        if fmt == "json":
            return json.dumps(objects, indent=2, ensure_ascii=False) + "\n"
        return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)
    if fmt == "markdown":
        return render_markdown(columns, rows)
    raise ValueError(f"unknown format {fmt!r}")


# --- full-precision text -------------------------------------------------------------


def iso(value: datetime | date | time) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return iso(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        # a JSON number only when a float holds it exactly; else its exact digits as text
        return float(value) if Decimal(repr(float(value))) == value else f"{value:f}"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _text(value: Any) -> str:
    """A cell at full precision, for csv and markdown. NULL is empty."""
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(_json_value(value), ensure_ascii=False)
    if isinstance(value, Decimal):
        return f"{value:f}"  # every digit
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # nan, inf, -inf: not the empty cell of NULL
    value = _json_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, float) else repr(value)


def render_csv(columns: list[str], rows: list[tuple]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(v) for v in row])
    return buf.getvalue()


def render_markdown(columns: list[str], rows: list[tuple]) -> str:
    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell(_text(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


# --- the terminal table -----------------------------------------------------------------


def _decimals(column: str) -> int:
    """Digits shown in the table: seconds to 0.1 s, rates to 0.001, other floats to 0.01."""
    if column.endswith("_s"):
        return 1
    return 3 if column.endswith("rate") else 2


def _display(value: Any, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, date | time):
        return value.isoformat()
    return " ".join(_text(value).split())  # newlines and tabs would break the grid


def _shrinkable(t: pa.DataType) -> bool:
    """Text can be cut; numbers, times and booleans are shown whole or not in a grid."""
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_nested(t)


def _cut(text: str, n: int, *, middle: bool = False) -> str:
    if len(text) <= n:
        return text
    if middle and n >= 5:  # names differ at the end too: orders-api-prod vs orders-api-dev
        head = (n - 1) // 2
        return text[:head] + "…" + text[len(text) - (n - 1 - head) :]
    return text[: max(n - 1, 0)] + "…"


def fit_widths(natural: list[int], shrinkable: list[bool], budget: int) -> list[int] | None:
    """Cut the widest text column by one until the widths fit `budget`; None if they cannot."""
    widths = list(natural)
    while sum(widths) > budget:
        candidates = [i for i, w in enumerate(widths) if shrinkable[i] and w > MIN_TEXT]
        if not candidates:
            return None
        widths[max(candidates, key=lambda j: widths[j])] -= 1
    return widths


def render_table(
    columns: list[str], rows: list[tuple], types: list[pa.DataType], *, width: int
) -> str:
    if not columns:
        return ""
    right = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in types
    ]
    middle = [c == "pipeline" or c.endswith("_id") for c in columns]
    digits = [_decimals(c) for c in columns]
    cells = [[_display(v, digits[i]) for i, v in enumerate(r)] for r in rows]
    natural = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    for sep in ("  ", " "):
        budget = width - len(sep) * (len(columns) - 1)
        widths = fit_widths(natural, [_shrinkable(t) for t in types], budget)
        if widths is not None:
            break
    else:
        return _render_records(columns, cells, width)

    def line(values: list[str]) -> str:
        out = []
        for i, v in enumerate(values):
            v = _cut(v, widths[i], middle=middle[i])
            out.append(v.rjust(widths[i]) if right[i] else v.ljust(widths[i]))
        return sep.join(out).rstrip()

    lines = [line(columns), sep.join("-" * w for w in widths)]
    lines += [line(row) for row in cells]
    if not rows:
        lines.append("(no rows)")
    return "\n".join(lines) + "\n"


def _render_records(columns: list[str], cells: list[list[str]], width: int) -> str:
    """Too many columns for a grid: one `column  value` line per cell, rows numbered."""
    label = min(max(len(c) for c in columns), width // 3)
    blocks = []
    for n, row in enumerate(cells, 1):
        lines = [f"-[ row {n} ]".ljust(min(width, 40), "-")]
        for c, v in zip(columns, row, strict=True):
            lines.append(_cut(f"{_cut(c, label).ljust(label)}  {v}".rstrip(), width))
        blocks.append("\n".join(lines))
    if not cells:
        blocks.append(_cut(", ".join(columns), width) + "\n(no rows)")
    return "\n".join(blocks) + "\n"
