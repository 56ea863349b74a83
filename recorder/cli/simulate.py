"""`cprec simulate`: serve a simulated CodePipeline account until Ctrl-C."""

from __future__ import annotations

import sys

import click


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=4566, show_default=True,
              help="Port (0 picks a free one).")  # fmt: skip
@click.option("--pipelines", type=click.IntRange(0), default=20, show_default=True)
@click.option("--days", type=click.IntRange(0), default=30, show_default=True,
              help="Days of history before --now.")  # fmt: skip
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--now", help="The account's clock at start (default: today 00:00 UTC).")
@click.option("--rate", type=click.FloatRange(0), default=6.0, show_default=True,
              help="Mean executions per pipeline per day.")  # fmt: skip
@click.option("--accounts", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Accounts served (the first as before, the others with seeds +1, +2, ...); "
              "their role ARNs are printed, for `cprec collect --role-arn`.")  # fmt: skip
@click.option("--external-id", metavar="ID",
              help="The ExternalId every account's role requires (else AccessDenied).")  # fmt: skip
@click.option("--throttle-rate", type=float, default=0.0, help="Fraction of calls throttled.")
@click.option("--throttle-burst", type=int, default=0, help="Throttle the first N calls.")
@click.option("--error-rate", type=float, default=0.0, help="Fraction of calls answered 500.")
@click.option("--error-burst", type=int, default=0, help="Answer 500 to the next N calls.")
@click.option("--latency-ms", type=float, default=0.0, help="Delay added to every call.")
@click.option("--drop-rate", type=float, default=0.0, help="Fraction of responses cut off.")
@click.option("--access-denied", is_flag=True, help="Deny every CodePipeline call.")
@click.option("--api-rate", type=click.FloatRange(0), default=0.0, metavar="R",
              help="Requests/s per account, region and operation, a token bucket as AWS's "
              "(0: unlimited).")  # fmt: skip
@click.option("--api-burst", type=click.FloatRange(0), default=0.0, metavar="N",
              help="Tokens a bucket holds at most [default: twice the rate].")  # fmt: skip
@click.option("--api-rate-for", "api_rates", multiple=True, metavar="OPERATION=R",
              callback=lambda ctx, param, value: _operation_rates(value),
              help="Another rate for one operation, e.g. GetPipelineExecution=10 "
              "(repeatable).")  # fmt: skip
@click.option("--neighbour-share", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              metavar="F",
              help="Share of every bucket other tools of the account spend.")  # fmt: skip
@click.option("--vanish", multiple=True, metavar="NAME",
              help="Pipeline listed but gone for every other call (repeatable).")  # fmt: skip
def simulate(
    host, port, pipelines, days, seed, now, rate, accounts, external_id, **fault_options
) -> None:
    """Serve a simulated CodePipeline account until Ctrl-C.

    It speaks the AWS JSON protocol over HTTP (and STS GetCallerIdentity and AssumeRole).
    """
    from recorder.simulator.command import build_server, faults_from  # botocore: when run
    from recorder.simulator.sts import role_arn

    faults = faults_from(**fault_options, seed=seed)
    server = build_server(host=host, port=port, pipelines=pipelines, days=days, seed=seed,
                          now=now, rate=rate, faults=faults, accounts=accounts,
                          external_id=external_id)  # fmt: skip
    roles = [role_arn(a) for a in server.sts.accounts] if accounts > 1 or external_id else []
    click.echo("\n".join([server.endpoint_url, *roles]))
    sys.stdout.flush()  # whoever started us may be waiting for these lines on a pipe
    # botocore signs every request, so any credentials do; the simulator checks none.
    command = (
        f"  cprec collect --endpoint-url {server.endpoint_url} "
        f"--region {server.account.region} --data sim-data"
    )
    if not roles:
        click.echo(
            "Record it from another shell (the simulator accepts any credentials):\n"
            "  export AWS_ACCESS_KEY_ID=simulated AWS_SECRET_ACCESS_KEY=simulated\n" + command,
            err=True,
        )
    else:
        flags = [f"--role-arn {r}" for r in roles]
        flags += [f"--external-id {external_id}"] if external_id else []
        click.echo(
            f"Record its {len(roles)} accounts from another shell, through the roles above "
            "(any credentials may assume them):\n"
            "  export AWS_ACCESS_KEY_ID=simulated AWS_SECRET_ACCESS_KEY=simulated\n"
            + " \\\n      ".join([command, *flags]),
            err=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _operation_rates(values: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    rates = []
    for value in values:
        operation, _, rate = value.partition("=")
        try:
            rates.append((operation, float(rate)))
        except ValueError:
            raise click.BadParameter(f"{value!r} is not OPERATION=RATE") from None
        if not operation or rates[-1][1] <= 0:
            raise click.BadParameter(f"{value!r} is not OPERATION=RATE (a positive rate)")
    return tuple(rates)
