"""Storage contract: layout, file format, atomic writes, write order, lock, stored state."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recorder import store
from recorder.collect import WRITE_ORDER
from recorder.errors import EXIT_LOCKED, UserError
from recorder.known import Known, load_known, to_us
from recorder.lock import LockedError, data_lock
from recorder.root import DataRoot
from recorder.schemas import TABLES
from recorder.store import TMP_DIR, Batch, write_rows

T0 = datetime(2026, 10, 1, 8, 30, 0, 123456, tzinfo=UTC)
COMMON = {"account_id": "123456789012", "region": "us-east-1", "run_id": "r1", "recorded_at": T0}


def execution(eid: str, start: datetime, status: str = "Succeeded", **kw) -> dict:
    return {
        **COMMON,
        "execution_id": eid,
        "status": status,
        "start_time": start,
        "last_update_time": start + timedelta(minutes=5),
        "dt": start.date(),
        **kw,
    }


def hive(root: Path, table: str) -> str:
    return (
        f"read_parquet('{root}/{table}/*/*/*.parquet', hive_partitioning = true, "
        "union_by_name = true, hive_types = {'pipeline': VARCHAR, 'dt': DATE})"
    )


def test_layout_names_types_and_format(tmp_path):
    for name in ("svc.api@prod-1_x", "42"):
        write_rows(
            tmp_path,
            "executions",
            [execution(f"{name}-a", T0), execution(f"{name}-b", T0 + timedelta(days=1))],
            pipeline=name,
            run_id="r1",
        )
    dirs = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("executions/*/*"))
    assert dirs == [
        "executions/pipeline=42/dt=2026-10-01",
        "executions/pipeline=42/dt=2026-10-02",
        "executions/pipeline=svc.api@prod-1_x/dt=2026-10-01",
        "executions/pipeline=svc.api@prod-1_x/dt=2026-10-02",
    ]
    files = sorted(tmp_path.glob("executions/*/*/*.parquet"))
    assert len(files) == 4 and all(f.name.startswith("part-r1-") for f in files)
    meta = pq.ParquetFile(files[0])
    assert meta.metadata.row_group(0).column(0).compression == "ZSTD"
    schema = meta.schema_arrow
    assert "pipeline" not in schema.names and "dt" not in schema.names  # keys in the path only
    assert schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT pipeline, typeof(pipeline), dt, execution_id, epoch_us(start_time) "
        f"FROM {hive(tmp_path, 'executions')} ORDER BY pipeline, dt"
    ).fetchall()
    assert [r[:4] for r in rows] == [
        ("42", "VARCHAR", date(2026, 10, 1), "42-a"),
        ("42", "VARCHAR", date(2026, 10, 2), "42-b"),
        ("svc.api@prod-1_x", "VARCHAR", date(2026, 10, 1), "svc.api@prod-1_x-a"),
        ("svc.api@prod-1_x", "VARCHAR", date(2026, 10, 2), "svc.api@prod-1_x-b"),
    ]
    assert rows[0][4] == to_us(T0)  # microseconds survive


def test_collection_runs_have_no_pipeline_partition(tmp_path):
    row = {**COMMON, "status": "succeeded", "dt": T0.date()}
    (path,) = write_rows(tmp_path, "collection_runs", [row], pipeline=None, run_id="r1")
    assert path.parent == tmp_path / "collection_runs" / "dt=2026-10-01"


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(table, where, **kw):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(store.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_rows(tmp_path, "executions", [execution("a", T0)], pipeline="p", run_id="r1")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_clean_tmp_removes_leftovers(tmp_path):
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "x.parquet.tmp").write_bytes(b"partial")
    assert DataRoot.of(tmp_path).clean_tmp(TMP_DIR) == 1
    assert list((tmp_path / ".tmp").iterdir()) == []
    assert DataRoot.of(tmp_path / "missing").clean_tmp(TMP_DIR) == 0


def test_batch_writes_in_order_and_never_holds_more_than_its_limit(tmp_path, monkeypatch):
    seen = []
    real = store.write_rows

    def spy(root, table, rows, **kw):
        seen.append((table, len(rows)))
        return real(root, table, rows, **kw)

    monkeypatch.setattr(store, "write_rows", spy)
    common = {k: v for k, v in COMMON.items()}
    batch = Batch(tmp_path, "p", "r1", common, ("action_executions", "executions"), limit=3)
    row = {k: v for k, v in execution("e1", T0).items() if k not in COMMON and k != "dt"}

    def action(n):
        return [{"execution_id": "e1", "action_execution_id": f"a{n}"}]

    batch.add({"action_executions": action(1)}, T0.date())
    batch.add({"executions": [row], "action_executions": action(2)}, T0.date())
    assert seen == [] and batch.buffered == 3  # exactly the limit: nothing written yet
    batch.add({"action_executions": action(3)}, T0.date())  # 3 + 1 > 3: flush first
    # children before their execution, whatever order they were added in
    assert seen == [("action_executions", 2), ("executions", 1)]
    assert batch.buffered == 1 and batch.peak == 3
    batch.flush()
    assert seen[-1] == ("action_executions", 1)
    assert dict(batch.written) == {"action_executions": 3, "executions": 1}
    assert batch.buffered == 0 and batch.peak == 3
    with pytest.raises(ValueError, match="no write order"):
        batch.add({"stage_states": [{"stage": "x"}]}, T0.date())


EXECUTION_GROUP = ("executions", "execution_revisions", "execution_variables", "action_executions")


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 7, 100])
@pytest.mark.parametrize("order", list(itertools.permutations(EXECUTION_GROUP)))
def test_no_execution_is_published_before_any_of_its_children(tmp_path, monkeypatch, order, limit):
    """Whatever the flush bound and the order of a group's tables: at every publish, each
    published execution row has every one of its children published already (what a
    crash at that publish leaves; issue "Never lose history", the 568 -> 566 loss)."""
    published: dict[str, set] = {t: set() for t in EXECUTION_GROUP}
    checked = []

    def spy(root, table, rows, **kw):
        for r in rows:
            if table == "executions":
                # its children, every one, are already out
                for child, ids in expected[r["execution_id"]].items():
                    assert ids <= published[child], (table, r["execution_id"], child)
                checked.append(r["execution_id"])
            published[table].add(r.get("action_execution_id") or (r["execution_id"], r.get("name")))
        return []

    monkeypatch.setattr(store, "write_rows", spy)
    batch = Batch(tmp_path, "p", "r1", dict(COMMON), WRITE_ORDER, limit=limit)
    expected = {}
    for i in range(4):  # executions with 0..3 rows of each child table
        e = f"e{i}"
        group = {
            "executions": [{"execution_id": e}],
            "execution_revisions": [{"execution_id": e, "name": f"r{j}"} for j in range(i)],
            "execution_variables": [{"execution_id": e, "name": f"v{j}"} for j in range(3 - i)],
            "action_executions": [
                {"execution_id": e, "action_execution_id": f"{e}a{j}"} for j in range(i % 2 + 1)
            ],
        }
        expected[e] = {
            "execution_revisions": {(e, f"r{j}") for j in range(i)},
            "execution_variables": {(e, f"v{j}") for j in range(3 - i)},
            "action_executions": {f"{e}a{j}" for j in range(i % 2 + 1)},
        }
        batch.add({t: group[t] for t in order}, T0.date())
    batch.flush()
    assert checked == ["e0", "e1", "e2", "e3"]


def test_lock_is_exclusive_and_released(tmp_path):
    with data_lock(tmp_path) as path:
        assert path.read_text().strip() == str(os.getpid())
        with pytest.raises(LockedError) as err:
            with data_lock(tmp_path):
                pass
        assert err.value.exit_code == EXIT_LOCKED == 75
        assert "\n" not in err.value.message and str(os.getpid()) in err.value.message
    with data_lock(tmp_path):  # released on exit
        pass


def test_unusable_data_root_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(UserError) as err:
        with data_lock(tmp_path / "file" / "data"):
            pass
    assert err.value.exit_code == 2
    assert err.value.message == f"cannot use data root {tmp_path}/file/data: Not a directory"


def test_lock_dies_with_its_holder(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; from recorder.lock import data_lock\n"
        "with data_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError):
            with data_lock(tmp_path):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 5
        while True:
            try:
                with data_lock(tmp_path):
                    break
            except LockedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()


def test_load_known_from_stored_rows(tmp_path):
    assert load_known(tmp_path, "123456789012", "us-east-1", open_floor=T0) == {}

    write_rows(
        tmp_path,
        "executions",
        [
            execution("e-old", T0 - timedelta(days=50)),  # before the lookback: not loaded
            execution("e-open", T0 - timedelta(days=3), status="InProgress"),
            execution("e-done", T0),
            execution("e-ancient-open", T0 - timedelta(days=400), status="InProgress"),
        ],
        pipeline="p",
        run_id="r1",
    )
    later = {**COMMON, "recorded_at": T0 + timedelta(hours=1), "run_id": "r2"}
    write_rows(
        tmp_path,
        "executions",
        [{**execution("e-done", T0, status="Failed"), **later}],
        pipeline="p",
        run_id="r2",
    )
    other_region = {**execution("x", T0 + timedelta(days=9)), "region": "eu-west-1"}
    write_rows(tmp_path, "executions", [other_region], pipeline="p", run_id="r3")
    write_rows(
        tmp_path,
        "stage_states",
        [
            {**COMMON, "snapshot_at": T0, "state_hash": "h1", "stage": "s", "dt": T0.date()},
            {
                **later,
                "snapshot_at": T0 + timedelta(1),
                "state_hash": "h2",
                "stage": "s",
                "dt": T0.date(),
            },
        ],  # fmt: skip
        pipeline="42",
        run_id="r1",
    )
    write_rows(
        tmp_path,
        "pipelines",
        [
            {**COMMON, "pipeline_version": 3, "dt": T0.date()},
            {**later, "pipeline_version": 2, "dt": T0.date()},  # rolled back: latest wins
        ],
        pipeline="p",
        run_id="r1",
    )
    known = load_known(
        tmp_path,
        "123456789012",
        "us-east-1",
        overlap=timedelta(hours=6),
        open_floor=T0 - timedelta(days=365),
    )
    assert known == {
        "p": Known(
            watermark=T0,
            oldest_open=T0 - timedelta(days=3),
            executions={
                "e-open": ("InProgress", to_us(T0 - timedelta(days=3) + timedelta(minutes=5))),
                "e-done": ("Failed", to_us(T0 + timedelta(minutes=5))),
            },
            version=2,
        ),
        "42": Known(state_hash="h2"),
    }


def test_files_are_sorted_and_encoded_as_store_says(tmp_path):
    # Two stages alternating, start times descending (API order): the file holds them
    # by stage, action, start_time.
    rows = []
    for i in range(8):
        stage = ["Source", "Build"][i % 2]
        rows.append({
            **COMMON, "dt": T0.date(), "execution_id": f"e{i // 2}",
            "action_execution_id": f"a{7 - i}", "stage": stage, "action": stage.lower(),
            "status": "Succeeded", "start_time": T0 + timedelta(minutes=8 - i),
            "pipeline_version": 1,
        })  # fmt: skip
    (path,) = write_rows(tmp_path, "action_executions", rows, pipeline="p", run_id="r1")

    assert store.sort_key("action_executions") == [
        "account_id", "region", "stage", "action", "start_time", "action_execution_id",
    ]  # fmt: skip
    f = pq.ParquetFile(path)
    back = f.read()
    assert back.schema == TABLES["action_executions"].schema  # types from the Parquet types
    assert [(r["stage"], r["action_execution_id"]) for r in back.to_pylist()] == [
        ("Build", "a0"), ("Build", "a2"), ("Build", "a4"), ("Build", "a6"),
        ("Source", "a1"), ("Source", "a3"), ("Source", "a5"), ("Source", "a7"),
    ]  # fmt: skip
    meta = f.metadata
    assert meta.metadata is None  # no ARROW:schema in the footer
    assert (meta.num_row_groups, meta.row_group(0).num_rows) == (1, 8)
    chunks = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i)
        for i in range(meta.num_columns)
    }
    assert {c.compression for c in chunks.values()} == {"ZSTD"}
    assert not any(c.is_stats_set for c in chunks.values())
    encodings = {name: c.encodings for name, c in chunks.items()}
    delta, plain, dictionary = (
        ("RLE", "DELTA_BINARY_PACKED"), ("RLE", "PLAIN"), ("PLAIN", "RLE", "RLE_DICTIONARY"),
    )  # fmt: skip
    # ints and timestamps delta-encoded; strings with repeating values (2 distinct in 8
    # rows) dictionary-encoded; unique, constant or NULL strings plain
    assert {n: e for n, e in encodings.items() if e == delta} == dict.fromkeys(
        ["recorded_at", "pipeline_version", "start_time", "last_update_time"], delta
    )
    assert {n: e for n, e in encodings.items() if e == dictionary} == dict.fromkeys(
        ["stage", "action"], dictionary
    )
    assert {n: e for n, e in encodings.items() if e == plain}.keys() == set(encodings) - {
        "recorded_at", "pipeline_version", "start_time", "last_update_time", "stage", "action",
    }  # fmt: skip
    assert store.parquet_options(back)["use_dictionary"] == ["stage", "action"]
