"""The Athena (AWS Glue) DDL for a cprec data root copied to S3: `cprec athena-ddl`.

Names: `raw_<table>` is an external table over a table's files (every recorded row),
and `<table>` a view of the latest recording per natural key, as in `cprec sql`; plus
`stage_runs`. The views are built from the same rules as cprec's own
(recorder/layout.py: natural_key, latest_only_sql, COMMITTED_BY), so a schema change
changes them too; `stage_runs` is Trino SQL kept beside the DuckDB one
(sql/_athena_stage_runs.sql).

Partitions are found by projection, never registered in Glue, so a new day of data is
queryable without `MSCK REPAIR TABLE` or a crawler:
- `dt` is a `date` projection (yyyy-MM-dd, daily) from the first day recorded to NOW.
  Athena projects every day of the range and lists each one in S3 (a day without
  files is empty, not an error), so the range starts at the data's first day, not at
  an arbitrary early date, to keep a scan without a `dt` filter short.
- `pipeline` is an `enum` projection of the pipelines recorded under the local data
  root (`--data`). The `injected` type would make every query name one pipeline
  (`WHERE pipeline = '...'`), which rules out the cross-pipeline views; an `integer`
  or `date` type does not fit names. An enum must list its values, so the DDL is
  re-run when pipelines are added (it drops and re-creates the external tables: their
  files stay). Names match [A-Za-z0-9.@_-]+, so a comma never splits one; Athena
  advises a few dozen values and the table metadata must stay under Glue's ~1 MB.
- No `storage.location.template`: Athena's default partition location is
  `<LOCATION>/pipeline=<value>/dt=<value>/`, the layout cprec writes.

Athena reads the Parquet timestamps as milliseconds (cprec writes microseconds); the
latest recording per key then ties only within one millisecond and run_id decides, as
in the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from string import Template

import pyarrow as pa

from recorder import layout
from recorder.errors import UserError
from recorder.root import DataRoot
from recorder.schemas import TABLES, Table

DEFAULT_DATABASE = "cprec"
RAW_PREFIX = "raw_"

_TYPES = {
    pa.string(): "string",
    pa.int64(): "bigint",
    pa.int32(): "int",
    pa.bool_(): "boolean",
    pa.float64(): "double",
    pa.date32(): "date",
}
_PARTITION_TYPES = {"VARCHAR": "string", "DATE": "date"}  # layout.partition_keys' types

# S3 bucket names are 3-63 lowercase letters, digits, dots and hyphens today, but
# older us-east-1 buckets may hold capitals and underscores (up to 255): accept those
# characters, which are safe in a SQL literal, and let S3 refuse a bucket it does not
# have. Athena databases: lowercase letters, digits and underscores.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_DATABASE = re.compile(r"[a-z0-9_]{1,255}")
# A CodePipeline name; anything else under a data root is not a pipeline partition.
_PIPELINE = re.compile(r"[A-Za-z0-9.@_-]{1,100}")
# Characters a location cannot hold here: it is written inside SQL string literals
# (Hive's escape is the backslash) and must be one plain S3 prefix.
_LOCATION_REFUSED = re.compile(r"['\"\\\s$*?\[\]{}]")


@dataclass(frozen=True)
class Target:
    """What the DDL describes: the data root in S3 and what was recorded under it."""

    location: str  # s3://bucket[/prefix], no trailing slash
    database: str
    pipelines: tuple[str, ...]
    first_day: date


def target(location: str, database: str, root: str | Path | DataRoot) -> Target:
    """Check `location` and `database`; read the pipelines and first day under `root`."""
    pipelines, first_day = recorded(DataRoot.of(root))
    return Target(s3_location(location), check_database(database), pipelines, first_day)


def s3_location(location: str) -> str:
    """`location` as s3://bucket[/prefix] without a trailing slash, or UserError."""
    rest = location.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.rstrip("/")
    ok = (
        location.startswith("s3://")
        and _BUCKET.fullmatch(bucket)
        and not _LOCATION_REFUSED.search(prefix)
        and "" not in (prefix.split("/") if prefix else [])
    )
    if not ok:
        raise UserError(
            f"--location {location!r} is not s3://bucket[/prefix] (a bucket name, then "
            "a prefix without quotes, spaces, globs or empty segments)"
        )
    return f"s3://{bucket}" + (f"/{prefix}" if prefix else "")


def check_database(name: str) -> str:
    if not _DATABASE.fullmatch(name):
        raise UserError(
            f"--database {name!r}: an Athena database name is lowercase letters, digits "
            "and underscores"
        )
    return name


def recorded(root: DataRoot) -> tuple[tuple[str, ...], date]:
    """The pipelines recorded under `root` (sorted) and the first day of any table."""
    pipelines: set[str] = set()
    days: set[date] = set()
    for table in TABLES.values():
        for pipeline, dt, _ in layout.partitions(root, table.name):
            days.add(dt)
            if pipeline is not None:
                if not _PIPELINE.fullmatch(pipeline):
                    raise UserError(
                        f"{root / table.name / ('pipeline=' + pipeline)}: not a pipeline "
                        "name; move it out of the data root"
                    )
                pipelines.add(pipeline)
    if not pipelines:
        raise UserError(
            f"no pipeline recorded under {root}: pass the data root you copied to S3 "
            "(--data / CPREC_DATA), after a `cprec collect`"
        )
    return tuple(sorted(pipelines)), min(days)


# -- the statements -------------------------------------------------------------------


