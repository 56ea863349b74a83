"""Many accounts in one run: `cprec collect --role-arn` through STS AssumeRole, over HTTP
against the simulator holding several accounts (conftest.serve_accounts: 3 pipelines and
2 days each; 123456789012 seed 7: 18 executions, 72 action executions; 200000000001
seed 8: 35 and 129).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from click.testing import CliRunner
from conftest import SIM_NOW, serve_accounts

from recorder.cli import main
from recorder.errors import EXIT_PARTIAL, EXIT_USAGE
from recorder.reader import connect
from recorder.simulator.command import simulated_accounts
from recorder.simulator.sts import role_arn

OWN, MEMBER, UNKNOWN = "123456789012", "200000000001", "999999999999"
ROLE = {a: role_arn(a) for a in (OWN, MEMBER, UNKNOWN)}


def collect_cli(srv, root, *args: str):
    return CliRunner().invoke(
        main,
        ["collect", "--data", str(root), "--endpoint-url", srv.endpoint_url, *args],
        catch_exceptions=False,
    )  # fmt: skip


def rows(root, sql: str) -> list[tuple]:
    return connect(root, cache=False).execute(sql).fetchall()


def model_counts(srv) -> dict[str, tuple[int, int, int]]:
    """account -> (pipelines, executions, action executions) the simulator holds."""
    return {
        a.account_id: (
            len(a.pipeline_names()),
            sum(len(a.all_executions(n)) for n in a.pipeline_names()),
            sum(len(a.all_action_executions(n)) for n in a.pipeline_names()),
        )
        for a in srv.sts.accounts.values()
    }


def recorded_counts(root) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(account, region) -> (pipelines, executions, action executions) recorded."""
    found = rows(
        root,
        "SELECT account_id, region, count(DISTINCT pipeline), count(*), "
        "(SELECT count(*) FROM action_executions a "
        " WHERE a.account_id = e.account_id AND a.region = e.region) "
        "FROM executions e GROUP BY ALL ORDER BY ALL",
    )
    return {(a, r): tuple(n) for a, r, *n in found}


def runs(root) -> list[tuple]:
    return rows(
        root,
        "SELECT account_id, region, status, pipelines_recorded, api_calls_json, errors_json "
        "FROM collection_runs ORDER BY account_id, region",
    )


def calls(api_calls_json: str, *names: str) -> tuple[int, ...]:
    counted = json.loads(api_calls_json)
    return tuple(counted.get(n, 0) for n in names)


# --- the collector ---------------------------------------------------------------------


def test_two_accounts_two_regions_each_under_its_own_account_id(tmp_path):
    with serve_accounts() as srv:
        result = collect_cli(srv, tmp_path, "--role-arn", ROLE[OWN], "--role-arn", ROLE[MEMBER],
                             "--region", "us-east-1", "--region", "eu-west-1")  # fmt: skip
        model = model_counts(srv)
        served = dict(srv.calls)
    assert result.exit_code == 0, result.output
    assert model == {OWN: (3, 18, 72), MEMBER: (3, 35, 129)}
    # the simulator answers every region alike: each region holds the account's model
    assert recorded_counts(tmp_path) == {
        (OWN, "eu-west-1"): model[OWN],
        (OWN, "us-east-1"): model[OWN],
        (MEMBER, "eu-west-1"): model[MEMBER],
        (MEMBER, "us-east-1"): model[MEMBER],
    }
    pipelines = rows(tmp_path, "SELECT DISTINCT account_id, pipeline FROM pipelines ORDER BY ALL")
    assert pipelines == [
        (OWN, "billing-feature-store-dev"),
        (OWN, "payments.web-dev"),
        (OWN, "search-reports-prod-eu"),
        (MEMBER, "billing-reports-dev"),
        (MEMBER, "growth-reports-dev"),
        (MEMBER, "growth-scheduler-prod-eu"),
    ]
    # one run row per account and region; AssumeRole and the account's GetCallerIdentity
    # are counted with its first region
    got = [(a, r, s, n, calls(c, "AssumeRole", "GetCallerIdentity"), e) for a, r, s, n, c, e in
           runs(tmp_path)]  # fmt: skip
    assert got == [
        (OWN, "eu-west-1", "succeeded", 3, (0, 0), "[]"),
        (OWN, "us-east-1", "succeeded", 3, (1, 1), "[]"),
        (MEMBER, "eu-west-1", "succeeded", 3, (0, 0), "[]"),
        (MEMBER, "us-east-1", "succeeded", 3, (1, 1), "[]"),
    ]
    # 2 AssumeRole, 3 GetCallerIdentity: the collector's own (counted in no row), 1 per role
    assert (served["AssumeRole"], served["GetCallerIdentity"]) == (2, 3)
    # the log lines name the account where they name the region
    assert [
        re.sub(r"\d+\.\d s$", "<n> s", line.split(" ", 2)[2]) for line in result.output.splitlines()
    ] == [
        f"account={OWN} region=us-east-1: collecting 3 of 3 pipelines",
        f"account={OWN} region=us-east-1: recorded 3 of 3 pipelines: 200 rows, 35 API calls, "
        "0 throttled",
        f"account={OWN} region=eu-west-1: collecting 3 of 3 pipelines",
        f"account={OWN} region=eu-west-1: recorded 3 of 3 pipelines: 200 rows, 33 API calls, "
        "0 throttled",
        f"account={MEMBER} region=us-east-1: collecting 3 of 3 pipelines",
        f"account={MEMBER} region=us-east-1: recorded 3 of 3 pipelines: 337 rows, 52 API calls, "
        "0 throttled",
        f"account={MEMBER} region=eu-west-1: collecting 3 of 3 pipelines",
        f"account={MEMBER} region=eu-west-1: recorded 3 of 3 pipelines: 337 rows, 50 API calls, "
        "0 throttled",
        f"built the query cache {tmp_path}/.cache/cprec.duckdb: 164 files in <n> s",
    ]


