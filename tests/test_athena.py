"""`cprec athena-ddl`: the Athena DDL parses, declares the canonical schemas, and its views
answer exactly what cprec's own views answer over the same files.

Athena itself is not at hand: sqlglot reads every statement as Athena SQL, and the
views, transpiled to DuckDB by sqlglot, run over the Parquet files of a collected data
root beside cprec's views (recorder/views.py).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from click.testing import CliRunner
from conftest import SIM_NOW, build_scenario, common_columns, run
from sqlglot import exp

from recorder import athena, layout, reader
from recorder.cli import main
from recorder.schemas import TABLES
from recorder.simulator import Account, SimulatorServer
from recorder.store import write_rows
from recorder.views import SESSION_SQL

# The Hive DDL names of the types of recorder/schemas.py, as sqlglot spells them back.
ATHENA_TYPES = {pa.string(): "STRING", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN"}
ATHENA_TYPES[pa.timestamp("us", tz="UTC")] = "TIMESTAMP"
TARGET = athena.Target("s3://bucket/some/prefix", "cprec", ("42", "svc.api@prod-1_x", "web"),
                       date(2026, 10, 28))  # fmt: skip


def statements(script: str) -> list[str]:
    """The statements of the output: its paragraphs after the leading comment (the way
    the README feeds them to Athena), without their `;`."""
    assert script.endswith(";\n")
    header, *rest = script.removesuffix("\n").split("\n\n")
    assert all(line.startswith("-- ") for line in header.splitlines())
    assert all(s.endswith(";") and s.count(";") == 1 and "\n--" not in s for s in rest)
    return [s.removesuffix(";") for s in rest]


def parsed(script: str) -> list[exp.Expression]:
    return [sqlglot.parse_one(s, read="athena") for s in statements(script)]


def named(e: exp.Expression) -> exp.Table:
    """The database, table or view a statement creates or drops."""
    if isinstance(e, exp.Drop):
        (table,) = e.args["tables"]
        return table
    return e.this.this if isinstance(e.this, exp.Schema) else e.this


def tables_of(script: str) -> dict[str, exp.Create]:
    return {
        named(e).name: e for e in parsed(script) if isinstance(e, exp.Create) and e.kind == "TABLE"
    }


def column_defs(schema: exp.Schema) -> list[tuple[str, str]]:
    return [(c.name, c.args["kind"].sql("hive")) for c in schema.expressions]  # DDL is Hive SQL


def prop(create: exp.Create, cls: type) -> exp.Expression:
    (found,) = [p for p in create.args["properties"].expressions if isinstance(p, cls)]
    return found


def tblproperties(create: exp.Create) -> dict[str, str]:
    return {
        p.this.name: p.args["value"].name
        for p in create.args["properties"].expressions
        if type(p) is exp.Property
    }


# --- the statements ------------------------------------------------------------------


def test_every_statement_parses_as_athena_sql_in_order():
    kinds = [
        (type(e).__name__, e.args["kind"], named(e).db, named(e).name)
        for e in parsed(athena.script(TARGET))
    ]
    raw = [(verb, "TABLE", "cprec", f"raw_{t}") for t in TABLES for verb in ("Drop", "Create")]
    views = [("Create", "VIEW", "cprec", t) for t in [*TABLES, "stage_runs"]]
    assert kinds == [("Create", "DATABASE", "", "cprec"), *raw, *views]


def test_external_tables_declare_the_canonical_schemas_and_project_partitions():
    created = tables_of(athena.script(TARGET))
    assert sorted(created) == sorted(f"raw_{t}" for t in TABLES)
    for name, table in TABLES.items():
        create = created[f"raw_{name}"]
        assert named(create).db == "cprec"
        assert prop(create, exp.ExternalProperty)
        assert column_defs(create.this) == [(f.name, ATHENA_TYPES[f.type]) for f in table.schema]
        keys = column_defs(prop(create, exp.PartitionedByProperty).this)
        assert keys == ([("pipeline", "STRING")] if table.per_pipeline else []) + [("dt", "DATE")]
        assert prop(create, exp.FileFormatProperty).this.name == "PARQUET"
        location = prop(create, exp.LocationProperty).this.name
        assert location == f"s3://bucket/some/prefix/{name}/"
        dt = {
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": "2026-10-28,NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
        }
        pipeline = {
            "projection.pipeline.type": "enum",
            "projection.pipeline.values": "42,svc.api@prod-1_x,web",
        }
        expected = {"projection.enabled": "true", **(pipeline if table.per_pipeline else {}), **dt}
        assert tblproperties(create) == expected, name


def test_the_views_read_the_raw_tables_and_commit_points_of_their_database():
    views = {
        named(e).name: e
        for e in parsed(athena.script(TARGET))
        if isinstance(e, exp.Create) and e.kind == "VIEW"
    }
    assert list(views) == [*TABLES, "stage_runs"]
    for name, table in TABLES.items():
        query = views[name].expression
        assert [c.alias_or_name for c in query.expressions] == [n for n, _ in layout.columns(table)]
        read = {(t.db, t.name) for t in query.find_all(exp.Table)}
        parent = layout.COMMITTED_BY.get(name, (None,))[0]
        assert read == {("cprec", f"raw_{name}")} | ({("cprec", parent)} if parent else set())
    read = {(t.db, t.name) for t in views["stage_runs"].expression.find_all(exp.Table)}
    assert read == {
        ("cprec", "action_executions"),
        ("cprec", "executions"),  # an execution's start: the wait before its first stage
        ("cprec", "rule_executions"),  # the stage's conditions: part of its outcome
        ("", "ranked"),
        ("", "per_action"),
        ("", "runs"),
        ("", "ranked_rules"),
        ("", "rules"),
        ("", "conditions"),
    }


@pytest.mark.parametrize(
    "location",
    ["s3://b", "s3://bucket/", "s3://my.bucket-1/a/b/", "s3://Old_Bucket/p@x/y.z=1"],
)
def test_good_locations_are_normalised(location):
    assert athena.s3_location(location) == location.rstrip("/")


# --- the views answer what cprec's views answer --------------------------------------


@pytest.fixture
def collected(tmp_path) -> Path:
    """A simulated account collected twice (executions in progress are recorded again:
    duplicates), plus an action state snapshot whose stage_states rows never landed."""
    root = tmp_path / "data"
    acct = Account(names=["web", "svc.api@prod-1_x", "42"], days=4, seed=7, now=SIM_NOW)
    with SimulatorServer(acct) as srv:
        assert run(root, srv, acct).exit_code == 0
        acct.advance(hours=8)
        assert run(root, srv, acct).exit_code == 0
    snap = SIM_NOW + timedelta(hours=9)
    half = {**common_columns(snap, "run-x"), "dt": snap.date(), "snapshot_at": snap,
            "stage": "Build", "action": "Compile", "status": "InProgress"}  # fmt: skip
    write_rows(root, "action_states", [half], pipeline="web", run_id="run-x")
    return root


def athena_views_in_duckdb(root: Path, script: str) -> duckdb.DuckDBPyConnection:
    """The raw tables over `root`'s files as cprec reads them, then every view of the
    script, transpiled from Athena SQL to DuckDB's."""
    con = duckdb.connect()
    con.execute(SESSION_SQL)
    con.execute("CREATE SCHEMA cprec")
    for table in TABLES.values():
        files = layout.sql_string(layout.file_glob(root, table))
        con.execute(
            f"CREATE VIEW cprec.raw_{table.name} AS {layout.read_parquet_sql(table, files)}"
        )
    for statement in statements(script):
        if statement.startswith("CREATE OR REPLACE VIEW"):
            (sql,) = sqlglot.transpile(statement, read="athena", write="duckdb")
            con.execute(sql)
    return con


