"""The rules of `cprec watch`: the rules file, and the SQL that finds what fires.

Each rule is `sql/watch/<rule>.sql`, over the same views and relations as the named
queries, and returns one row per condition that holds now, with the same columns
(RESULT_COLUMNS). Its thresholds come from `watch_pipelines`, one row per pipeline with
its recorded clock (`sql/watch/_clock.sql`) and every rule's parameters as they apply to
it: the defaults of `sql/watch/default-rules.toml` (the one place they are written),
then the user's rules file, then its `[[override]]` tables whose `pipeline` GLOBs match,
in order. GLOBs are matched by DuckDB, as `--pipeline` is.

What is done with the rows (state between runs, messages, delivery) is
recorder/watch.py's; this module only says what holds.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from recorder.errors import UserError
from recorder.reader import data_errors

RULES = ("approval-waiting", "running-long", "stuck", "failing-streak", "no-deploy", "blocked")
CHOICES = {
    ("running-long", "scope"): ("action", "stage"),
    ("failing-streak", "scope"): ("pipeline", "stage"),
}
WHOLE = {("running-long", "min_runs"), ("failing-streak", "failures")}  # integers >= 1
RESULT_COLUMNS = (
    "rule", "account_id", "region", "pipeline", "stage", "action", "execution_id", "subject",
    "since", "age_s", "value", "threshold", "detail", "repeat_s", "clock",
)  # fmt: skip


def _sql(name: str) -> str:
    return resources.files("queries").joinpath("sql", "watch", name).read_text(encoding="utf-8")


def default_rules_text() -> str:
    """The shipped default rules file (documented, commented)."""
    return _sql("default-rules.toml")


@dataclass(frozen=True)
class Override:
    patterns: tuple[str, ...]
    values: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Rules:
    """The rules in force: every parameter of every rule, and the per-pipeline overrides."""

    params: dict[str, dict[str, Any]]
    deploy_stages: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = field(default_factory=tuple)


def _defaults() -> tuple[dict[str, dict[str, Any]], list[str]]:
    held = tomllib.loads(default_rules_text())
    return {r: held[r] for r in RULES}, held["deploy_stages"]


def load_rules(path: Path | None) -> Rules:
    """The defaults, with the rules file at `path` (None: the defaults alone) over them.

    A bad file is one line: a TOML syntax error with its line and column (tomllib's
    message), else the key path at fault (`override[2].stuck.minutes`)."""
    params, deploy_stages = _defaults()
    if path is None:
        return Rules(params, tuple(deploy_stages))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read rules file {path}: {e.strerror or e}") from None
    try:
        held = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"rules file {path}: {e}") from None

    def bad(message: str) -> UserError:
        return UserError(f"rules file {path}: {message}")

    params = copy.deepcopy(params)
    for key, value in held.items():
        if key == "deploy_stages":
            deploy_stages = _globs(value, key, bad)
        elif key == "override":
            continue
        elif key in RULES:
            params[key].update(_rule_values(key, value, key, params[key], bad))
        else:
            raise bad(f"unknown key {key!r} (valid: deploy_stages, override, {', '.join(RULES)})")
    overrides = []
    found = held.get("override", [])
    if not isinstance(found, list):
        raise bad("override must be an array of tables: [[override]]")
    for i, table in enumerate(found, 1):
        where = f"override[{i}]"
        if not isinstance(table, dict):
            raise bad(f"{where} must be a table")
        if "pipeline" not in table:
            raise bad(f"{where} has no pipeline (a GLOB or a list of GLOBs)")
        patterns = _globs(table["pipeline"], f"{where}.pipeline", bad)
        values = {}
        for key, value in table.items():
            if key == "pipeline":
                continue
            if key not in RULES:
                raise bad(f"unknown key {where}.{key} (valid: pipeline, {', '.join(RULES)})")
            values[key] = _rule_values(key, value, f"{where}.{key}", params[key], bad)
        overrides.append(Override(patterns, values))
    return Rules(params, tuple(deploy_stages), tuple(overrides))


def _globs(value: Any, where: str, bad) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad(f"{where} must be a GLOB or a list of GLOBs, not {value!r}")
    return tuple(value)


def _rule_values(rule: str, table: Any, where: str, defaults: dict, bad) -> dict[str, Any]:
    """The parameters `table` sets for `rule`, each checked against its default's type."""
    if not isinstance(table, dict):
        raise bad(f"{where} must be a table of {', '.join(defaults)}")
    out = {}
    for key, value in table.items():
        at = f"{where}.{key}"
        if key not in defaults:
            raise bad(f"unknown key {at} (valid: {', '.join(defaults)})")
        default = defaults[key]
        if (rule, key) in CHOICES:
            if value not in CHOICES[rule, key]:
                choices = " or ".join(repr(c) for c in CHOICES[rule, key])
                raise bad(f"{at} must be {choices}, not {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise bad(f"{at} must be true or false, not {value!r}")
        elif (rule, key) in WHOLE:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(f"{at} must be a whole number of at least 1, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise bad(f"{at} must be a number of at least 0, not {value!r}")
        out[key] = value
    return out


def _column(rule: str, key: str) -> str:
    return f"{rule.replace('-', '_')}_{key}"


def _pipelines(con, rules: Rules, now: datetime | None) -> pa.Table:
    """`watch_pipelines`: each pipeline's clock (or `now`) and the parameters that apply
    to it."""
    clocks = con.sql(_sql("_clock.sql")).to_arrow_table()
    if now is not None:
        at = pa.array([now] * clocks.num_rows, clocks.schema.field("clock").type)
        clocks = clocks.set_column(clocks.schema.get_field_index("clock"), "clock", at)
    names = clocks.column("pipeline").to_pylist()
    applied: dict[str, list[Override]] = {n: [] for n in names}
    if rules.overrides:
        matcher = duckdb.connect()  # GLOB as DuckDB reads it (--pipeline), on names alone
        matcher.register("names", pa.table({"pipeline": sorted(set(names))}))
        for o in rules.overrides:
            rows = matcher.execute(
                "SELECT pipeline FROM names "
                "WHERE len(list_filter($p, lambda g: pipeline GLOB g)) > 0",
                {"p": list(o.patterns)},
            ).fetchall()
            for (name,) in rows:
                applied[name].append(o)
        matcher.close()
    columns: dict[str, list] = {}
    for rule in RULES:
        for key, default in rules.params[rule].items():
            values = []
            for name in names:
                v = default
                for o in applied[name]:
                    v = o.values.get(rule, {}).get(key, v)
                values.append(v)
            if isinstance(default, bool) or isinstance(default, str):
                columns[_column(rule, key)] = values
            elif (rule, key) in WHOLE:
                columns[_column(rule, key)] = pa.array(values, pa.int64())
            else:
                columns[_column(rule, key)] = pa.array([float(v) for v in values], pa.float64())
    for name, values in columns.items():
        clocks = clocks.append_column(
            name, pa.array(values) if isinstance(values, list) else values
        )
    return clocks


def evaluate(
    con, rules: Rules, *, now: datetime | None = None, data_root=None
) -> tuple[list[dict], dict[tuple, datetime]]:
    """What holds now: one dict per condition (RESULT_COLUMNS), ordered by rule, account,
    region, pipeline and subject, and the clock of every pipeline evaluated,
    {(account_id, region, pipeline): clock}. `now`: measure every age to it instead of
    the recorded clock (a replay: `cprec watch --now`)."""
    with data_errors(data_root):
        table = _pipelines(con, rules, now)
        con.register("watch_pipelines", table)
        found: list[dict] = []
        try:
            for rule in RULES:
                if not any(table.column(_column(rule, "enabled")).to_pylist()):
                    continue
                sql = _sql(f"{rule}.sql")
                params = (
                    {"deploy_stages": list(rules.deploy_stages)} if "$deploy_stages" in sql else {}
                )
                rows = con.sql(sql, params=params).to_arrow_table().to_pylist()
                found += [{c: r[c] for c in RESULT_COLUMNS} for r in rows]
        finally:
            con.unregister("watch_pipelines")
    found.sort(key=lambda r: (RULES.index(r["rule"]), r["account_id"], r["region"],
                              r["pipeline"], r["subject"]))  # fmt: skip
    clocks = {
        (a, r, p): c
        for a, r, p, c in zip(
            *(table.column(n).to_pylist() for n in ("account_id", "region", "pipeline", "clock")),
            strict=True,
        )  # fmt: skip
    }
    return found, clocks
