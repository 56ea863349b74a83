"""Render a query result (a pyarrow Table) as table, CSV, JSON, JSON lines, Markdown or Parquet.

Only `table` rounds and shortens, for reading on a terminal: seconds (`*_s`) as a person
writes a duration (`8.4s`, `4m 20s`, `3h 5m`, `16d 0h`: humane_seconds), rates to 0.001,
other floats to 0.01, timestamps to the minute (all UTC). The grid fits the width (80
unless standard output is a wider terminal): free text (an error message, a detail) is
cut at the end with `…`; a name or an id (NAMES: pipeline, stage, action, `*_id`, ...) is
never cut: when it must, it wraps onto the next lines of its cell, broken after a `-`,
`.`, `_`, `@` or `/`; numbers and times are never cut. When the grid cannot fit, each row
is printed as `column  value` lines instead (a long name wraps there too).
csv, json, jsonl, markdown and parquet carry every value at full precision (seconds as
seconds): timestamps as ISO 8601 (`2026-01-31T12:00:00Z`), floats as Python's shortest repr.

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
    footer: str | None = None,
) -> int:
    """Write `result` in `fmt` to `output` (written under a temporary name, then renamed
    into place: never a partial file), or to standard output. Returns the rows written.
    `footer`: a line under a `table` (what its figures are measured to); other formats
    carry no such line."""
    if isinstance(result, pa.RecordBatchReader) and fmt not in STREAMED:
        result = result.read_all()
    if isinstance(result, pa.Table):
        result = pa.RecordBatchReader.from_batches(result.schema, result.to_batches(BATCH_ROWS))
    if fmt == "parquet" and output is None:
        raise UserError("--format parquet needs -o/--output FILE")
    return _to(output, fmt, lambda fh, path: _write(result, fmt, fh, path, width, footer))


def write_results(
    results: list[pa.Table], fmt: str, output: Path | None = None, *, width: int | None = None
) -> int:
    """Write several results (of several SQL statements) one after the other, a blank line
    between them: only in `table` and `markdown`, whose results read one after another."""
    if len(results) == 1:
        return write_result(results[0], fmt, output, width=width)
    if fmt not in ("table", "markdown"):
        raise UserError(f"--format {fmt} holds one result, not {len(results)}")
    text = "\n".join(render(r, fmt, width=width or terminal_width()) for r in results)
    _to(output, fmt, lambda fh, path: fh.write(text))
    return sum(r.num_rows for r in results)


def _to(output: Path | None, fmt: str, write) -> int:
    """`write(fh, path)` into standard output, or into `output` through a temporary file
    renamed into place (`fh` None and `path` the temporary file for parquet)."""
    tmp = None if output is None else output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        if tmp is None:
            rows = write(sys.stdout, None)
            sys.stdout.flush()
            return rows
        try:
            if fmt == "parquet":
                rows = write(None, tmp)
            else:
                with open(tmp, "w", encoding="utf-8", newline="") as fh:
                    rows = write(fh, None)
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


def _write(reader: pa.RecordBatchReader, fmt: str, fh, path: Path | None, width, footer) -> int:
    """Write each batch of `reader` as it comes; the text equals render() of the whole."""
    rows = 0
    if fmt == "table":
        table = reader.read_all()
        fh.write(render(table, fmt, width=width or terminal_width(), footer=footer))
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


def render(table: pa.Table, fmt: str, *, width: int = 80, footer: str | None = None) -> str:
    table = plain(table)
    columns = table.column_names
    rows = list(zip(*(c.to_pylist() for c in table.columns), strict=True))
    if fmt == "table":
        return render_table(columns, rows, table.schema.types, width=width, footer=footer)
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

MIN_TEXT = 12  # free text is cut down to this, names wrap down to MIN_NAME; then: records
MIN_NAME = 12
# Text columns holding a name or an id: never cut (an id ends in `_id`).
NAMES = frozenset({
    "pipeline", "stage", "action", "region", "provider", "category", "error_code", "step",
    "kind", "status", "rule", "rule_name", "name", "new_versions", "execution_type",
    "trigger_type",
})  # fmt: skip
_BREAK = "-._@/"  # a wrapped name breaks after one of these (else anywhere)


def humane_seconds(seconds: float | int | None) -> str:
    """Seconds as a person writes a duration, the two largest units at most: `0.4s`,
    `59.9s`, `1m 0s`, `4m 20s`, `59m 59s`, `1h 0m`, `23h 59m`, `1d 0h`, `16d 0h`. Each
    form rounds half up to its last unit, and a value that rounds to the next form's
    first value takes that form (59.96 s is `1m 0s`, not `60.0s`).

    Written here rather than taken from a library: humanize writes "15 days and 23.87
    hours" (too wide for a grid), and the report and the progress line write theirs
    for their own places."""
    if seconds is None:
        return ""
    if not math.isfinite(seconds):
        return str(seconds)

    def half_up(x: float) -> int:
        # rounded to 1e-6 first: 260 + 0.85 * 550 is 727.4999999999999 in binary, 727.5 s
        # to a person, and 12m 8s
        return math.floor(round(x, 6) + 0.5)

    s = abs(seconds)
    text = ""
    if half_up(s * 10) < 600:
        tenths = half_up(s * 10)
        text = f"{tenths // 10}.{tenths % 10}s"
    elif half_up(s) < 3600:
        text = "{}m {}s".format(*divmod(half_up(s), 60))
    elif half_up(s / 60) < 1440:
        text = "{}h {}m".format(*divmod(half_up(s / 60), 60))
    else:
        text = "{}d {}h".format(*divmod(half_up(s / 3600), 24))
    return "-" + text if seconds < 0 and text != "0.0s" else text


def _is_seconds(column: str, t: pa.DataType) -> bool:
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    return numeric and column.endswith("_s")


def _decimals(column: str) -> int:
    """Digits shown in the table: rates to 0.001, other floats to 0.01."""
    return 3 if column.endswith("rate") else 2


def _display(value: Any, digits: int = 2, *, seconds: bool = False) -> str:
    if value is None:
        return ""
    if seconds and not isinstance(value, bool):
        return humane_seconds(float(value))
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


def _is_text(t: pa.DataType) -> bool:
    """Text can be cut or wrapped; numbers, times and booleans are shown whole."""
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_nested(t)


def _is_name(column: str) -> bool:
    return column in NAMES or column.endswith("_id")


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: max(n - 1, 0)] + "…"


def wrap_name(name: str, n: int) -> list[str]:
    """`name` in lines of at most `n` characters, each broken after one of `_BREAK` where
    one is in reach (else at `n`): joined again, the lines give the name back.

    (textwrap breaks only at spaces and hyphens; a pipeline name has dots, `_` and `@`.)"""
    lines = []
    while len(name) > n:
        cut = max((name.rfind(c, 0, n) for c in _BREAK), default=-1) + 1
        cut = cut if cut > 0 else n
        lines.append(name[:cut])
        name = name[cut:]
    return [*lines, name] if name or not lines else lines


def fit_widths(
    natural: list[int], shrinkable: list[bool], budget: int, least: int = MIN_TEXT
) -> list[int] | None:
    """Narrow the widest shrinkable column by one until the widths fit `budget`, none below
    `least`; None if they cannot."""
    widths = list(natural)
    while sum(widths) > budget:
        candidates = [i for i, w in enumerate(widths) if shrinkable[i] and w > least]
        if not candidates:
            return None
        widths[max(candidates, key=lambda j: widths[j])] -= 1
    return widths


def render_table(
    columns: list[str],
    rows: list[tuple],
    types: list[pa.DataType],
    *,
    width: int,
    footer: str | None = None,
) -> str:
    """The grid (or the records, when no grid fits `width`), then `footer` if given."""
    if not columns:
        return ""
    text = _render_grid(columns, rows, types, width)
    return text + (f"{footer}\n" if footer else "")


def _render_grid(columns: list[str], rows: list[tuple], types: list[pa.DataType], width: int):
    right = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in types
    ]
    seconds = [_is_seconds(c, t) for c, t in zip(columns, types, strict=True)]
    cells = [
        [_display(v, _decimals(columns[i]), seconds=seconds[i]) for i, v in enumerate(r)]
        for r in rows
    ]
    name = [_is_text(t) and _is_name(c) for c, t in zip(columns, types, strict=True)]
    prose = [_is_text(t) and not name[i] for i, t in enumerate(types)]
    natural = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    # Cut free text first, with two spaces between columns, then one; only then wrap names
    # (a row on several lines reads worse than a tighter grid).
    for sep, wrap in (("  ", False), (" ", False), ("  ", True), (" ", True)):
        budget = width - len(sep) * (len(columns) - 1)
        if not wrap:
            widths = fit_widths(natural, prose, budget)
        else:  # free text at its least already, since it alone did not make the grid fit
            cut = [min(w, MIN_TEXT) if prose[i] else w for i, w in enumerate(natural)]
            widths = fit_widths(cut, name, budget, MIN_NAME)
        if widths is not None:
            break
    else:
        return _render_records(columns, cells, name, width)

    def lines(values: list[str]) -> list[str]:
        parts = []
        for i, v in enumerate(values):
            parts.append(wrap_name(v, widths[i]) if name[i] else [_cut(v, widths[i])])
        out = []
        for k in range(max(len(p) for p in parts)):
            line = []
            for i, p in enumerate(parts):
                v = p[k] if k < len(p) else ""
                line.append(v.rjust(widths[i]) if right[i] else v.ljust(widths[i]))
            out.append(sep.join(line).rstrip())
        return out

    text = [*lines(columns), sep.join("-" * w for w in widths)]
    for row in cells:
        text += lines(row)
    if not rows:
        text.append("(no rows)")
    return "\n".join(text) + "\n"


def _render_records(columns: list[str], cells: list[list[str]], name: list[bool], width: int):
    """Too many columns for a grid: one `column  value` line per cell, rows numbered; free
    text is cut at the width, a name wraps onto lines of its own under its value."""
    label = min(max(len(c) for c in columns), width // 3)
    room = max(width - label - 2, MIN_NAME)
    blocks = []
    for n, row in enumerate(cells, 1):
        lines = [f"-[ row {n} ]".ljust(min(width, 40), "-")]
        for i, (c, v) in enumerate(zip(columns, row, strict=True)):
            head = _cut(c, label).ljust(label)
            if name[i]:
                parts = wrap_name(v, room)
                lines.append(f"{head}  {parts[0]}".rstrip())
                lines += [" " * (label + 2) + part for part in parts[1:]]
            else:
                lines.append(_cut(f"{head}  {v}".rstrip(), width))
        blocks.append("\n".join(lines))
    if not cells:
        blocks.append(_cut(", ".join(columns), width) + "\n(no rows)")
    return "\n".join(blocks) + "\n"
