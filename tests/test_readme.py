"""The README's promises that code can check: the CI command and every documented command."""

import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import sleep

import pytest
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
        "athena-ddl", "cache", "collect", "compact", "db", "demo", "export",
        "queries", "query", "report", "simulate", "sql", "watch",
    ]  # fmt: skip
    readme = (ROOT / "README.md").read_text()
    for name in names:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert result.output.startswith(f"Usage: main {name} [OPTIONS]"), name
        assert f"cprec {name}" in readme, name
    for group, sub in (("export", "otel"),):  # subcommands
        result = CliRunner().invoke(main, [group, sub, "--help"])
        assert result.exit_code == 0, sub
        assert result.output.startswith(f"Usage: main {group} {sub} [OPTIONS]"), sub
        assert f"cprec {group} {sub}" in readme, sub


# --- the README's shell examples, run for real -----------------------------------------
#
# Every fenced block holding `$ cprec ...` lines is run in order, in one directory, as a
# new user would paste it: first `cprec demo` (into ./data), then the rest. What the
# README shows under a command must be what the command prints, except what changes
# from run to run by nature: the wall-clock time of a log line, a duration in seconds,
# the simulator's port and the directory the examples ran in. A line `...` stands for
# lines left out.

VOLATILE = [
    (re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "), "<time> "),
    (re.compile(r"\b\d+\.\d s\b"), "<n> s"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
]


def examples(text: str) -> list[tuple[str, list[str]]]:
    """(command, output lines) for every `$ ` line of a block with `$ cprec`, in order."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S):
        if "$ cprec" not in block:
            continue
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            elif found and block.startswith("$ "):
                found[-1][1].append(line)
    for _, shown in found:  # a blank line before the next `$ ` only separates them
        while shown and not shown[-1].strip():
            shown.pop()
    return found


def normal(line: str, cwd: Path) -> str:
    line = line.replace(str(cwd), "/tmp/readme").rstrip()
    for pattern, repl in VOLATILE:
        line = pattern.sub(repl, line)
    return line


def matches(expected: list[str], actual: list[str]) -> bool:
    """`expected` in order within `actual`; a `...` line skips any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and matches(expected[1:], actual[1:])


def serve_briefly(argv: list[str], env: dict, lines: int) -> list[str]:
    """`cprec simulate` serves until Ctrl-C: its first `lines` lines, then it is stopped."""
    argv = [a if a != "4599" else "0" for a in argv]  # any free port
    proc = subprocess.Popen(
        [sys.executable, "-m", "recorder.cli", *argv[1:]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        return [proc.stdout.readline().rstrip("\n") for _ in range(lines)]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def wait_past_midnight_if_near(minutes: int = 15) -> None:
    """The README's examples collect (run rows under today's date, UTC), then compact with
    `--min-age-days 0`, which leaves today's partition open: a run that crosses midnight
    UTC between the two prints another count. Such a run starts after midnight instead."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
    if midnight - now < timedelta(minutes=minutes):
        sleep((midnight - now).total_seconds() + 5)


@pytest.mark.slow  # minutes: the demo, then every example of the README
def test_readme_examples_print_what_the_readme_shows(tmp_path):
    from recorder.simulator.command import build_server

    wait_past_midnight_if_near()
    readme = (ROOT / "README.md").read_text()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CPREC_"))},
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),  # a reader's fresh machine
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "80",
        "PYTHONUNBUFFERED": "1",  # stderr and stdout interleaved as on a terminal
    }
    # What `cprec simulate ... --accounts 2 --external-id cprec-example` serves: the account
    # of every example, and a second one for "Many accounts" (credentials select it).
    server = build_server(port=0, pipelines=12, days=30, seed=7, now="2026-11-21T00:00:00Z",
                          accounts=2, external_id="cprec-example")  # fmt: skip
    ran = 0
    outputs: list[list[str]] = []
    with server as srv:
        port = srv.endpoint_url.rsplit(":", 1)[1]
        for command, shown in examples(readme):
            argv = shlex.split(command.replace("127.0.0.1:4599", f"127.0.0.1:{port}"))
            if argv[0] == "export":  # what the README tells the reader to paste
                env.update(a.split("=", 1) for a in argv[1:])
                continue
            assert argv[0] == "cprec", command
            if argv[1] == "simulate":
                actual = serve_briefly(argv, env, len(shown))
            else:
                done = subprocess.run(
                    [sys.executable, "-m", "recorder.cli", *argv[1:]],
                    cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True, timeout=300,
                )  # fmt: skip
                # `cprec watch` exits 3 when alerts fire, as the README says
                ok = (0, 3) if argv[1] == "watch" else (0,)
                assert done.returncode in ok, (command, done.stdout)
                actual = done.stdout.splitlines()
            raw = [x.replace(str(tmp_path), "/tmp/readme").rstrip() for x in actual]
            actual = [normal(x, tmp_path) for x in actual]
            expected = [normal(x, tmp_path) for x in shown]
            # (an example that still matches keeps its shown times and ports)
            outputs.append(shown if matches(expected, actual) else raw)
            if not UPDATE or "..." in shown:
                assert matches(expected, actual), (command, "\n".join(actual))
            ran += 1
    assert ran >= 10
    if UPDATE:
        (ROOT / "README.md").write_text(with_outputs(readme, outputs))


# CPREC_UPDATE_README=1: write what each example printed into the README instead of
# comparing (an example whose output holds a `...` line is still compared: edit it by hand).
UPDATE = os.environ.get("CPREC_UPDATE_README") == "1"


def with_outputs(text: str, outputs: list[list[str]]) -> str:
    """`text` with the output shown under each example (examples() order) replaced by the
    next of `outputs`, except where it holds a `...` line. `export` lines print nothing."""
    queue = iter(outputs)

    def block(match: re.Match) -> str:
        body = match.group(2)
        if "$ cprec" not in body or not body.startswith("$ "):
            return match.group(0)
        out: list[str] = []
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            out.append(lines[i])
            command = lines[i][2:]
            j = i + 1
            while j < len(lines) and not lines[j].startswith("$ "):
                j += 1
            shown = lines[i + 1 : j]
            if command.startswith("export "):
                out.extend(shown)
            else:
                actual = next(queue)
                out.extend(shown if "..." in shown else actual + [""] * (bool(shown) and
                           not shown[-1].strip() and j < len(lines)))  # fmt: skip
            i = j
        return match.group(1) + "\n".join(out) + "\n" + match.group(3)

    return re.sub(r"^(```[a-z]*\n)(.*?)^(```)", block, text, flags=re.M | re.S)
