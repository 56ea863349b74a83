"""`cost`: what the pipelines cost by AWS CodePipeline's rules (sql/_library.sql).

The hand-built scenario (UTC, 2026). Prices: AWS's (0.002 per V2 action minute, 1.00 per
V1 active pipeline month, 1 free V1 pipeline per account and month, 30 free days after
creation) except 10 free V2 minutes per account and month (PRICES; AWS gives 100), and
eu-west-1 at 0.003 per minute. Minutes are rounded up per action execution: "n min".

Account A = 111111111111, us-east-1:
  web  V2 (created 2025-06-01; only version 3 recorded, the executions ran version 2: the
       first recorded version after it gives the type)
    W1 Succeeded  01-31 23:50  Source/Checkout  23:50:00-23:50:30      30 s   -> 1 min (Jan)
                               Build/Compile    23:50:30-23:51:30      60 s   -> 1 min (Jan)
                               Approval/Approve 23:51:30-23:59:00      Approval: not billed
                               Deploy/Release   23:59:00-02-01 00:01:30  150 s -> 3 min, in
                                                February: the month it ended (across
                                                midnight and the month boundary)
    W2 Failed     02-03 10:00  Source/Checkout  10:00:00-10:00:59.999999  -> 1 min
                               Build/Compile    10:01:00-10:05:00 F   240 s -> 4 min, retried
                               Build/Compile    10:10:00-10:14:00.000001 F     -> 5 min
  api  version 1 V1, version 2 V2 (created 2025-06-01)
    P0 Succeeded  02-01 10:00  v1  Source/Checkout 10:00-10:01 (V1: billed per month)
    P1 Superseded 02-02 09:00  v2  Source/Checkout 09:00-09:02          -> 2 min
                                   Build/Compile   09:02:00-09:12:30 Abandoned 630 s -> 11
    P2 Stopped    02-02 12:00  v2  Source/Checkout 12:00-12:01          -> 1 min
                                   Build/Scan      12:01-12:20 owner Custom: not billed
                                   Build/Compile   12:01-12:03          -> 2 min
    P3 InProgress 02-04 08:00  v2  Source/Checkout 08:00-08:01          -> 1 min
                                   Build/Compile   from 08:01 InProgress: billed when it ends
  old     V1 (created 2025-01-01): O1 01-05 Build 5 min, O2 02-10 Build 5 min
  legacy  V1 (created 2026-01-10): L1 01-20 (10 days old: free), L3 02-01 (22 days: free),
          L2 02-15 (36 days: active)
Account B = 222222222222, eu-west-1:
  svc  V2: S1 02-05 Build 00:00:00-00:11:00.5  660.5 s -> 12 min
Account C = 333333333333, us-east-1:
  nodef  no definition recorded: N1 02-06 Build 2 min; its type, and so its cost, unknown

A's February V2 minutes in the order they ended (10 free):
   end           rows                 min  before  free  billed  cost
   02-01 00:01   web W1 Release        3     0      3     0
   02-02 09:02   api P1 Checkout       2     3      2     0
   02-02 09:12   api P1 Compile       11     5      5     6     0.012 Superseded
   02-02 12:01   api P2 Checkout       1    16      0     1     0.002 Stopped
   02-02 12:03   api P2 Compile        2                  2     0.004 Stopped
   02-03 10:00   web W2 Checkout       1                  1     0.002 Failed
   02-03 10:05   web W2 Compile #1     4                  4     0.008 Failed, retried
   02-03 10:14   web W2 Compile #2     5                  5     0.010 Failed
   02-04 08:01   api P3 Checkout       1                  1     0.002
January: web W1 Checkout 1 + Compile 1 = 2 minutes, all free.
A's V1 months: January: old (O1 01-05), the only active one: free. February: api (P0
02-01 10:00), old (O2 02-10), legacy (L2 02-15): api first, so free; old and legacy 1.00.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from conftest import SIM_NOW, query_rows, run

import queries
from queries import cost
from recorder.cli import main
from recorder.cli.query import BY
from recorder.errors import UserError
from recorder.simulator import Account, SimulatorServer
from recorder.store import write_rows

A, B, C = "111111111111", "222222222222", "333333333333"
PRICES_TOML = """\
free_action_minutes = 10
[regions.eu-west-1]
action_minute = 0.003
"""


def at(text: str) -> datetime:
    """'01-31 23:50:30' or '01-31 23:50:30.5' (2026), UTC."""
    return datetime.fromisoformat(f"2026-{text}+00:00")


class Account_:
    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region
        self.rows: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))

    def common(self, recorded: datetime) -> dict:
        return {"account_id": self.account, "region": self.region, "run_id": "run-1",
                "recorded_at": recorded}  # fmt: skip

    def pipeline(self, name: str, versions: dict[int, str | None], created: str) -> None:
        for version, ptype in versions.items():
            self.rows[name]["pipelines"].append({
                **self.common(at("03-01 00:00:00")), "dt": date(2026, 3, 1),
                "pipeline_version": version, "pipeline_type": ptype,
                "created": datetime.fromisoformat(f"{created}T00:00:00+00:00"),
            })  # fmt: skip

    def run(self, pipeline, eid, status, start, actions, *, version=1):
        """`actions`: (stage, action, status, start, end or None, category, owner)."""
        start = at(start)
        self.rows[pipeline]["executions"].append({
            **self.common(start), "dt": start.date(), "execution_id": eid, "status": status,
            "start_time": start, "last_update_time": start, "pipeline_version": version,
        })  # fmt: skip
        for n, (stage, action, st, s, e, category, owner) in enumerate(actions, 1):
            self.rows[pipeline]["action_executions"].append({
                **self.common(at(e or s)), "dt": start.date(), "execution_id": eid,
                "action_execution_id": f"{eid}-a{n}", "pipeline_version": version,
                "stage": stage, "action": action, "status": st, "start_time": at(s),
                "last_update_time": at(e or s), "category": category, "owner": owner,
            })  # fmt: skip

    def write(self, root) -> None:
        for pipeline, tables in self.rows.items():
            for table, rows in tables.items():
                write_rows(root, table, rows, pipeline=pipeline, run_id="run-1")


S, F = "Succeeded", "Failed"


def src(s, e, st=S):
    return ("Source", "Checkout", st, s, e, "Source", "AWS")


def build(s, e, st=S, action="Compile", owner="AWS"):
    return ("Build", action, st, s, e, "Build", owner)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cost") / "data"
    a, b, c = Account_(A, "us-east-1"), Account_(B, "eu-west-1"), Account_(C, "us-east-1")
    a.pipeline("web", {3: "V2"}, "2025-06-01")
    a.run("web", "W1", S, "01-31 23:50:00", [
        src("01-31 23:50:00", "01-31 23:50:30"),
        build("01-31 23:50:30", "01-31 23:51:30"),
        ("Approval", "Approve", S, "01-31 23:51:30", "01-31 23:59:00", "Approval", "AWS"),
        ("Deploy", "Release", S, "01-31 23:59:00", "02-01 00:01:30", "Deploy", "AWS"),
    ], version=2)  # fmt: skip
    a.run("web", "W2", F, "02-03 10:00:00", [
        src("02-03 10:00:00", "02-03 10:00:59.999999"),
        build("02-03 10:01:00", "02-03 10:05:00", F),
        build("02-03 10:10:00", "02-03 10:14:00.000001", F),
    ], version=2)  # fmt: skip
    a.pipeline("api", {1: "V1", 2: "V2"}, "2025-06-01")
    a.run("api", "P0", S, "02-01 10:00:00", [src("02-01 10:00:00", "02-01 10:01:00")])
    a.run("api", "P1", "Superseded", "02-02 09:00:00", [
        src("02-02 09:00:00", "02-02 09:02:00"),
        build("02-02 09:02:00", "02-02 09:12:30", "Abandoned"),
    ], version=2)  # fmt: skip
    a.run("api", "P2", "Stopped", "02-02 12:00:00", [
        src("02-02 12:00:00", "02-02 12:01:00"),
        build("02-02 12:01:00", "02-02 12:20:00", action="Scan", owner="Custom"),
        build("02-02 12:01:00", "02-02 12:03:00"),
    ], version=2)  # fmt: skip
    a.run("api", "P3", "InProgress", "02-04 08:00:00", [
        src("02-04 08:00:00", "02-04 08:01:00"),
        build("02-04 08:01:00", None, "InProgress"),
    ], version=2)  # fmt: skip
    a.pipeline("old", {1: None}, "2025-01-01")  # no type recorded: V1, as AWS says
    a.run("old", "O1", S, "01-05 00:00:00", [build("01-05 00:00:00", "01-05 00:05:00")])
    a.run("old", "O2", S, "02-10 00:00:00", [build("02-10 00:00:00", "02-10 00:05:00")])
    a.pipeline("legacy", {1: "V1"}, "2026-01-10")
    a.run("legacy", "L1", S, "01-20 00:00:00", [build("01-20 00:00:00", "01-20 00:05:00")])
    a.run("legacy", "L3", S, "02-01 00:00:00", [build("02-01 00:00:00", "02-01 00:05:00")])
    a.run("legacy", "L2", S, "02-15 00:00:00", [build("02-15 00:00:00", "02-15 00:05:00")])
    b.pipeline("svc", {1: "V2"}, "2025-06-01")
    b.run("svc", "S1", S, "02-05 00:00:00", [build("02-05 00:00:00", "02-05 00:11:00.5")])
    c.run("nodef", "N1", S, "02-06 00:00:00", [build("02-06 00:00:00", "02-06 00:02:00")])
    for account in (a, b, c):
        account.write(root)
    return root


@pytest.fixture(scope="module")
def con(root):
    return queries.connect(root)


@pytest.fixture(scope="module")
def prices(con, tmp_path_factory):
    file = tmp_path_factory.mktemp("prices") / "prices.toml"
    file.write_text(PRICES_TOML)
    return cost.prices(con, file)


COLUMNS = (
    "action_executions", "minutes", "billable_minutes", "free_minutes", "active_months",
    "free_months", "cost", "failed_cost", "superseded_cost", "stopped_cost", "retried_cost",
)  # fmt: skip


def rows(con, **kw) -> list[tuple]:
    return query_rows(con, "cost", **kw)


def test_by_pipeline(con, prices):
    assert queries.run_query(con, "cost", prices=prices).column_names == [
        "account_id", "region", "pipeline", "pipeline_type", *COLUMNS,
    ]  # fmt: skip
    assert rows(con, prices=prices) == [
        # nodef: no definition recorded, so no type: minutes and cost unknown, not guessed
        (C, "us-east-1", "nodef", None, 1, None, None, None, 0, 0, None, None, None, None, None),
        # old: Jan free (the only active V1), Feb 1.00 (api was active first)
        (A, "us-east-1", "legacy", "V1", 3, 0.0, 0, 0, 1, 0, 1.0, 0.0, 0.0, 0.0, 0.0),
        (A, "us-east-1", "old", "V1", 2, 0.0, 0, 0, 2, 1, 1.0, 0.0, 0.0, 0.0, 0.0),
        # api V2: minutes 2 + 10.5 + 1 + 2 + 1 = 16.5; billable 2 + 11 + 1 + 2 + 1 = 17 (the
        # Custom Scan: 0); free 2 + 5 = 7; cost (17 - 7) x 0.002 = 0.020, of which P1's
        # 6 billed minutes 0.012 Superseded, P2's 3 minutes 0.006 Stopped
        (A, "us-east-1", "api", "V2", 6, 16.5, 17, 7, 0, 0, 0.02, 0.0, 0.012, 0.006, 0.0),
        # web: minutes 0.5 + 1 + 2.5 + 59.999999/60 + 4 + 240.000001/60 = 13 (the approval
        # is not billed); billable 1 + 1 + 3 + 1 + 4 + 5 = 15; free 2 (Jan) + 3 (Feb);
        # cost (15 - 5) x 0.002 = 0.020, all W2's (Failed); its first Compile 0.008 retried
        (A, "us-east-1", "web", "V2", 7, 13.0, 15, 5, 0, 0, 0.02, 0.02, 0.0, 0.0, 0.008),
        # svc: 660.5 s = 11.008333 min -> 12; 10 free (B's own); 2 x 0.003 (eu-west-1)
        (B, "eu-west-1", "svc", "V2", 1, 11.008333, 12, 10, 0, 0, 0.006, 0.0, 0.0, 0.0, 0.0),
        # api V1: P0 Checkout (billed per month); active in Feb, the free one
        (A, "us-east-1", "api", "V1", 1, 0.0, 0, 0, 1, 1, 0.0, 0.0, 0.0, 0.0, 0.0),
    ]  # fmt: skip


def test_by_account_and_month(con, prices):
    assert rows(con, prices=prices, by="account") == [
        (C, 1, None, None, None, 0, 0, None, None, None, None, None),
        # A: 7 + 7 + 2 + 3 actions; 13 + 16.5 minutes; 15 + 17 billable; 5 + 7 free;
        # months: api 1 + old 2 + legacy 1, 2 free; 0.020 + 0.020 + 1.00 + 1.00
        (A, 19, 29.5, 32, 12, 4, 2, 2.04, 0.02, 0.012, 0.006, 0.008),
        (B, 1, 11.008333, 12, 10, 0, 0, 0.006, 0.0, 0.0, 0.0, 0.0),
    ]  # fmt: skip
    assert rows(con, prices=prices, by="month") == [
        # January: W1 Checkout, Compile, Approve; O1; L1. 0.5 + 1 minutes, 2 billable, free
        (date(2026, 1, 1), 5, 1.5, 2, 2, 1, 1, 0.0, 0.0, 0.0, 0.0, 0.0),
        # February holds nodef's unknown cost: the month's figures are unknown
        (date(2026, 2, 1), 16, None, None, None, 3, 1, None, None, None, None, None),
    ]  # fmt: skip
    # without C: A's and B's February: 15 actions; 29.5 + 11.008333 - 1.5 minutes; 32 + 12
    # - 2 billable; 10 + 10 free; 3 active V1, 1 free; 0.040 + 0.006 + 2.00
    assert rows(con, prices=prices, by="month", accounts=["1*", "2*"])[1] == (
        date(2026, 2, 1), 15, 39.008333, 42, 20, 3, 1, 2.046, 0.02, 0.012, 0.006, 0.008,
    )  # fmt: skip


def test_by_action_puts_a_v1_month_on_no_stage(con, prices):
    assert rows(con, prices=prices, by="action", pipelines=["api"]) == [
        # P1 Compile 11 (5 free), P2 Compile 2: (6 + 2) x 0.002
        (A, "us-east-1", "api", "V2", "Build", "Compile", 2, 12.5, 13, 5, 0, 0, 0.016, 0.0,
         0.012, 0.004, 0.0),
        # 2 + 1 + 1 minutes, 2 free: 2 x 0.002 (P2's Stopped, P3's still running)
        (A, "us-east-1", "api", "V2", "Source", "Checkout", 3, 4.0, 4, 2, 0, 0, 0.004, 0.0,
         0.0, 0.002, 0.0),
        # then the rows of no cost, by type, stage (none first) and action: api's V1 month
        # (the free one) on no stage, its V1 action, and a custom action (not billed)
        (A, "us-east-1", "api", "V1", None, None, 0, 0.0, 0, 0, 1, 1, 0.0, 0.0, 0.0, 0.0,
         0.0),
        (A, "us-east-1", "api", "V1", "Source", "Checkout", 1, 0.0, 0, 0, 0, 0, 0.0, 0.0, 0.0,
         0.0, 0.0),
        (A, "us-east-1", "api", "V2", "Build", "Scan", 1, 0.0, 0, 0, 0, 0, 0.0, 0.0, 0.0,
         0.0, 0.0),
    ]  # fmt: skip


def test_every_grouping_adds_up_to_the_same_bill(con, prices):
    for by in BY:
        table = queries.run_query(con, "cost", prices=prices, by=by, accounts=["1*", "2*"])
        assert round(sum(table.column("cost").to_pylist()), 9) == 2.046, by
        assert sum(table.column("billable_minutes").to_pylist()) == 44, by


def test_free_minutes_are_allotted_over_the_whole_month(con, prices):
    """--since 02-02 12:00 leaves out web's Release and api's P1, which took A's 10 free
    February minutes: P2 and later pay every minute, as on the bill."""
    since = at("02-02 12:00:00")
    got = rows(con, prices=prices, since=since, accounts=[A])
    assert got == [
        # old O2 (02-10) and legacy L2 (02-15) are in the window; api's P0 (02-01), the
        # free V1 pipeline of February, is not: old and legacy pay 1.00 each
        (A, "us-east-1", "legacy", "V1", 1, 0.0, 0, 0, 1, 0, 1.0, 0.0, 0.0, 0.0, 0.0),
        (A, "us-east-1", "old", "V1", 1, 0.0, 0, 0, 1, 0, 1.0, 0.0, 0.0, 0.0, 0.0),
        # W2: 59.999999/60 + 4 + 240.000001/60 = 9 minutes, 1 + 4 + 5 billable, none free
        (A, "us-east-1", "web", "V2", 3, 9.0, 10, 0, 0, 0, 0.02, 0.02, 0.0, 0.0, 0.008),
        # P2 Checkout 1, Scan 0, Compile 2; P3 Checkout 1: 4 x 0.002
        (A, "us-east-1", "api", "V2", 4, 4.0, 4, 0, 0, 0, 0.008, 0.0, 0.0, 0.006, 0.0),
    ]  # fmt: skip


def test_aws_prices_and_the_price_per_minute(con):
    # AWS's 100 free minutes a month cover every V2 minute here; V1 as before
    assert rows(con, by="account", accounts=["1*", "2*"]) == [
        (A, 19, 29.5, 32, 32, 4, 2, 2.0, 0.0, 0.0, 0.0, 0.0),
        (B, 1, 11.008333, 12, 12, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0),
    ]  # fmt: skip
    # --price-per-minute replaces every region's price; no free minutes (a prices file)
    no_free = cost.aws_prices(con) | {"free_action_minutes": 0}
    one = cost.prices(con, per_minute=Decimal("0.001")) | {"free_action_minutes": 0}
    assert cost.aws_prices(con)["action_minute"] == Decimal("0.002")
    # B: 12 x 0.002 (AWS's price in every region), then 12 x 0.001
    assert rows(con, by="account", accounts=[B], prices=no_free)[0][7] == 0.024
    assert rows(con, by="account", accounts=[B], prices=one)[0][7] == 0.012
    # the dearest price a file may give, times 12 minutes, is still a cost (no overflow)
    dear = cost.prices(con, per_minute=Decimal("9999999999.99999999")) | {"free_action_minutes": 0}
    assert rows(con, by="account", accounts=[B], prices=dear)[0][7] == 119999999999.99999988


def test_the_cli(root, tmp_path):
    prices_file = tmp_path / "p.toml"
    prices_file.write_text(PRICES_TOML)
    args = ["query", "cost", "--data", str(root), "--by", "account", "--format", "csv"]
    result = CliRunner().invoke(main, [*args, "--prices", str(prices_file), "--region", "us-*"])
    assert result.exit_code == 0, result.output
    # --region selects A's and C's rows; A's free minutes are still A's whole account's
    assert result.stdout.splitlines() == [
        "account_id,action_executions,minutes,billable_minutes,free_minutes,active_months,"
        "free_months,cost,failed_cost,superseded_cost,stopped_cost,retried_cost",
        "333333333333,1,,,,0,0,,,,,",
        "111111111111,19,29.5,32,12,4,2,2.04,0.02,0.012,0.006,0.008",
    ]
    result = CliRunner().invoke(main, [*args, "--price-per-minute", "0.001"])
    assert result.stdout.splitlines()[2] == (
        "111111111111,19,29.5,32,32,4,2,2.0,0.0,0.0,0.0,0.0"
    )  # 100 free minutes: only the V1 months cost


@pytest.mark.parametrize(
    "args, message",
    [
        (["query", "dora", "--by", "month"],
         "Error: --by applies to the cost query only, not dora"),
        (["query", "dora", "--price-per-minute", "1"],
         "Error: --price-per-minute applies to the cost query only, not dora"),
        (["query", "cost", "--by", "week"], "Error: Invalid value for '--by': 'week' is not one"),
        (["query", "cost", "--price-per-minute", "-1"],
         "Error: Invalid value for '--price-per-minute': '-1' is not a number of 0 or more"),
        (["query", "cost", "--prices", "{file}"], "Error: {file}: action_minut is not a price "
         "(known: currency, action_minute, active_pipeline_month, free_action_minutes, "
         "free_active_pipelines, free_days, regions)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(root, tmp_path, args, message):
    file = tmp_path / "typo.toml"
    file.write_text("action_minut = 0.002\n")
    args = [a.replace("{file}", str(file)) for a in args]
    result = CliRunner().invoke(main, [*args, "--data", str(root)])
    assert result.exit_code != 0
    assert result.output.splitlines()[-1].startswith(message.replace("{file}", str(file)))


@pytest.mark.parametrize(
    "text, message",
    [
        ("action_minute = -0.1", "action_minute must be a price, 0 or more"),
        ("action_minute = 0.000000001", "action_minute: 1E-9 has more than 8 decimal places"),
        ("free_days = 1.5", "free_days must be a whole number, 0 to 999999"),
        ("action_minute = nan", "action_minute must be a price, 0 or more"),
        ("action_minute = inf", "action_minute must be a price, 0 or more"),
        ("active_pipeline_month = 1e400", "active_pipeline_month: 1E+400 has more than 8 decimal"),
        ("free_days = 100000000000", "free_days must be a whole number, 0 to 999999"),
        ("free_action_minutes = 1000000", "free_action_minutes must be a whole number, 0 to"),
        ("currency = 3", 'currency must be a currency code, such as "USD"'),
        ("[regions.x]\nfree_days = 3", "regions.x.free_days is not a regional price"),
        ("regions = 3", "regions must be tables [regions.<region>]"),
        ("action_minute = ", "is not a TOML prices file"),
    ],
)
def test_a_bad_prices_file_is_named(con, tmp_path, text, message):
    file = tmp_path / "prices.toml"
    file.write_text(text)
    with pytest.raises(UserError) as info:
        cost.prices(con, file)
    assert message in str(info.value)


def test_by_choices_are_queries_own():
    assert BY == cost.BY


# --- one month of the simulated account, recomputed here in plain Python -----------------


def test_a_simulated_month_recomputed_in_python(tmp_path):
    """October 2026 of a simulated account (recorded over HTTP), from the deduplicated
    tables, by the rules of the pricing page written again here: the query agrees."""
    root = tmp_path / "data"
    acct = Account(pipelines=5, days=40, seed=11, now=SIM_NOW)
    with SimulatorServer(acct) as srv:
        run(root, srv, acct)
    con = queries.connect(root, cache=False)
    october = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    types = {}  # (pipeline, version) -> type
    created = {}
    for pipeline, version, ptype, made in con.execute(
        "SELECT pipeline, pipeline_version, pipeline_type, created FROM pipelines"
    ).fetchall():
        types[pipeline, version] = ptype or "V1"
        created[pipeline] = min(made, created.get(pipeline, made))

    def type_of(pipeline, version):
        known = sorted(v for p, v in types if p == pipeline)
        before = [v for v in known if v <= version]
        return types[pipeline, before[-1] if before else known[0]]

    assert {t for t in types.values()} == {"V1", "V2"}  # the month has both kinds
    billed = []  # (end, id, pipeline, minutes)
    for pipeline, version, aid, category, owner, status, start, end in con.execute(
        "SELECT pipeline, pipeline_version, action_execution_id, category, owner, status, "
        "start_time, last_update_time FROM action_executions"
    ).fetchall():
        if status not in ("Succeeded", "Failed", "Abandoned") or not october[0] <= end < october[1]:
            continue
        if type_of(pipeline, version) != "V2" or category == "Approval" or owner == "Custom":
            continue
        micros = (end - start) // timedelta(microseconds=1)
        billed.append((end, aid, pipeline, math.ceil(micros / 60_000_000)))
    billed.sort()
    free, per_pipeline = 100, defaultdict(lambda: [0, 0])  # billable, free
    for _, _, pipeline, minutes in billed:
        taken = min(free, minutes)
        free -= taken
        per_pipeline[pipeline][0] += minutes
        per_pipeline[pipeline][1] += taken
    months = {}
    for pipeline, version, status, start in con.execute(
        "SELECT pipeline, pipeline_version, status, start_time FROM executions"
    ).fetchall():
        if (october[0] <= start < october[1] and status != "Cancelled"
                and type_of(pipeline, version) == "V1"
                and start > created[pipeline] + timedelta(days=30)):  # fmt: skip
            months[pipeline] = min(start, months.get(pipeline, start))
    free_v1 = min(months, key=lambda p: (months[p], p)) if months else None
    expected = {}
    for pipeline, (minutes, taken) in per_pipeline.items():
        expected[pipeline, "V2"] = (minutes, taken, Decimal(minutes - taken) * Decimal("0.002"))
    for pipeline in months:
        expected[pipeline, "V1"] = (0, 0, Decimal(0 if pipeline == free_v1 else 1))
    assert len(billed) > 100 and months  # minutes beyond the free ones, and V1 months
    got = {
        (r["pipeline"], r["pipeline_type"]): (
            r["billable_minutes"],
            r["free_minutes"],
            Decimal(str(r["cost"])),
        )
        for r in queries.run_query(con, "cost", since=october[0], until=october[1]).to_pylist()
        if r["billable_minutes"] or r["active_months"]
    }
    assert got == expected


def test_cost_in_a_database_file(root, tmp_path, prices):
    """`cprec db` carries the rules: the macros answer in the file as `cost` does."""
    import duckdb

    path = tmp_path / "cprec.duckdb"
    assert CliRunner().invoke(main, ["db", str(path), "--data", str(root)]).exit_code == 0
    con = duckdb.connect(str(path), read_only=True)
    # A's V2 minutes at AWS's prices (100 free: nothing to pay), then at PRICES
    assert con.execute(
        "SELECT sum(billable_minutes), sum(free_minutes), sum(cost) "
        "FROM action_costs(aws_prices()) WHERE account_id = '111111111111'"
    ).fetchall() == [(32, 32, Decimal(0))]
    assert con.execute(
        "SELECT sum(cost) FROM action_costs($p) WHERE account_id = '111111111111'", {"p": prices}
    ).fetchall() == [(Decimal("0.04"),)]  # (15 + 17 - 12) x 0.002
    assert con.execute(
        "SELECT pipeline, month, free, cost FROM pipeline_month_costs(aws_prices()) "
        "WHERE account_id = '111111111111' ORDER BY month, first_active"
    ).fetchall() == [
        ("old", date(2026, 1, 1), True, Decimal(0)),
        ("api", date(2026, 2, 1), True, Decimal(0)),
        ("old", date(2026, 2, 1), False, Decimal(1)),
        ("legacy", date(2026, 2, 1), False, Decimal(1)),
    ]