def rows(con, relation: str) -> tuple[list[str], list[dict]]:
    result = con.sql(f"SELECT * FROM {relation} ORDER BY ALL").to_arrow_table()
    return result.column_names, result.to_pylist()


def test_the_views_answer_exactly_what_cprecs_views_answer(collected):
    script = athena.script(athena.target("s3://b/p", "cprec", collected))
    ours = athena_views_in_duckdb(collected, script)
    cprec = reader.connect(collected, cache=False)
    for name in [*TABLES, "stage_runs"]:
        columns, expected = rows(cprec, name)
        assert expected, name  # no comparison of two empty answers
        assert rows(ours, f"cprec.{name}") == (columns, expected), name
    # the data is such that deduplication and the commit point matter
    count = "SELECT count(*) FROM {}"
    for name in ("executions", "action_executions"):
        raw, latest = (cprec.execute(count.format(r)).fetchone()[0] for r in (f"raw.{name}", name))
        assert raw > latest, name
    half = "SELECT count(*) FROM {} WHERE run_id = 'run-x'"
    assert ours.execute(half.format("cprec.raw_action_states")).fetchone() == (1,)
    assert ours.execute(half.format("cprec.action_states")).fetchone() == (0,)


# --- the command ---------------------------------------------------------------------


def test_the_command_projects_the_pipelines_recorded_under_data(tmp_path):
    root = build_scenario(tmp_path / "data")
    result = CliRunner().invoke(main, ["athena-ddl", "--location", "s3://b/p", "--data", str(root)])
    assert result.exit_code == 0, result.output
    created = tables_of(result.output)
    for name, table in TABLES.items():
        props = tblproperties(created[f"raw_{name}"])
        assert props.get("projection.pipeline.values") == (
            "api,ops,web" if table.per_pipeline else None
        )
        assert props["projection.dt.range"] == "2026-01-05,NOW"  # the scenario's first day
        assert prop(created[f"raw_{name}"], exp.LocationProperty).this.name == f"s3://b/p/{name}/"
    assert "3 pipelines recorded under the data root" in result.output.splitlines()[2]


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    return result.output


@pytest.mark.parametrize(
    "location",
    ["b/p", "s3:/b/p", "s3://", "s3:///p", "s3://bu cket/p", "s3://b?x/p", "s3://-b/p",
     "s3://bucket//p", "s3://bucket/it's", "s3://bucket/a b", "s3://bucket/*", "https://b/p"],
)  # fmt: skip
def test_a_bad_location_is_one_line_exit_2(tmp_path, location):
    root = build_scenario(tmp_path / "data")
    result = CliRunner().invoke(main, ["athena-ddl", "--location", location, "--data", str(root)])
    assert "--location" in one_line_error(result)


@pytest.mark.parametrize("database", ["", "Cprec", "my-db", "a.b", "x" * 256])
def test_a_bad_database_is_one_line_exit_2(tmp_path, database):
    root = build_scenario(tmp_path / "data")
    args = [
        "athena-ddl",
        "--location",
        "s3://bucket/p",
        "--database",
        database,
        "--data",
        str(root),
    ]
    assert "--database" in one_line_error(CliRunner().invoke(main, args))


def test_a_data_root_without_pipelines_is_one_line_exit_2(tmp_path):
    args = ["athena-ddl", "--location", "s3://bucket/p", "--data", str(tmp_path / "none")]
    assert "no pipeline recorded under" in one_line_error(CliRunner().invoke(main, args))
