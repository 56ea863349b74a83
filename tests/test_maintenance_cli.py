"""`cprec compact` and `cprec cache` on the command line."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import build_scenario

from recorder.cli import main


def cprec(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cache_then_compact_keeps_every_answer(tmp_path):
    root = build_scenario(tmp_path / "data")
    files = len(list(root.rglob("*.parquet")))
    before = {
        name: cprec("query", name, "--data", str(root), "--format", "csv", "--no-cache").output
        for name in ("stage-durations", "failure-rates", "pipeline-summary")
    }

    built = cprec("cache", "--data", str(root))
    assert built.exit_code == 0
    assert built.output.startswith(
        f"cache {root / '.cache' / 'cprec.duckdb'}: loaded {files} files"
    )

    compacted = cprec("compact", "--data", str(root))
    assert compacted.exit_code == 0
    # Only collection_runs/dt=2026-01-07 holds two files: run-2 recorded twice. Its two
    # inputs stay for the grace period (raw.* shows their rows twice meanwhile).
    assert compacted.output == (
        "compacted 1 partition: 2 files -> 1, 2 rows -> 1 (0 open partitions left alone); "
        "0 replaced files removed, 2 kept for readers\n"
    )
    assert len(list(root.rglob("*.parquet"))) == files + 1
    again = cprec("compact", "--data", str(root), "--grace-minutes", "0")
    assert again.output.endswith("; 2 replaced files removed, 0 kept for readers\n")
    assert len(list(root.rglob("*.parquet"))) == files - 1

    for name, csv in before.items():
        for flag in ("--cache", "--no-cache"):
            out = cprec("query", name, "--data", str(root), "--format", "csv", flag).output
            assert out == csv, (name, flag)


def test_cache_flag_without_a_cache_is_one_line(tmp_path):
    root = build_scenario(tmp_path / "data")
    result = CliRunner().invoke(main, ["query", "stage-durations", "--data", str(root), "--cache"])
    assert result.exit_code == 2
    assert result.output == f"Error: cannot use the cache under {root}: no cache\n"


def test_missing_data_root_is_one_line(tmp_path):
    for command in ("compact", "cache"):
        result = CliRunner().invoke(main, [command, "--data", str(tmp_path / "nope")])
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and "is not a directory" in result.output


def test_a_corrupt_file_stops_compact_and_cache_with_one_line(tmp_path):
    root = build_scenario(tmp_path / "data")
    bad = root / "collection_runs" / "dt=2026-01-07"
    victim = sorted(bad.glob("*.parquet"))[0]
    victim.write_bytes(b"not parquet")
    files = sorted(root.rglob("*.parquet"))
    for command in ("compact", "cache"):
        result = CliRunner().invoke(main, [command, "--data", str(root)])
        assert result.exit_code == 2, command
        assert result.output.count("\n") == 1, command
        assert str(victim) in result.output, command
    assert sorted(root.rglob("*.parquet")) == files
