"""The README's promises that code can check: the CI command and every documented command."""

from pathlib import Path

from click.testing import CliRunner

from recorder.cli import main

ROOT = Path(__file__).resolve().parent.parent
TEST_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && pytest"


def test_ci_runs_the_readme_test_command():
    assert f"\n{TEST_COMMAND}\n" in (ROOT / "README.md").read_text()
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == TEST_COMMAND


def test_every_command_has_help():
    names = sorted(main.commands)
    assert names == [
        "cache", "collect", "compact", "db", "demo", "export",
        "queries", "query", "simulate", "sql",
    ]  # fmt: skip
    readme = (ROOT / "README.md").read_text()
    for name in names:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert result.output.startswith(f"Usage: main {name} [OPTIONS]"), name
        assert f"cprec {name}" in readme, name
