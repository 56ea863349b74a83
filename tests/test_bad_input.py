"""Every bad input a user can give is one line `Error: ...` and a non-zero exit code,
never a traceback, and changes nothing in the data root."""

from __future__ import annotations

import errno
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import build_scenario

from recorder.cache import cache_path
from recorder.cli import main

FAR = "99999999d"
EDGE = "9999-12-31T23:59:59-12:00"  # valid ISO, but its UTC is past year 9999


class _NotAws(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = b"<html><body>Hello</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def not_aws():
    server = HTTPServer(("127.0.0.1", 0), _NotAws)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def data(tmp_path):
    return build_scenario(tmp_path / "data")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every data file and its bytes (lock files come and go with readers)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def one_line(result, code: int = 2, *needles: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.output)
    err = result.stderr
    assert "Traceback" not in result.output
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


COLLECT = ["collect", "--region", "us-east-1"]
CASES = [
    # (arguments, what the line says)
    ([*COLLECT, "--endpoint-url", "notaurl"], "is not a URL"),
    ([*COLLECT, "--endpoint-url", "{not_aws}"], "does not answer as AWS does"),
    ([*COLLECT, "--endpoint-url", "{not_aws}", "--since", FAR], "out of the range"),
    ([*COLLECT, "--endpoint-url", "{not_aws}", "--since", EDGE], "out of the range"),
    ([*COLLECT, "--endpoint-url", "{not_aws}", "--since", "2999-01-01"], "is after now"),
    (["collect", "--region", "not a region"], "is not an AWS region name"),
    (["collect", "--region", ""], "is not an AWS region name"),
    (["collect", "--region", "US-EAST-1"], "is not an AWS region name"),
    (["query", "stage-durations", "--since", FAR], "out of the range"),
    (["query", "stage-durations", "--since", EDGE], "out of the range"),
    (["query", "stage-durations", "--until", FAR], "out of the range"),
    (["export", "--dir", "{tmp}/out", "--since", FAR], "out of the range"),
    (["query", "stage-durations", "-o", "/nonexistent/x.csv"], "cannot write /nonexistent"),
    (["query", "stage-durations", "-o", "/proc/cprec.csv"], "cannot write /proc/cprec.csv"),
    (["sql", "SELECT 1", "-o", "/nonexistent/x.csv"], "cannot write /nonexistent"),
    (["sql", "SELEC 1"], "SQL: Parser Error"),
    (["sql", "SELECT * FROM nope"], "SQL: Catalog Error"),
    (["query", "no-such-query"], "unknown query 'no-such-query'"),
    (["export", "--dir", "/proc/cprec-out"], "cannot create /proc/cprec-out"),
    (["db", "/nonexistent/x.duckdb"], "/nonexistent is not a directory"),
]


@pytest.mark.parametrize(("args", "needle"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_value_is_one_line(data, tmp_path, not_aws, args, needle):
    before = snapshot(data)
    args = [a.format(not_aws=not_aws, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(main, [*args, "--data", str(data)])
    one_line(result, 2, needle)
    assert snapshot(data) == before


def test_no_credentials_is_one_line_and_leaves_no_lock(tmp_path, monkeypatch, not_aws):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    root = tmp_path / "fresh"
    result = CliRunner().invoke(main, [*COLLECT, "--endpoint-url", not_aws, "--data", str(root)])
    one_line(result, 2, "no AWS credentials")
    assert not root.exists()


def test_sql_on_raw_with_a_cache_hints_at_no_cache(data):
    assert CliRunner().invoke(main, ["cache", "--data", str(data)]).exit_code == 0
    result = CliRunner().invoke(main, ["sql", "SELECT * FROM raw.executions", "--data", str(data)])
    one_line(result, 2, "add --no-cache")


def test_a_corrupt_cache_file(data):
    cache = cache_path(data)
    cache.parent.mkdir()
    cache.write_bytes(b"not a duckdb file" * 100)
    one_line(CliRunner().invoke(main, ["cache", "--data", str(data)]), 2, "cannot open the cache")
    # queries read the files instead; --rebuild replaces it
    assert CliRunner().invoke(main, ["query", "trend", "--data", str(data)]).exit_code == 0
    compacted = CliRunner().invoke(main, ["compact", "--data", str(data)])
    assert compacted.exit_code == 0 and "Traceback" not in compacted.output
    rebuilt = CliRunner().invoke(main, ["cache", "--rebuild", "--data", str(data)])
    assert rebuilt.exit_code == 0, rebuilt.output


def test_cache_where_it_cannot_write(data):
    (data / ".cache").write_text("a file where the cache directory goes")
    one_line(CliRunner().invoke(main, ["cache", "--data", str(data)]), 2, "cannot write the cache")


def test_ctrl_c_during_a_cache_build(data, monkeypatch):
    from recorder import cache

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.Cache, "_refresh_derived", interrupted)
    one_line(CliRunner().invoke(main, ["cache", "--data", str(data)]), 130, "interrupted")
    con, why = cache.open_reader(data)
    assert con is None and why  # nothing half-built is used


def test_a_full_disk_during_collect_is_exit_1_and_no_traceback(tmp_path, monkeypatch):
    from conftest import SIM_NOW

    import recorder.store
    from recorder.simulator import Account, SimulatorServer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recorder.store.pq, "write_table", full)
    acct = Account(pipelines=3, days=2, seed=5, now=SIM_NOW)
    with SimulatorServer(acct) as srv:
        result = CliRunner().invoke(
            main, [*COLLECT, "--endpoint-url", srv.endpoint_url, "--data", str(tmp_path)]
        )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 2, errors
    assert "3 pipeline(s) failed" in errors[0] and "No space left on device" in errors[0]
    assert "run not recorded" in errors[1]
    assert not list(tmp_path.rglob("*.parquet"))


def test_cprec_alone_prints_help():
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0 and "Commands:" in result.output


def test_help_summaries_are_whole():
    text = CliRunner().invoke(main, ["--help"], terminal_width=80).output
    assert "..." not in text.split("Commands:")[1]
    for option in ("CPREC_PROFILE", "CPREC_ENDPOINT_URL"):
        assert option in CliRunner().invoke(main, ["collect", "--help"]).output


def test_a_full_disk_during_compact_keeps_every_input(data, monkeypatch):
    import recorder.compact

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recorder.compact, "write_parquet_atomic", full)
    before = snapshot(data)
    result = CliRunner().invoke(main, ["compact", "--data", str(data)])
    one_line(result, 1, "No space left on device")
    assert snapshot(data) == before


def test_a_data_root_with_glob_characters_is_refused(tmp_path):
    # `d[1]` as a glob matches `d1`: its files must never answer for `d[1]`
    build_scenario(tmp_path / "d1")
    odd = build_scenario(tmp_path / "d[1]")
    for args in (["sql", "SELECT count(*) FROM executions", "--no-cache"], ["db", "x.duckdb"]):
        result = CliRunner().invoke(main, [*args, "--data", str(odd)])
        one_line(result, 2, "glob")


def test_a_memory_limit_too_small_is_one_line_and_keeps_the_cache(data, monkeypatch):
    """DuckDB's memory limit (--memory-limit, CPREC_MEMORY_LIMIT) cannot hold what a
    command needs: one line naming the limit, and the cache as it was."""
    monkeypatch.delenv("CPREC_MEMORY_LIMIT", raising=False)
    assert CliRunner().invoke(main, ["cache", "--data", str(data)]).exit_code == 0
    before = cache_path(data).read_bytes()
    tiny = ["--memory-limit", "2MB"]
    result = CliRunner().invoke(main, [*tiny, "cache", "--rebuild", "--data", str(data)])
    one_line(result, 1, "needs more memory than its 2MB limit")
    assert cache_path(data).read_bytes() == before
    result = CliRunner().invoke(main, [*tiny, "query", "dora", "--no-cache", "--data", str(data)])
    one_line(result, 2, "needs more memory than its 2MB limit")
    lots = ["--memory-limit", "lots", "query", "dora", "--data", str(data)]
    result = CliRunner().invoke(main, lots)
    one_line(result, 2, "memory limit 'lots'")
    assert "CPREC_MEMORY_LIMIT" not in os.environ  # the option's value ends with its command
