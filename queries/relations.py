"""Every relation the named queries build on, declared once.

Each line is one relation: its name, its grain (what its rows depend on: recorder/derive.py),
its parameters and, where it has one, its horizon (recorder/derive.py). Its SQL is
`queries/sql/relations/<name>.sql`, whose `{input}` placeholders say what it reads. The
readers (over the Parquet files or the query cache) and the cache (which stores and
refreshes each relation) are made from this list by recorder/derive.py; adding a relation
is a line here and a SQL file.

The order is the build order: each reads only the tables and the relations above it.
"""

from __future__ import annotations

import functools

from recorder.derive import Catalog

DECLARED = [
    # per execution (queries/sql/relations/<name>.sql says what each row is)
    ("stage_runs", "execution"),
    ("action_runs", "execution"),
    ("execution_times", "execution"),
    ("failed_executions", "execution"),
    ("action_attempts", "execution"),
    # the deployment rule, per pipeline (account, region, name)
    ("deploy_stages", "pipeline", ("patterns",)),
    # (its rows of one pipeline depend on the later ones: its horizon, deploy_time)
    ("deploy_attempts", "pipeline", ("patterns",), "deploy_time"),
    ("failure_restores", "pipeline", ("patterns",)),
    # the statistics behind the heaviest named queries, per pipeline name as they group
    ("execution_stats", "name", ("since", "until")),
    ("weekly_execution_stats", "name", ("since", "until")),
    ("execution_time_stats", "name", ("since", "until")),
    ("stage_duration_stats", "name", ("since", "until")),
    ("stage_wait_stats", "name", ("since", "until")),
    ("stage_retry_stats", "name", ("since", "until")),
    ("action_stats", "name", ("since", "until")),
    ("flaky_stats", "name", ("since", "until")),
    ("deploy_stats", "name", ("patterns", "since", "until")),
]


@functools.cache
def catalog() -> Catalog:
    """The declared relations with their SQL (read once per process)."""
    return Catalog.load("queries", DECLARED)
