"""The local DuckDB cache answers exactly what the Parquet views answer, as files come and go."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import SCENARIO_NOW as NOW
from conftest import action_row, build_scenario, execution_row, t, views_read_cache

import queries
from recorder import cache as cache_mod
from recorder import layout
from recorder.cache import cache_path, mark_stale, refresh
from recorder.compact import compact
from recorder.errors import UserError
from recorder.schemas import TABLES
from recorder.store import write_rows


def answers(root, *, cache: bool, **window) -> dict[str, list[dict]]:
    con = queries.connect(root, cache=cache)
    try:
        out = {
            n: queries.run_query(con, n, now=NOW, **window).to_pylist()
            for n in queries.named_queries()
        }
        # the derived relations, stored by the cache and computed by the views
        for name in ["stage_runs", "execution_times", "failed_executions", "deploy_attempts([])"]:
            got = con.sql(f"SELECT * FROM {name} ORDER BY ALL").to_arrow_table().to_pylist()
            out[name] = [tuple(r.values()) for r in got]
        return out
    finally:
        con.close()


@pytest.fixture
def root(tmp_path):
    return build_scenario(tmp_path / "data")


def test_cache_gives_the_same_answers_as_parquet(root):
    result = refresh(root)

    assert result.files_loaded == len(list(root.rglob("part-*.parquet")))
    assert result.rows["executions"] == 8  # E1..E5, A1, A2, O1: E4 recorded twice counts once
    assert result.rows["action_executions"] == 20  # E4-a2 recorded twice counts once
    assert result.rows["collection_runs"] == 2
    assert answers(root, cache=True) == answers(root, cache=False)


def test_the_cache_computes_a_window_as_the_views_do(root):
    """With a window the cache computes what it stores for the open window only."""
    refresh(root)
    window = {"since": t("10:00:00"), "until": t("14:10:00")}
    cached = answers(root, cache=True, **window)
    assert cached == answers(root, cache=False, **window)
    # the window changes the answers, so the stored rows of the open window cannot pass
    whole = answers(root, cache=True)
    changed = [n for n in queries.named_queries() if cached[n] != whole[n]]
    assert {"stage-durations", "action-durations", "failure-rates", "rework"} <= set(changed)


def test_refresh_with_the_files_a_collector_wrote(root):
    refresh(root)
    # E5 finishes: the execution and its Build action are re-recorded, a Deploy action added.
    later = t("15:00:00")
    written = write_rows(root, "executions", [
        execution_row("E5", "Succeeded", t("14:00:00"), t("14:20:00"), recorded_at=later),
    ], pipeline="web", run_id="run-3")  # fmt: skip
    written += write_rows(root, "action_executions", [
        action_row("E5", 2, "Build", "Compile", "Succeeded", t("14:00:35"), t("14:05:00"),
                recorded_at=later),
        action_row("E5", 3, "Deploy", "Release", "Succeeded", t("14:05:10"), t("14:20:00"),
                recorded_at=later),
    ], pipeline="web", run_id="run-3")  # fmt: skip

    result = refresh(root, written=written)

    assert (result.files_loaded, result.files_gone) == (2, 0)
    assert result.rows["action_executions"] == 21
    cached = answers(root, cache=True)
    assert cached == answers(root, cache=False)
    e5 = [r for r in cached["stage_runs"] if r[3] == "E5"]
    # (stage, start, end, duration_s, status, attempts, terminal)
    assert [(r[4], r[7], r[8], r[9], r[10]) for r in e5] == [
        ("Build", 265.0, "Succeeded", 1, True),
        ("Deploy", 890.0, "Succeeded", 1, True),
        ("Source", 25.0, "Succeeded", 1, True),
    ]


@pytest.mark.parametrize("runs", [("run-a", "run-b"), ("run-b", "run-a")], ids=["a,b", "b,a"])
def test_recordings_of_the_same_time_are_chosen_as_the_views_choose(root, runs):
    """Two runs record E5 with the same recorded_at, each file reaching the cache in its
    own incremental refresh: the cache keeps the recording of the greater run_id, as the
    views do, whichever it loaded last."""
    refresh(root)
    status = {"run-a": "Stopped", "run-b": "Succeeded"}
    for run_id in runs:
        row = execution_row("E5", status[run_id], t("14:00:00"), t("14:20:00"),
                            recorded_at=t("15:00:00"))  # fmt: skip
        written = write_rows(root, "executions", [{**row, "run_id": run_id}], pipeline="web",
                             run_id=run_id)  # fmt: skip
        assert refresh(root, written=written).files_loaded == 1

    def e5(*, cache: bool) -> list[dict]:
        con = queries.connect(root, cache=cache)
        try:
            sql = "SELECT * FROM executions WHERE execution_id = 'E5'"
            return con.sql(sql).to_arrow_table().to_pylist()
        finally:
            con.close()

    (row,) = e5(cache=False)
    assert (row["run_id"], row["status"]) == ("run-b", "Succeeded")
    assert e5(cache=True) == [row]


def test_the_rule_that_compares_two_recordings_is_the_order_that_ranks_them():
    """layout.supersedes_sql (the cache's upsert) and latest_first_sql (the views' window)
    state one rule: over every pair of recordings, NULLs and ties included, `a` wins over
    `b` exactly when `a` sorts before `b`."""
    con = duckdb.connect()
    con.execute("CREATE TABLE r (n INTEGER, recorded_at TIMESTAMPTZ, run_id VARCHAR)")
    pairs = [(at, run) for at in (None, t("10:00:00"), t("11:00:00")) for run in (None, "a", "b")]
    con.executemany("INSERT INTO r VALUES (?, ?, ?)", [(n, *p) for n, p in enumerate(pairs)])
    rank = dict(
        con.execute(f"SELECT n, rank() OVER (ORDER BY {layout.latest_first_sql()}) FROM r")
        .fetchall()
    )  # fmt: skip
    wins = con.execute(
        f"SELECT a.n, b.n, {layout.supersedes_sql('a', 'b')} FROM r a, r b ORDER BY 1, 2"
    ).fetchall()
    assert wins == [(a, b, rank[a] < rank[b]) for a in sorted(rank) for b in sorted(rank)]
    assert sum(w for _, _, w in wins) == 9 * 8 // 2  # nine distinct recordings, no tie


def test_compaction_and_deleted_partitions_are_reflected(root):
    refresh(root)
    before = answers(root, cache=False)

    compacted = compact(root, today=date(2026, 2, 1), grace=timedelta(0))
    assert compacted.partitions > 0
    assert len(compacted.removed) == compacted.files_before
    # compaction told the cache what it wrote and removed: a whole walk finds nothing new
    result = refresh(root)
    assert (result.files_loaded, result.files_gone) == (0, 0)
    assert answers(root, cache=True) == answers(root, cache=False) == before

    shutil.rmtree(root / "action_executions" / "pipeline=api")
    refresh(root)
    cached = answers(root, cache=True)
    assert cached == answers(root, cache=False)
    assert not [r for r in cached["stage_runs"] if r[2] == "api"]


def test_connect_uses_a_fresh_cache_and_falls_back_when_stale(root):
    con = queries.connect(root)
    assert not views_read_cache(con)  # no cache yet: Parquet views
    refresh(root)
    assert views_read_cache(queries.connect(root))
    assert not views_read_cache(queries.connect(root, cache=False))

    mark_stale(root, "a collector could not refresh it")
    assert not views_read_cache(queries.connect(root))
    refresh(root)  # a full refresh clears the mark
    assert views_read_cache(queries.connect(root))
    assert cache_path(root).exists()


def every_row(root, *, cache: bool) -> dict[str, list[str]]:
    """Every row of every table and of stage_runs, sorted."""
    con = queries.connect(root, cache=cache)
    try:
        names = [*TABLES, "stage_runs"]
        return {
            n: sorted(map(repr, con.sql(f"SELECT * FROM {n}").to_arrow_table().to_pylist()))
            for n in names
        }
    finally:
        con.close()


def test_a_first_build_keeps_the_latest_recording_across_batches_and_schemas(root, monkeypatch):
    """A first build appends every file's rows, then drops superseded recordings once;
    files written before a column existed are read by name. Both give exactly the views."""
    partition = next((root / "executions" / "pipeline=web").glob("dt=*"))
    source = pq.read_table(sorted(partition.glob("*.parquet"))[0])
    later = pc.add(source["recorded_at"], pa.scalar(timedelta(hours=1)))
    newer = source.set_column(source.schema.get_field_index("recorded_at"), "recorded_at", later)
    newer = newer.set_column(
        newer.schema.get_field_index("status"), "status", pa.array(["Cancelled"] * len(newer))
    )
    # an older writer's file: no stop_trigger_reason column, and the newest recording
    pq.write_table(
        newer.drop_columns(["stop_trigger_reason"]), partition / "part-old-schema.parquet"
    )
    monkeypatch.setattr(cache_mod, "BATCH_FILES", 2)  # recordings of a key in several batches

    refresh(root)

    assert every_row(root, cache=True) == every_row(root, cache=False)
    con = queries.connect(root, cache=True)
    ids = newer["execution_id"].to_pylist()
    statuses = con.execute(
        "SELECT DISTINCT status FROM executions WHERE execution_id IN (SELECT unnest($i))",
        {"i": ids},
    ).fetchall()
    assert statuses == [("Cancelled",)]
    assert answers(root, cache=True) == answers(root, cache=False)


def test_a_first_build_derives_every_row_of_a_table_larger_than_a_row_group(tmp_path):
    """Each derived table reads the ones before it inside the build's transaction. 123,000
    stage runs pass DuckDB's row group (122,880 rows), the size at which DuckDB 2.0.0 once
    read back nothing from a table created in the same transaction by `CREATE TABLE AS
    ... LIMIT 0`: every derived row must be there, and right."""
    n = 123_000
    start = t("10:00:00")
    rows = [
        action_row(f"X{i:06d}", 1, "Build", "Compile", "Succeeded", start,
                   start + timedelta(seconds=i % 600))
        for i in range(n)
    ]  # fmt: skip
    write_rows(tmp_path, "action_executions", rows, pipeline="big", run_id="run-1")
    refresh(tmp_path)
    con = queries.connect(tmp_path, cache=True)
    assert con.execute("SELECT count(*) FROM stage_runs").fetchall() == [(n,)]
    # execution_times is computed from the stage_runs rows just written: one per execution;
    # X000601's Build ran 601 % 600 = 1 s
    got = con.execute(
        "SELECT count(*), sum(total_s), max(total_s) FILTER (WHERE execution_id = 'X000601') "
        "FROM execution_times"
    ).fetchall()
    # total_s = i % 600 over 123,000 runs: 123,000 / 600 = 205 full cycles of 0..599,
    # each summing 599 * 600 / 2 = 179,700: 205 * 179,700 = 36,838,500
    assert got == [(n, 36_838_500.0, 1.0)]


def temporary_objects(root) -> int:
    """Views and macros a reader of `root` created for itself (temporary)."""
    con = queries.connect(root, cache=True)
    try:
        return con.execute(
            "SELECT (SELECT count(*) FROM duckdb_views() WHERE database_name = 'temp' "
            "AND NOT internal) + (SELECT count(*) FROM duckdb_functions() "
            "WHERE database_name = 'temp' AND function_type IN ('macro', 'table_macro'))"
        ).fetchall()[0][0]
    finally:
        con.close()


def another_version(root, part: str, *sql: str) -> None:
    """Make the cache file of `root` look written by another version of cprec whose
    `part` differs from this one's (its digest and so the version stamp), running `sql`
    in it."""
    with duckdb.connect(str(cache_path(root))) as other:
        other.execute("UPDATE cache.parts SET digest = 'other' WHERE part = $p", {"p": part})
        other.execute("UPDATE cache.version SET stamp = 'another version'")
        for statement in sql:
            other.execute(statement)


def test_a_reader_uses_the_views_and_macros_the_cache_file_holds(root):
    """A refresh stores this version's reader views and macros in the file, and a reader
    of this version creates none. A file of another version (another version stamp) is
    not read: the Parquet files answer, and with the cache required one line says why.
    The next refresh replaces its views and macros and leaves nothing of the other
    version."""
    refresh(root)
    parquet = answers(root, cache=False)
    assert temporary_objects(root) == 0
    assert answers(root, cache=True) == parquet

    # its relations differ from this version's: a window macro that keeps no row, and a
    # view this version does not have
    another_version(root, "reader", "CREATE OR REPLACE MACRO in_window(ts, since, until) AS false",
                    "CREATE VIEW gone AS SELECT 1 AS x")  # fmt: skip
    assert not views_read_cache(queries.connect(root))
    with pytest.raises(UserError, match="another version of cprec wrote it"):
        queries.connect(root, cache=True)

    result = refresh(root)
    assert result.files_loaded == 0
    assert temporary_objects(root) == 0
    assert answers(root, cache=True) == parquet
    with duckdb.connect(str(cache_path(root)), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'gone'"
                           ).fetchall() == [(0,)]  # fmt: skip


def test_a_moved_root_is_loaded_again_as_by_a_first_build(root, tmp_path):
    """The cache lists files by absolute path: after the root moves, none of them is where
    it was, so the tables are emptied and every file loaded again (not reloaded partition
    by partition into full tables); the answers are the same."""
    before = refresh(root)
    moved = tmp_path / "moved"
    shutil.move(root, moved)

    result = refresh(moved)

    files = len(list(moved.rglob("part-*.parquet")))
    assert (result.files_loaded, result.files_gone, result.partitions_reloaded) == (
        files, files, 0
    )  # fmt: skip
    assert result.rows == before.rows
    assert answers(moved, cache=True) == answers(moved, cache=False)


def test_a_refresh_by_this_version_recomputes_what_differs_and_only_that(root):
    """A cache whose rows of one relation another version's SQL computed (another digest
    of that part) is not read until a refresh by this version, even one that loads no
    file, recomputes that relation whole, and every relation that reads it; the others
    are kept as they are (here one whose rows were tampered with, to show it)."""
    refresh(root)
    parquet = answers(root, cache=False)
    another_version(root, "stage_duration_stats",
                    "DELETE FROM cache.stage_duration_stats",
                    "DELETE FROM cache.stage_retry_stats WHERE stage = 'Build'")  # fmt: skip
    assert not views_read_cache(queries.connect(root))

    result = refresh(root)

    assert result.files_loaded == 0
    with duckdb.connect(str(cache_path(root)), read_only=True) as con:
        count = "SELECT count(*) FROM cache.{} WHERE stage = 'Build'"
        assert con.execute(count.format("stage_duration_stats")).fetchall() == [(2,)]
        assert con.execute(count.format("stage_retry_stats")).fetchall() == [(0,)]  # kept
    with duckdb.connect(str(cache_path(root))) as con:  # as it was
        con.execute("DELETE FROM cache.stage_retry_stats")
        con.execute("INSERT INTO cache.stage_retry_stats "
                    "SELECT * FROM compute_stage_retry_stats(NULL, NULL)")  # fmt: skip
    assert answers(root, cache=True) == parquet


@pytest.mark.parametrize(
    "declared, refusal",
    [
        ([("r", "week", (), "SELECT * FROM {executions}")], "r: unknown grain 'week'"),
        ([("r", "name", ("limit",), "SELECT * FROM {executions}")],
         "r: unknown parameters ['limit']"),
        ([("r", "name", (), "SELECT 1")], "r: its SQL reads nothing (inputs are written {name})"),
        ([("r", "execution", (), "SELECT * FROM {pipeline_actions}")],
         "r: reads pipeline_actions, which has no execution key"),
        ([("r", "pipeline", (), "SELECT * FROM {later}")],
         "r: reads later, neither a table nor declared before it"),
        ([("p", "pipeline", (), "SELECT * FROM {executions}"),
          ("r", "execution", (), "SELECT * FROM {p}")],
         "r: a execution relation reads p, by pipeline"),
        ([("p", "pipeline", ("patterns",), "SELECT * FROM {executions}"),
          ("r", "pipeline", (), "SELECT * FROM {p}")],
         "r: reads p without its parameters ['patterns']"),
        # a horizon: a column, its SQL and {horizon} in the relation's SQL, all three
        ([("r", "pipeline", (), "SELECT * FROM {executions}", "start_time", "SELECT 1")],
         "r: a horizon is a column, a horizon SQL and {horizon}"),
        ([("r", "pipeline", (), "SELECT * FROM {executions}, {horizon}", None, "")],
         "r: a horizon is a column, a horizon SQL and {horizon}"),
        ([("r", "name", (), "SELECT * FROM {executions}, {horizon}", "start_time", "SELECT 1")],
         "r: only a pipeline relation has a horizon"),
        ([("e", "execution", (), "SELECT * FROM {executions}"),
          ("r", "pipeline", (), "SELECT * FROM {executions}, {horizon}", "start_time",
           "SELECT * FROM {new_executions}")],
         "r: its horizon reads new_executions, which it cannot"),
    ],
)  # fmt: skip
def test_the_engine_refuses_a_declaration_it_could_not_maintain(declared, refusal):
    from recorder.derive import Catalog, Relation

    with pytest.raises(ValueError) as e:
        Catalog(tuple(Relation(*d) for d in declared), "", "")
    assert str(e.value) == refusal


def test_a_horizon_reads_the_new_rows_of_a_relation_by_execution():
    from recorder.derive import Catalog, Relation

    sql = "SELECT * FROM {e}, {horizon}"
    horizon = "SELECT * FROM {new_e}, {keys}, {whole}, {stored}"
    by_execution = Relation("e", "execution", (), "SELECT * FROM {executions}")
    catalog = Catalog(
        (by_execution, Relation("r", "pipeline", (), sql, "start_time", horizon)), "", ""
    )
    assert catalog["r"].reads == ("e",)  # {horizon} is given by the engine, not read
