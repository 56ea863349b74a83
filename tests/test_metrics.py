"""One definition per metric: a column name means one thing in every named query.

Each named query's output columns are read from its SQL (sqlglot, DuckDB dialect). A
column a query computes (anything but passing on an input column of the same name, bare
or as coalesce(column, 0)) must be computed by the same expression wherever another
named query computes a column of that name; the rates that have a definition of their
own (queries/sql/_macros.sql) are computed only through it, in the named queries and in
the relations alike; and the statuses that end an execution have one list.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
import sqlglot
from sqlglot import exp

import queries
from queries.relations import catalog
from recorder.schemas import TERMINAL_ACTION, TERMINAL_EXECUTION

RATES = ("failure_rate", "change_failure_rate")  # each a macro of its own name


def parse(sql: str) -> exp.Expression:
    # $parameters and {input} placeholders become plain names sqlglot reads
    sql = re.sub(r"\$(\w+)", r"__p_\1", re.sub(r"\{(\w+)\}", r"\1", sql))
    return sqlglot.parse_one(sql, read="duckdb")


def unqualified(e: exp.Expression) -> exp.Expression:
    e = e.copy()
    for column in e.find_all(exp.Column):
        column.set("table", None)
    return e


def computed_columns(sql: str) -> dict[str, str]:
    """The output columns a query computes, name -> normalised expression."""
    out = {}
    for projection in parse(sql).selects:
        name = projection.alias_or_name
        e = unqualified(projection.this if isinstance(projection, exp.Alias) else projection)
        if isinstance(e, exp.Coalesce) and isinstance(e.this, exp.Column):
            e = e.this  # coalesce(failed, 0): the input column, 0 where a join found none
        if isinstance(e, exp.Column | exp.Star) and e.name in (name, "*"):
            continue
        out[name] = e.sql("duckdb")
    return out


def test_every_named_query_and_relation_parses():
    for name, query in queries.named_queries().items():
        assert parse(query.sql).selects, name
    for rel in catalog().relations:
        assert parse(rel.sql).selects, rel.name


def test_a_column_name_is_computed_one_way_across_the_named_queries():
    by_name: dict[str, dict[str, str]] = defaultdict(dict)
    for query, q in queries.named_queries().items():
        for column, expression in computed_columns(q.sql).items():
            by_name[column][query] = expression
    differ = {c: e for c, e in by_name.items() if len(set(e.values())) > 1}
    assert differ == {}
    # the test sees what it checks: these are computed in more than one query
    assert set(by_name["failure_rate"]) == {"failure-rates", "pipeline-summary"}
    assert len(by_name["p50_s"]) == 3


@pytest.mark.parametrize("rate", RATES)
def test_a_rate_is_computed_only_by_its_macro(rate):
    texts = {n: q.sql for n, q in queries.named_queries().items()}
    texts |= {r.name: r.sql for r in catalog().relations}
    seen = []
    for name, sql in texts.items():
        for alias in parse(sql).find_all(exp.Alias):
            if alias.alias != rate:
                continue
            call = alias.this
            assert isinstance(call, exp.Anonymous) and call.name.lower() == rate, (name, call)
            seen.append(name)
    assert seen  # computed somewhere


def test_the_terminal_statuses_have_one_list(tmp_path):
    """execution_terminal and action_terminal are made from recorder/schemas.py: no SQL
    file lists the statuses again."""
    con = queries.connect(tmp_path, cache=False)
    for macro, statuses in (("execution_terminal", TERMINAL_EXECUTION),
                            ("action_terminal", TERMINAL_ACTION)):  # fmt: skip
        every = ["Succeeded", "Failed", "Stopped", "Stopping", "Superseded", "Cancelled",
                 "InProgress", "Abandoned"]  # fmt: skip
        got = con.execute(f"SELECT s FROM unnest($s) AS t(s) WHERE {macro}(s)", {"s": every})
        assert sorted(r[0] for r in got.fetchall()) == sorted(statuses)
    sql = [q.sql for q in queries.named_queries().values()] + [r.sql for r in catalog().relations]
    sql.append(catalog().macros)
    assert not [s for s in sql if "'Superseded', 'Cancelled'" in s or "'Cancelled'" in s]