def script(t: Target) -> str:
    """The whole output: a comment, then one statement per paragraph, each ending in `;`."""
    header = "\n".join(
        f"-- {line}"
        for line in [
            f"Athena DDL for the cprec data root at {t.location} (cprec athena-ddl).",
            "raw_<table>: every recorded row; <table>: the latest recording per key; stage_runs.",
            f"Partitions are projected: {len(t.pipelines)} pipelines recorded under the "
            f"data root, days from {t.first_day.isoformat()} to today.",
            "Re-run this when pipelines are added (or after a cprec upgrade): it drops",
            "and re-creates the raw_ tables; DROP TABLE leaves their files in S3.",
            "Run each statement on its own (aws athena start-query-execution, or the "
            "console), in order.",
        ]
    )
    return "\n\n".join([header, *(f"{s};" for s in statements(t))]) + "\n"


def statements(t: Target) -> list[str]:
    """Every statement, in the order Athena needs them (a view after what it reads)."""
    db = t.database
    out = [f"CREATE DATABASE IF NOT EXISTS `{db}`"]
    for table in TABLES.values():
        out.append(f"DROP TABLE IF EXISTS `{db}`.`{raw_name(table)}`")
        out.append(create_table_sql(table, t))
    # TABLES lists each commit point (stage_states) before the tables it commits.
    out += [view_sql(table, db) for table in TABLES.values()]
    out.append(stage_runs_sql(db))
    return out


def raw_name(table: Table) -> str:
    return RAW_PREFIX + table.name


def athena_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamp"
    return _TYPES[t]  # a KeyError here means schemas.py grew a type: add it


def partition_columns(table: Table) -> list[tuple[str, str]]:
    return [(k, _PARTITION_TYPES[v]) for k, v in layout.partition_keys(table)]


def projection(table: Table, t: Target) -> dict[str, str]:
    """The TBLPROPERTIES that project `table`'s partitions (see the module docstring)."""
    props = {"projection.enabled": "true"}
    if table.per_pipeline:
        props["projection.pipeline.type"] = "enum"
        props["projection.pipeline.values"] = ",".join(t.pipelines)
    return props | {
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": f"{t.first_day.isoformat()},NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
    }


def create_table_sql(table: Table, t: Target) -> str:
    columns = ",\n".join(f"  `{f.name}` {athena_type(f.type)}" for f in table.schema)
    partitions = ", ".join(f"`{k}` {v}" for k, v in partition_columns(table))
    props = ",\n".join(f"  '{k}' = '{v}'" for k, v in projection(table, t).items())
    return (
        f"CREATE EXTERNAL TABLE `{t.database}`.`{raw_name(table)}` (\n{columns}\n)\n"
        f"PARTITIONED BY ({partitions})\n"
        "STORED AS PARQUET\n"
        f"LOCATION '{t.location}/{table.name}/'\n"
        f"TBLPROPERTIES (\n{props}\n)"
    )


def _latest_window(table: Table) -> str:
    """The window of layout.latest_only_sql, whose text (quoted identifiers, NULLS LAST)
    Trino reads as it is; Athena has no QUALIFY, so the view filters on the window's value."""
    qualify = layout.latest_only_sql(table)
    head, tail = "QUALIFY ", " = 1"
    if not (qualify.startswith(head) and qualify.endswith(tail)):
        raise AssertionError(f"layout.latest_only_sql changed shape: {qualify}")
    return qualify[len(head) : -len(tail)]


def view_sql(table: Table, db: str) -> str:
    """The view `<table>`: the latest recording per natural key of `raw_<table>`, and for
    a table with a commit point only rows whose commit point exists (views.committed_sql)."""
    q = layout.ident
    names = [name for name, _ in layout.columns(table)]
    select = _wrap([q(n) for n in names])
    where = ['"cprec_recency" = 1']
    if table.name in layout.COMMITTED_BY:
        parent, keys = layout.COMMITTED_BY[table.name]
        on = " AND ".join(
            f"p.{q(k)} = t.{q(k)}" for k in [*layout.natural_key(TABLES[parent])[:3], *keys]
        )
        where.append(f"EXISTS (SELECT 1 FROM {q(db)}.{q(parent)} AS p WHERE {on})")
    return (
        f"CREATE OR REPLACE VIEW {q(db)}.{q(table.name)} AS\n"
        f"SELECT\n{select}\n"
        f'FROM (\n  SELECT *, {_latest_window(table)} AS "cprec_recency"\n'
        f"  FROM {q(db)}.{q(raw_name(table))}\n) AS t\n"
        f"WHERE {' AND '.join(where)}"
    )


def stage_runs_sql(db: str) -> str:
    # stage_runs in Athena's dialect: the query layer owns it beside its DuckDB form
    # (queries/sql/relations/stage_runs.sql), which tests/test_athena.py holds it equal to
    body = (
        resources.files("queries")
        .joinpath("sql", "athena", "stage_runs.sql")
        .read_text(encoding="utf-8")
        .splitlines()
    )
    while body and body[0].startswith("--"):  # the file's header
        body.pop(0)
    select = Template("\n".join(body).strip()).substitute(database=db)
    return f'CREATE OR REPLACE VIEW {layout.ident(db)}."stage_runs" AS\n{select}'


def _wrap(items: list[str], width: int = 88) -> str:
    """`items` comma-separated in indented lines of at most `width` characters."""
    lines, line = [], ""
    for item in items:
        piece = f"{item}, "
        if line and len(line) + len(piece) > width:
            lines.append("  " + line.rstrip())
            line = ""
        line += piece
    lines.append("  " + line.removesuffix(", "))
    return "\n".join(lines)
