"""The hand-built data root of the delivery tests (tests/test_delivery.py): deployments,
lead time, change failure rate, time to restore and the DORA bands, every figure
computed by hand.

All times UTC, 2026 unless a year is given; NOW = 2026-01-15 00:00. Account
111111111111, us-east-1. S = Succeeded, F = Failed; "deploy" = the run of the deploy
stage (its time = the stage run's end, the last action's last_update_time).

Definitions (pipeline_actions; stage_index stage (category of its action)):
  shop   v1: 0 Build (Build), 1 Deploy (Deploy), 2 Canary (Deploy)  <- older layout
         v2: 0 Build (Build), 1 Deploy (Deploy), 2 Smoke (Test)     <- latest
         default deploy stage: Deploy (v1's Canary is higher, but v2 is the latest;
         Smoke is last in v2 but holds no Deploy action)
  api    v1: 0 Build (Build), 1 Deploy-eu (Deploy), 2 Deploy-us (Deploy)
         default deploy stage: Deploy-us; --deploy-stage 'Deploy-*': both
  batch  v1: 0 Release (Deploy)                  default deploy stage: Release
  legacy none recorded: no default deploy stage (its stage is named Deploy)

shop (first start 01-13 00:00). Every STANDARD run: Build from its start to the Deploy
stage's start, S; then Deploy; then (v1) Canary / (v2) Smoke, S, when Deploy succeeded.
  exec type        ver start         deploy                   revision `created`
  S1   STANDARD    1   01-13 00:00   00:10-00:20 S            01-12 22:00 (Canary 00:20-00:30)
  S2   STANDARD    2   01-13 02:00   02:10-02:30 F  failure 1 opens episode A
  S3   (NULL)      2   01-13 03:00   03:10-03:20 S  closes A  01-13 02:50
  S4   Superseded  2   01-13 05:00   none: Build 05:00-05:10, superseded at 05:40
  S5   STANDARD    2   01-13 05:20   05:40-06:00 S            artifact, created NULL
       (S3's execution_type is NULL, as older recordings: a STANDARD execution)
  R1   ROLLBACK    2   01-13 07:00   07:00-07:15 S (its only stage run; target S3)
                   R1's start rolls S5 back: failure 2 at 07:00 opens episode B;
                   R1's own deployment (a rollback deployment) closes B at 07:15
  S6   STANDARD    2   01-13 22:00   22:10-22:30 F  failure 3 opens episode C
  S7   STANDARD    2   01-13 23:00   23:10-23:20 F  failure 4, C still open
  S8   STANDARD    2   01-14 01:00   01:10-01:40 S  closes C  artifacts 01-14 00:30 and
                                                              00:00; a 'source' revision
                                                              created 01-01 (not counted)
  S9   InProgress  2   01-14 20:00   20:10- InProgress (not terminal: no attempt)

  01-13 00:20 02:30 03:20  06:00 07:00 07:15   22:30 23:20 | 01-14 01:40
        S1 S  S2 F  S3 S   S5 S  R1    R1 S    S6 F  S7 F  |       S8 S
              [--A--]            [-B-]         [-----C---------------]

api (first start 01-01 00:00). Build 00:00-00:10 S, Deploy-eu 00:10-00:20 S, then Deploy-us:
  A1   STANDARD  01-01 00:00   Deploy-us 00:20-00:30 S   created 2025-12-31 00:00
  A2   STANDARD  01-08 00:00   Deploy-us 00:20-00:40 S   created 01-05 00:00
  A3   STANDARD  01-14 00:00   Deploy-us 00:20-00:50 F   created 01-13 12:00
       A3's failure (01-14 00:50) opens an episode still open at NOW: no later deployment.

batch (first start 2025-11-16 00:00): one stage, Release, from start+20 min to start+60 min.
  B1 2025-11-16 00:00 S  created 2025-11-08 01:00 (lead  8 d)
  B2 2025-11-30 00:00 S  created 2025-11-21 01:00 (lead  9 d)
  B3 2025-12-14 00:00 S  created 2025-12-04 01:00 (lead 10 d)
  B4 2025-12-28 00:00 S  created 2025-12-17 01:00 (lead 11 d)
  B5 2026-01-10 00:00 F  (Release 00:20-01:00) failure opens an episode
  B6 2026-01-10 02:00 S  (Release 02:20-03:00) closes it; created 2025-12-29 03:00 (12 d)
  B7 2026-01-12 00:00 S  no revision recorded

legacy: L1 2025-10-01 00:00 S, Deploy 00:10-00:20 (never a deployment by default; its
  early start must not stretch the '(all)' window of `dora`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from conftest import common_columns

from recorder.store import write_rows

NOW = datetime(2026, 1, 15, tzinfo=UTC)


def at(text: str) -> datetime:
    """'01-13 02:30' (2026) or '2025-11-16 00:20', UTC."""
    if len(text) == len("01-13 02:30"):
        text = "2026-" + text
    return datetime.fromisoformat(f"{text}:00+00:00")


# pipeline -> version -> [(stage, action, category)], in stage_index order
DEFINITIONS = {
    "shop": {
        1: [("Build", "Compile", "Build"), ("Deploy", "Release", "Deploy"),
            ("Canary", "CanaryRelease", "Deploy")],
        2: [("Build", "Compile", "Build"), ("Deploy", "Release", "Deploy"),
            ("Smoke", "SmokeTest", "Test")],
    },
    "api": {
        1: [("Build", "Compile", "Build"), ("Deploy-eu", "Release", "Deploy"),
            ("Deploy-us", "Release", "Deploy")],
    },
    "batch": {1: [("Release", "Release", "Deploy")]},
}  # fmt: skip
ACTIONS = {"Build": ("Compile", "Build"), "Canary": ("CanaryRelease", "Deploy")}
ACTIONS |= {"Smoke": ("SmokeTest", "Test"), "Release": ("Release", "Deploy")}
ACTIONS |= {s: ("Release", "Deploy") for s in ("Deploy", "Deploy-eu", "Deploy-us")}


class Pipeline:
    """Rows of one pipeline's executions: one action per stage run."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[str, list[dict]] = {
            "executions": [], "action_executions": [], "execution_revisions": [],
        }  # fmt: skip

    def run(self, eid, status, start, end, stages, *, version=1, kind="STANDARD", revisions=(),
            target="S3"):  # fmt: skip
        """`stages`: (stage, status, start, end); `revisions`: (kind, name, created);
        `target`: a ROLLBACK execution's rollback_target_execution_id."""
        start, end = at(start), end and at(end)
        self.rows["executions"].append({
            **common_columns(end or start), "dt": start.date(), "execution_id": eid,
            "status": status, "start_time": start, "last_update_time": end,
            "pipeline_version": version, "execution_type": kind,
            "trigger_type": "AutomatedRollback" if kind == "ROLLBACK" else "Webhook",
            "rollback_target_execution_id": target if kind == "ROLLBACK" else None,
        })  # fmt: skip
        for n, (stage, st, s, e) in enumerate(stages, 1):
            action, category = ACTIONS[stage]
            self.rows["action_executions"].append({
                **common_columns(at(e)), "dt": start.date(), "execution_id": eid,
                "action_execution_id": f"{eid}-a{n}", "pipeline_version": version,
                "stage": stage, "action": action, "category": category, "status": st,
                "start_time": at(s), "last_update_time": at(e),
            })  # fmt: skip
        for rkind, name, created in revisions:
            self.rows["execution_revisions"].append({
                **common_columns(start), "dt": start.date(), "execution_id": eid,
                "kind": rkind, "name": name, "revision_id": f"{eid}-{name}",
                "created": created and at(created),
            })  # fmt: skip

    def write(self, root: Path) -> None:
        for table, rows in self.rows.items():
            if rows:
                write_rows(root, table, rows, pipeline=self.name, run_id="run-1")
        definition = [
            {**common_columns(NOW), "dt": NOW.date(), "pipeline_version": version,
             "stage": stage, "stage_index": i, "action": action, "action_index": 0,
             "category": category}
            for version, stages in DEFINITIONS.get(self.name, {}).items()
            for i, (stage, action, category) in enumerate(stages)
        ]  # fmt: skip
        if definition:
            write_rows(root, "pipeline_actions", definition, pipeline=self.name, run_id="run-1")