def test_without_a_role_the_credentials_own_account_as_before(tmp_path):
    with serve_accounts() as srv:
        result = collect_cli(srv, tmp_path, "--quiet")
        model = model_counts(srv)
        served = dict(srv.calls)
    assert result.exit_code == 0 and result.output == ""
    assert recorded_counts(tmp_path) == {(OWN, "us-east-1"): model[OWN]}  # (3, 18, 72)
    assert "AssumeRole" not in served and served["GetCallerIdentity"] == 1
    ((_, _, _, _, api_calls, _),) = runs(tmp_path)
    assert calls(api_calls, "GetCallerIdentity") == (1,)


def test_external_id_is_passed_and_a_wrong_one_fails_only_that_account(tmp_path):
    with serve_accounts(external_ids={MEMBER: "s3cret"}) as srv:
        wrong = collect_cli(srv, tmp_path / "wrong", "--quiet", "--external-id", "guess",
                            "--role-arn", ROLE[MEMBER], "--role-arn", ROLE[OWN])  # fmt: skip
        right = collect_cli(srv, tmp_path / "right", "--quiet", "--external-id", "s3cret",
                            "--role-arn", ROLE[MEMBER], "--role-arn", ROLE[OWN])  # fmt: skip
        model = model_counts(srv)
    assert wrong.exit_code == EXIT_PARTIAL
    (line,) = wrong.output.splitlines()
    assert line.split(" ", 2)[2] == (
        f"account={MEMBER}: account not recorded: cannot assume {ROLE[MEMBER]}: AccessDenied: "
        f"User: arn:aws:iam::{OWN}:user/simulator is not authorized to perform: sts:AssumeRole "
        f"on resource: {ROLE[MEMBER]}"
    )
    # OWN has no ExternalId configured: it takes any
    assert recorded_counts(tmp_path / "wrong") == {(OWN, "us-east-1"): model[OWN]}
    assert right.exit_code == 0 and right.output == ""
    assert recorded_counts(tmp_path / "right") == {
        (OWN, "us-east-1"): model[OWN],  # (3, 18, 72)
        (MEMBER, "us-east-1"): model[MEMBER],  # (3, 35, 129)
    }


def test_a_denied_account_is_one_line_exit_1_and_the_others_are_recorded(tmp_path):
    with serve_accounts() as srv:
        result = collect_cli(srv, tmp_path, "--quiet", "--log-format", "json",
                             "--role-arn", ROLE[UNKNOWN], "--role-arn", ROLE[MEMBER])  # fmt: skip
        model = model_counts(srv)
    assert result.exit_code == EXIT_PARTIAL
    (line,) = result.output.splitlines()
    logged = json.loads(line)
    assert (logged["level"], logged["account"], logged["region"]) == ("ERROR", UNKNOWN, None)
    assert logged["message"].startswith(f"account not recorded: cannot assume {ROLE[UNKNOWN]}: "
                                        "AccessDenied: ")  # fmt: skip
    assert "Traceback" not in result.output
    # the member, whole: every execution and action execution the simulator holds
    assert recorded_counts(tmp_path) == {(MEMBER, "us-east-1"): model[MEMBER]}  # (3, 35, 129)
    got = [(a, r, s, n, calls(c, "AssumeRole"), [x["error"] for x in json.loads(e)])
           for a, r, s, n, c, e in runs(tmp_path)]  # fmt: skip
    assert got == [
        (MEMBER, "us-east-1", "succeeded", 3, (1,), []),
        (UNKNOWN, "us-east-1", "failed", 0, (1,), [logged["message"].split(": ", 1)[1]]),
    ]


