"""A corrupt recorded file stops the collector before it fetches: one line, exit 2."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import SIM_NOW as NOW
from conftest import run

from recorder.cli import main
from recorder.simulator import Account, SimulatorServer


def test_a_corrupt_file_is_named_and_nothing_is_written(tmp_path):
    acct = Account(pipelines=2, days=2, seed=3, now=NOW)
    with SimulatorServer(acct) as srv:
        assert run(tmp_path, srv, acct).exit_code == 0
        bad = sorted((tmp_path / "executions").rglob("*.parquet"))[0]
        bad.write_bytes(b"not parquet")
        files = sorted(tmp_path.rglob("*.parquet"))
        calls = sum(srv.calls.values())
        result = CliRunner().invoke(
            main,
            [
                "collect",
                "--data",
                str(tmp_path),
                "--endpoint-url",
                srv.endpoint_url,
                "--region",
                "us-east-1",
            ],  # fmt: skip
        )
        assert sum(srv.calls.values()) == calls + 2  # GetCallerIdentity, ListPipelines
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: cannot read executions files: ")
    assert str(bad) in result.output
    assert sorted(tmp_path.rglob("*.parquet")) == files