def artifact(created: str | None, name: str = "SourceOutput") -> tuple:
    return ("artifact", name, created)


def build_delivery_scenario(root: Path) -> Path:
    shop = Pipeline("shop")
    S, F = "Succeeded", "Failed"

    def build(day_hm: str, end_hm: str) -> tuple:
        return ("Build", S, day_hm, end_hm)

    shop.run("S1", S, "01-13 00:00", "01-13 00:30", [
        build("01-13 00:00", "01-13 00:10"),
        ("Deploy", S, "01-13 00:10", "01-13 00:20"),
        ("Canary", S, "01-13 00:20", "01-13 00:30"),
    ], version=1, revisions=[artifact("01-12 22:00")])  # fmt: skip
    shop.run("S2", F, "01-13 02:00", "01-13 02:30", [
        build("01-13 02:00", "01-13 02:10"),
        ("Deploy", F, "01-13 02:10", "01-13 02:30"),
    ], version=2, revisions=[artifact("01-13 01:30")])  # fmt: skip
    shop.run("S3", S, "01-13 03:00", "01-13 03:25", [
        build("01-13 03:00", "01-13 03:10"),
        ("Deploy", S, "01-13 03:10", "01-13 03:20"),
        ("Smoke", S, "01-13 03:20", "01-13 03:25"),
    ], version=2, kind=None, revisions=[artifact("01-13 02:50")])  # fmt: skip
    shop.run("S4", "Superseded", "01-13 05:00", "01-13 05:40", [
        build("01-13 05:00", "01-13 05:10"),
    ], version=2, revisions=[artifact("01-13 04:55")])  # fmt: skip
    shop.run("S5", S, "01-13 05:20", "01-13 06:05", [
        build("01-13 05:20", "01-13 05:40"),
        ("Deploy", S, "01-13 05:40", "01-13 06:00"),
        ("Smoke", S, "01-13 06:00", "01-13 06:05"),
    ], version=2, revisions=[artifact(None)])  # fmt: skip
    shop.run("R1", S, "01-13 07:00", "01-13 07:15", [
        ("Deploy", S, "01-13 07:00", "01-13 07:15"),
    ], version=2, kind="ROLLBACK", revisions=[artifact("01-13 02:50")])  # fmt: skip
    shop.run("S6", F, "01-13 22:00", "01-13 22:30", [
        build("01-13 22:00", "01-13 22:10"),
        ("Deploy", F, "01-13 22:10", "01-13 22:30"),
    ], version=2)  # fmt: skip
    shop.run("S7", F, "01-13 23:00", "01-13 23:20", [
        build("01-13 23:00", "01-13 23:10"),
        ("Deploy", F, "01-13 23:10", "01-13 23:20"),
    ], version=2)  # fmt: skip
    shop.run("S8", S, "01-14 01:00", "01-14 01:45", [
        build("01-14 01:00", "01-14 01:10"),
        ("Deploy", S, "01-14 01:10", "01-14 01:40"),
        ("Smoke", S, "01-14 01:40", "01-14 01:45"),
    ], version=2, revisions=[
        artifact("01-14 00:30"), artifact("01-14 00:00", "ConfigOutput"),
        ("source", "Checkout", "01-01 00:00"),
    ])  # fmt: skip
    shop.run("S9", "InProgress", "01-14 20:00", "01-14 20:20", [
        build("01-14 20:00", "01-14 20:10"),
        ("Deploy", "InProgress", "01-14 20:10", "01-14 20:20"),
    ], version=2, revisions=[artifact("01-14 19:00")])  # fmt: skip

    api = Pipeline("api")
    for eid, day, end, status, created in [
        ("A1", "01-01", "00:30", S, "2025-12-31 00:00"),
        ("A2", "01-08", "00:40", S, "01-05 00:00"),
        ("A3", "01-14", "00:50", F, "01-13 12:00"),
    ]:
        api.run(eid, status, f"{day} 00:00", f"{day} {end}", [
            build(f"{day} 00:00", f"{day} 00:10"),
            ("Deploy-eu", S, f"{day} 00:10", f"{day} 00:20"),
            ("Deploy-us", status, f"{day} 00:20", f"{day} {end}"),
        ], revisions=[artifact(created)])  # fmt: skip

    batch = Pipeline("batch")
    for eid, day, hour, status, created in [
        ("B1", "2025-11-16", 0, S, "2025-11-08 01:00"),
        ("B2", "2025-11-30", 0, S, "2025-11-21 01:00"),
        ("B3", "2025-12-14", 0, S, "2025-12-04 01:00"),
        ("B4", "2025-12-28", 0, S, "2025-12-17 01:00"),
        ("B5", "2026-01-10", 0, F, None),
        ("B6", "2026-01-10", 2, S, "2025-12-29 03:00"),
        ("B7", "2026-01-12", 0, S, None),
    ]:
        start, end = f"{day} {hour:02d}:00", f"{day} {hour + 1:02d}:00"
        batch.run(eid, status, start, end, [
            ("Release", status, f"{day} {hour:02d}:20", end),
        ], revisions=[artifact(created)] if created else [])  # fmt: skip

    legacy = Pipeline("legacy")
    legacy.run("L1", S, "2025-10-01 00:00", "2025-10-01 00:20", [
        ("Deploy", S, "2025-10-01 00:10", "2025-10-01 00:20"),
    ])  # fmt: skip

    for p in (shop, api, batch, legacy):
        p.write(root)
    return root