def test_a_malformed_role_arn_is_exit_2_one_line_and_nothing_is_asked_or_written(tmp_path):
    root = tmp_path / "data"
    with serve_accounts() as srv:
        for bad in ("arn:aws:iam::12345:role/cprec-reader",  # not 12 digits
                    "arn:aws:iam::123456789012:user/cprec-reader",  # a user
                    "arn:aws:sts::123456789012:assumed-role/cprec-reader/cprec",
                    "cprec-reader"):  # fmt: skip
            result = collect_cli(srv, root, "--role-arn", ROLE[MEMBER], "--role-arn", bad)
            assert result.exit_code == EXIT_USAGE
            assert result.output.splitlines() == [
                f"Error: --role-arn {bad!r} is not an IAM role ARN "
                "(like arn:aws:iam::123456789012:role/cprec-reader)"
            ]
        other = ROLE[MEMBER].replace("cprec-reader", "other")
        twice = collect_cli(srv, root, "--role-arn", ROLE[MEMBER], "--role-arn", other)
        assert twice.exit_code == EXIT_USAGE and len(twice.output.splitlines()) == 1
        assert "same account" in twice.output
        served = dict(srv.calls)
    assert served == {} and not root.exists()


def test_role_arn_file_with_comments_and_blank_lines(tmp_path):
    roles = tmp_path / "roles.txt"
    roles.write_text(
        "# the accounts of the delivery org\n"
        "\n"
        f"{ROLE[OWN]}\n"
        f"   {ROLE[MEMBER]}   # payments\n"
        "# arn:aws:iam::999999999999:role/retired\n"
    )
    with serve_accounts() as srv:
        result = collect_cli(srv, tmp_path / "d", "--quiet", "--role-arn-file", str(roles))
        model = model_counts(srv)
        empty = tmp_path / "empty.txt"
        empty.write_text("# nothing yet\n\n")
        none = collect_cli(srv, tmp_path / "e", "--role-arn-file", str(empty))
        missing = collect_cli(srv, tmp_path / "e", "--role-arn-file", str(tmp_path / "nope"))
    assert result.exit_code == 0, result.output
    assert recorded_counts(tmp_path / "d") == {
        (OWN, "us-east-1"): model[OWN],  # (3, 18, 72)
        (MEMBER, "us-east-1"): model[MEMBER],  # (3, 35, 129)
    }
    assert none.exit_code == EXIT_USAGE
    assert none.output.splitlines() == [f"Error: --role-arn-file {empty} names no role"]
    assert missing.exit_code == EXIT_USAGE
    assert missing.output.splitlines() == [
        f"Error: --role-arn-file {tmp_path / 'nope'}: No such file or directory"
    ]
    assert not (tmp_path / "e").exists()


