"""`cprec db` files: written in a storage format DuckDB 1.x opens, with the same views.

DuckDB 2.0 writes new files in a format (storage version 69) no DuckDB 1.x opens;
`queries.write_database` writes storage version 64 (DB_FILE_STORAGE_VERSION `v1.1.0`),
which DuckDB 1.1 to 1.5 open with every view binding. Only the installed duckdb is needed
here: the format is read from the file's header (a checksum, the magic bytes `DUCK`, then
the storage version number, a little-endian uint64) and from DuckDB's own tag.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from conftest import SCENARIO_NOW, build_scenario, write_foreign_file

import queries
from queries.relations import catalog
from recorder.cache import refresh
from recorder.errors import UserError
from recorder.schemas import TABLES
from recorder.views import create_parquet_views

STORAGE_VERSION_NUMBER = 64  # what DuckDB 1.0 and 1.1 write; 1.2 to 1.5 write 65 to 68
STORAGE_VERSION_TAG = "v1.0.0+"  # DuckDB's tag for it: the oldest version that opens it


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    return build_scenario(tmp_path_factory.mktemp("scenario"))


def header_version(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[8:12] == b"DUCK", header
    return int.from_bytes(header[12:20], "little")


def storage_tag(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as db:
        (tags,) = db.execute(
            "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
    return tags["storage_version"]


def rows(con: duckdb.DuckDBPyConnection, relation: str) -> list[dict]:
    return con.sql(f"SELECT * FROM {relation} ORDER BY ALL").to_arrow_table().to_pylist()


def test_the_file_opens_in_duckdb_1_x_and_answers_like_the_parquet_views(scenario, tmp_path):
    path = tmp_path / "cprec.duckdb"
    queries.write_database(path, scenario)
    assert header_version(path) == STORAGE_VERSION_NUMBER
    assert storage_tag(path) == STORAGE_VERSION_TAG
    assert sorted(os.listdir(tmp_path)) == ["cprec.duckdb"]  # no temporary file, no WAL
    expected = queries.connect(scenario, cache=False)
    with duckdb.connect(str(path), read_only=True) as db:
        for relation in ("executions", "stage_runs"):
            got = rows(db, relation)
            assert got and got == rows(expected, relation), relation
        assert db.sql("SELECT count(*) FROM executions").fetchall() == [(8,)]
        assert db.sql("SELECT count(*) FROM stage_runs WHERE terminal").fetchall() == [(15,)]


def test_writing_again_keeps_the_format_and_what_the_user_added(scenario, tmp_path):
    path = tmp_path / "cprec.duckdb"
    queries.write_database(path, scenario)
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE notes AS SELECT 'mine' AS note")
    queries.write_database(path, scenario)  # in place: the views replaced
    assert header_version(path) == STORAGE_VERSION_NUMBER
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.sql("SELECT note FROM notes").fetchall() == [("mine",)]
        assert db.sql("SELECT count(*) FROM executions").fetchall() == [(8,)]


def newest_format_file(path: Path, scenario: Path, *extra_sql: str) -> None:
    """A database file as DuckDB writes one by default (a cprec before this one did)."""
    with duckdb.connect(str(path), config={"storage_compatibility_version": "latest"}) as db:
        create_parquet_views(db, scenario)
        for sql in extra_sql:
            db.execute(sql)
    if storage_tag(path) == STORAGE_VERSION_TAG:
        pytest.skip(f"duckdb {duckdb.__version__} writes {STORAGE_VERSION_TAG} by default")


def test_a_file_in_a_newer_format_is_written_anew(scenario, tmp_path):
    path = tmp_path / "cprec.duckdb"
    newest_format_file(path, scenario)
    queries.write_database(path, scenario)
    assert header_version(path) == STORAGE_VERSION_NUMBER
    assert storage_tag(path) == STORAGE_VERSION_TAG
    assert sorted(os.listdir(tmp_path)) == ["cprec.duckdb"]
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.sql("SELECT count(*) FROM executions").fetchall() == [(8,)]


def test_a_file_in_a_newer_format_with_the_users_objects_is_left_alone(scenario, tmp_path):
    path = tmp_path / "cprec.duckdb"
    newest_format_file(path, scenario, "CREATE TABLE notes AS SELECT 'mine' AS note")
    before = path.read_bytes()
    with pytest.raises(UserError, match=r"holds what cprec does not write \(table main.notes\)"):
        queries.write_database(path, scenario)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cprec.duckdb"]


def test_a_failed_write_leaves_no_file(tmp_path):
    root = build_scenario(tmp_path / "data")
    write_foreign_file(root)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UserError, match="foreign.parquet"):
        queries.write_database(out / "cprec.duckdb", root)
    assert os.listdir(out) == []


def named_answers(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict]]:
    return {
        n: queries.run_query(con, n, now=SCENARIO_NOW).to_pylist() for n in queries.named_queries()
    }


@pytest.mark.parametrize("with_cache", [True, False], ids=["from-cache", "from-files"])
def test_a_materialized_file_answers_every_named_query_exactly_like_the_root(tmp_path, with_cache):
    root = build_scenario(tmp_path / "data")
    if with_cache:
        refresh(root)
    path = tmp_path / "cprec.duckdb"
    source = queries.write_database(path, root, materialize=True)
    assert source == ("the cache" if with_cache else "the Parquet files")
    assert header_version(path) == STORAGE_VERSION_NUMBER
    assert sorted(os.listdir(tmp_path)) == ["cprec.duckdb", "data"]  # renamed into place
    expected = named_answers(queries.connect(root))
    with duckdb.connect(str(path), read_only=True) as db:
        kinds = db.sql("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL")
        assert kinds.fetchall() == sorted(("cache", n) for n in [*TABLES, *catalog().names])
        views = db.sql("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal")
        # over the tables, as a reader of the query cache sees them
        plain = [r.name for r in catalog().relations if not r.params]
        assert sorted(views.fetchall()) == sorted(("main", n) for n in [*TABLES, *plain])
        assert db.sql("SELECT count(*) FROM executions").fetchall() == [(8,)]
        got = named_answers(db)
    assert got == expected
    assert sum(map(len, got.values())) == 51  # rows of all named queries over the scenario


def test_views_and_materialized_files_replace_each_other_but_never_the_users_objects(
    scenario, tmp_path
):
    path = tmp_path / "cprec.duckdb"
    queries.write_database(path, scenario)
    queries.write_database(path, scenario, materialize=True)  # views become tables
    with duckdb.connect(str(path), read_only=True) as db:  # (and views over them)
        assert db.sql("SELECT count(*) FROM duckdb_views() WHERE NOT internal "
                      "AND schema_name = 'raw'").fetchall() == [(0,)]  # fmt: skip
        assert db.sql("SELECT count(*) FROM duckdb_tables()").fetchall()[0][0] > 20
    queries.write_database(path, scenario)  # and back: tables become views
    with duckdb.connect(str(path)) as db:
        assert db.sql("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]
        db.execute("CREATE TABLE notes AS SELECT 'mine' AS note")
    before = path.read_bytes()
    with pytest.raises(UserError, match=r"holds what cprec does not write \(table main.notes\)"):
        queries.write_database(path, scenario, materialize=True)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["cprec.duckdb"]
