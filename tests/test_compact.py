"""Compaction: one sorted file per closed partition, superseded rows dropped, nothing lost."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recorder.compact import compact
from recorder.schemas import TABLES
from recorder.store import write_rows

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _exec(eid: str, status: str, recorded_min: int, run: str) -> dict:
    return {
        "dt": date(2026, 10, 1),
        "account_id": "123456789012",
        "region": "us-east-1",
        "run_id": run,
        "recorded_at": T0.replace(minute=recorded_min),
        "execution_id": eid,
        "status": status,
        "start_time": T0,
    }


def _files(root: Path, table: str = "executions") -> list[Path]:
    return sorted((root / table).rglob("*.parquet"))


def test_compact_merges_partition_keeping_latest_row(tmp_path):
    write_rows(
        tmp_path, "executions", [_exec("b", "InProgress", 1, "r1")], pipeline="p", run_id="r1"
    )
    write_rows(
        tmp_path,
        "executions",
        [_exec("b", "Succeeded", 5, "r2"), _exec("a", "Failed", 5, "r2")],
        pipeline="p",
        run_id="r2",
    )
    assert len(_files(tmp_path)) == 2

    result = compact(tmp_path, today=date(2026, 11, 1), grace=timedelta(0))

    files = _files(tmp_path)
    assert len(files) == 1
    assert files[0].parent == tmp_path / "executions" / "pipeline=p" / "dt=2026-10-01"
    assert files[0].name.startswith("compact-")
    table = pq.read_table(files[0])
    assert table.schema == TABLES["executions"].schema
    assert [(r["execution_id"], r["status"], r["run_id"]) for r in table.to_pylist()] == [
        ("a", "Failed", "r2"),
        ("b", "Succeeded", "r2"),
    ]
    assert (result.partitions, result.files_before, result.files_after) == (1, 2, 1)
    assert (result.rows_before, result.rows_after) == (3, 2)
    assert not list((tmp_path / ".tmp").iterdir())


def test_compact_leaves_open_and_single_file_partitions(tmp_path):
    write_rows(tmp_path, "executions", [_exec("a", "Failed", 1, "r1")], pipeline="p", run_id="r1")
    write_rows(tmp_path, "executions", [_exec("a", "Failed", 2, "r2")], pipeline="p", run_id="r2")
    write_rows(tmp_path, "executions", [_exec("c", "Failed", 2, "r2")], pipeline="q", run_id="r2")
    before = _files(tmp_path)

    # 2026-10-01 is not older than one day on 2026-10-02: still open.
    result = compact(tmp_path, today=date(2026, 10, 2))

    assert _files(tmp_path) == before
    assert (result.partitions, result.skipped_open) == (0, 1)


def test_compact_upgrades_older_schema_files(tmp_path):
    part = tmp_path / "executions" / "pipeline=42" / "dt=2026-10-01"
    part.mkdir(parents=True)
    old = pa.table(
        {
            "account_id": ["123456789012"],
            "region": ["us-east-1"],
            "run_id": ["r0"],
            "recorded_at": pa.array([T0], pa.timestamp("us", tz="UTC")),
            "execution_id": ["old"],
            "status": ["Succeeded"],
        }
    )
    pq.write_table(old, part / "part-r0-old.parquet")
    write_rows(
        tmp_path, "executions", [_exec("new", "Stopped", 3, "r1")], pipeline="42", run_id="r1"
    )

    compact(tmp_path, today=date(2026, 11, 1), grace=timedelta(0))

    (merged,) = _files(tmp_path)
    rows = pq.read_table(merged).to_pylist()
    assert [(r["execution_id"], r["status"], r["start_time"]) for r in rows] == [
        ("new", "Stopped", T0),
        ("old", "Succeeded", None),
    ]


def test_compaction_runs_beside_a_collector_but_not_beside_itself(tmp_path):
    import pytest

    from recorder.lock import LockedError, data_lock

    write_rows(tmp_path, "executions", [_exec("a", "Failed", 1, "r1")], pipeline="p", run_id="r1")
    write_rows(tmp_path, "executions", [_exec("a", "Failed", 2, "r2")], pipeline="p", run_id="r2")
    # A collector's temporary file in flight is not compaction's to clean.
    (tmp_path / ".tmp" / "inflight.parquet.tmp").write_bytes(b"PAR1")

    with data_lock(tmp_path, ".compact.lock", holder="compaction"):
        with pytest.raises(LockedError, match=r"another compaction \(pid \d+\) holds "):
            compact(tmp_path, today=date(2026, 11, 1), grace=timedelta(0))
    with data_lock(tmp_path):  # the collector's lock
        result = compact(tmp_path, today=date(2026, 11, 1), grace=timedelta(0))

    assert (result.partitions, result.rows_after) == (1, 1)
    assert (tmp_path / ".tmp" / "inflight.parquet.tmp").exists()


def test_compacted_file_is_sorted_and_encoded_like_a_collected_one(tmp_path):
    def action(aid: str, stage: str, minute: int, run: str) -> dict:
        return {
            **_exec("e1", "Succeeded", minute, run), "action_execution_id": aid,
            "stage": stage, "action": stage.lower(), "start_time": T0.replace(minute=minute),
        }  # fmt: skip

    first = [action(f"a{i}", ["Source", "Build"][i % 2], 40 - i, "r1") for i in range(4)]
    second = [action(f"a{i}", ["Source", "Build"][i % 2], 40 - i, "r2") for i in range(4, 8)]
    write_rows(tmp_path, "action_executions", first, pipeline="p", run_id="r1")
    write_rows(tmp_path, "action_executions", second, pipeline="p", run_id="r2")

    compact(tmp_path, today=date(2026, 11, 1), grace=timedelta(0))

    (merged,) = _files(tmp_path, "action_executions")
    f = pq.ParquetFile(merged)
    assert [(r["stage"], r["action_execution_id"]) for r in f.read().to_pylist()] == [
        ("Build", "a7"), ("Build", "a5"), ("Build", "a3"), ("Build", "a1"),
        ("Source", "a6"), ("Source", "a4"), ("Source", "a2"), ("Source", "a0"),
    ]  # fmt: skip
    meta = f.metadata
    assert meta.metadata is None
    chunks = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
    assert {c.compression for c in chunks} == {"ZSTD"}
    assert not any(c.is_stats_set for c in chunks)
    by_name = {c.path_in_schema: c.encodings for c in chunks}
    assert by_name["start_time"] == ("RLE", "DELTA_BINARY_PACKED")
    assert by_name["stage"] == by_name["action"] == ("PLAIN", "RLE", "RLE_DICTIONARY")
    assert by_name["run_id"] == ("PLAIN", "RLE", "RLE_DICTIONARY")  # r1, r2: 2 in 8 rows
    assert by_name["action_execution_id"] == by_name["account_id"] == ("RLE", "PLAIN")