def test_role_arns_from_the_environment(tmp_path):
    with serve_accounts(external_ids={MEMBER: "s3cret"}) as srv:
        env = {
            "CPREC_DATA": str(tmp_path),
            "CPREC_ENDPOINT_URL": srv.endpoint_url,
            "CPREC_ROLE_ARN": f"{ROLE[OWN]} {ROLE[MEMBER]}",
            "CPREC_EXTERNAL_ID": "s3cret",
            "CPREC_QUIET": "1",
        }
        result = CliRunner().invoke(main, ["collect"], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and result.output == ""
    assert [a for a, *_ in runs(tmp_path)] == [OWN, MEMBER]


def test_assumed_credentials_are_renewed_by_botocore_during_a_run(tmp_path, fast_backoff):
    # Credentials that live 30 s are inside botocore's 10-minute mandatory refresh window
    # from the start: it renews them before every request (an hour's credentials would be
    # renewed once, 15 minutes before expiry). The simulator refuses expired ones.
    with serve_accounts(session_seconds=30) as srv:
        result = collect_cli(srv, tmp_path, "--quiet", "--role-arn", ROLE[MEMBER])
        model = model_counts(srv)
        served = dict(srv.calls)
    assert result.exit_code == 0 and result.output == ""
    assert recorded_counts(tmp_path) == {(MEMBER, "us-east-1"): model[MEMBER]}
    codepipeline = sum(
        n for op, n in served.items() if op not in ("AssumeRole", "GetCallerIdentity")
    )
    assert served["AssumeRole"] > codepipeline / 2  # renewed again and again, by botocore


# --- the simulator's STS ---------------------------------------------------------------


def sts_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("sts")


def client(srv, service: str, **keys):
    return boto3.client(service, endpoint_url=srv.endpoint_url, region_name="us-east-1", **keys)


def test_simulated_assume_role_selects_the_account_by_access_key():
    with serve_accounts(external_ids={MEMBER: "s3cret"}, session_seconds=0) as srv:
        sts = client(srv, "sts")
        answer = sts.assume_role(RoleArn=ROLE[MEMBER], RoleSessionName="cprec", ExternalId="s3cret")
        body = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
        validate_parameters(body, sts_model().operation_model("AssumeRole").output_shape)
        assert answer["AssumedRoleUser"]["Arn"] == (
            f"arn:aws:sts::{MEMBER}:assumed-role/cprec-reader/cprec"
        )
        creds = answer["Credentials"]
        # session_seconds=0: already expired, and refused as AWS refuses them
        keys = {"aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}  # fmt: skip
        with pytest.raises(ClientError) as expired:
            client(srv, "codepipeline", **keys).list_pipelines()
        assert expired.value.response["Error"]["Code"] == "ExpiredTokenException"
        with pytest.raises(ClientError) as expired:
            client(srv, "sts", **keys).get_caller_identity()
        assert expired.value.response["Error"]["Code"] == "ExpiredToken"

        srv.sts.session_seconds = 3600
        creds = sts.assume_role(RoleArn=ROLE[MEMBER], RoleSessionName="cprec",
                                ExternalId="s3cret")["Credentials"]  # fmt: skip
        keys = {"aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}  # fmt: skip
        who = client(srv, "sts", **keys).get_caller_identity()
        assert (who["Account"], who["Arn"]) == (
            MEMBER, f"arn:aws:sts::{MEMBER}:assumed-role/cprec-reader/cprec"
        )  # fmt: skip
        listed = client(srv, "codepipeline", **keys).list_pipelines()["pipelines"]
        assert sorted(p["name"] for p in listed) == sorted(
            srv.sts.accounts[MEMBER].pipeline_names()
        )
        # any other credentials: the first account, as before
        assert client(srv, "sts").get_caller_identity()["Account"] == OWN

        for role, extra in ((ROLE[UNKNOWN], {}), (ROLE[MEMBER], {}),
                            (ROLE[MEMBER], {"ExternalId": "guess"})):  # fmt: skip
            with pytest.raises(ClientError) as denied:
                sts.assume_role(RoleArn=role, RoleSessionName="cprec", **extra)
            error = denied.value.response
            assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
                "AccessDenied", 403
            )  # fmt: skip
            assert error["Error"]["Message"].endswith(f"sts:AssumeRole on resource: {role}")


def test_simulated_accounts_are_distinct_and_deterministic():
    first = simulated_accounts(3, pipelines=4, days=3, seed=7, now=SIM_NOW)
    again = simulated_accounts(3, pipelines=4, days=3, seed=7, now=SIM_NOW)
    assert [a.account_id for a in first] == [OWN, MEMBER, "200000000002"]
    assert [a.seed for a in first] == [7, 8, 9]
    names = [tuple(a.pipeline_names()) for a in first]
    assert len(set(names)) == 3 and names == [tuple(a.pipeline_names()) for a in again]
    for a, b in zip(first, again, strict=True):
        for name in a.pipeline_names():
            assert a.all_executions(name) == b.all_executions(name)


def test_cprec_simulate_accounts_prints_roles_that_collect_records(tmp_path):
    argv = [sys.executable, "-m", "recorder.cli", "simulate", "--port", "0", "--pipelines", "2",
            "--days", "1", "--now", "2026-11-01T00:00:00Z", "--accounts", "2",
            "--external-id", "s3cret"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url, *roles = [proc.stdout.readline().strip() for _ in range(3)]
        result = CliRunner().invoke(
            main,
            ["collect", "--data", str(tmp_path), "--endpoint-url", url, "--quiet",
             "--external-id", "s3cret", *[x for r in roles for x in ("--role-arn", r)]],
            catch_exceptions=False,
        )  # fmt: skip
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert roles == [ROLE[OWN], ROLE[MEMBER]]
    assert result.exit_code == 0, result.output
    assert [a for a, *_ in runs(tmp_path)] == [OWN, MEMBER]
    assert f"--role-arn {ROLE[MEMBER]}" in err and "--external-id s3cret" in err
