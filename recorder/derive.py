"""The engine behind every derived relation: declared once, computed the same way over
the Parquet files and over the query cache, maintained incrementally in the cache.

The relations themselves belong to the query layer (queries/relations.py declares them,
queries/sql/relations/<name>.sql defines each); this module only knows how to turn a
declaration into SQL. A declaration is a `Relation`:

- `name`, and its SQL: one SELECT whose inputs are written `{table}` or `{relation}`
  (the tables of recorder/schemas.py and the relations declared before it). The
  placeholders are what it reads: nothing else declares it.
- `grain`: the key its rows depend on, "execution" (account, region, pipeline,
  execution), "pipeline" (account, region, pipeline) or "name" (the pipeline name,
  across accounts and regions, as the named queries group). A row of a relation depends
  only on the rows of its inputs that share its key: that is what lets the cache
  recompute a relation for just the keys a refresh touched.
- `params`: a relation with parameters (PARAMETERS: the time window, the deploy-stage
  patterns) is a table macro `<name>(params)`; the cache stores its rows for the default
  arguments, and the macro reads them for those arguments and computes any others.
- `horizon` (pipeline grain only): a column of the relation, for a relation whose rows
  of one pipeline depend on one another in time order (each deployment on the next one
  and on the rollbacks before it). Recomputing such a pipeline whole costs its whole
  history, on every refresh that touches one of its executions. With a horizon the
  relation says, in `<name>.horizon.sql`, from which value of that column its rows may
  have changed (per pipeline, `since`); the cache recomputes only the rows at or after
  it, and the relation's SQL reads `{horizon}` (the pipelines so bounded, with their
  `since`) to compute just those. Readers and whole recomputes give `{horizon}` no row.

Where the inputs come from is said by the caller, never by shadowing a name: a reader
fills each placeholder with the relation of that name (`reader_sql`), the cache with its
table, narrowed to the keys it recomputes (`compute_sql`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from importlib.metadata import entry_points

import duckdb

from recorder import layout
from recorder.errors import UserError
from recorder.schemas import TABLES, TERMINAL_ACTION, TERMINAL_EXECUTION

# The key of each grain, from the finest.
GRAINS = {
    "execution": ("account_id", "region", "pipeline", "execution_id"),
    "pipeline": ("account_id", "region", "pipeline"),
    "name": ("pipeline",),
}

# Every parameter a relation may take: (the default argument the cache stores rows for,
# the test that an argument is that default). Bound values when DuckDB plans a query, so a
# reader's macro reads the stored rows or computes them, never both.
PARAMETERS = {
    "patterns": ("[]", "len(CAST(patterns AS VARCHAR[])) = 0"),
    "since": ("NULL", "since IS NULL"),
    "until": ("NULL", "until IS NULL"),
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

# What a relation with a horizon reads as `{horizon}` when nothing bounds it (a reader,
# a whole recompute): no pipeline, so every row is computed.
HORIZON = "horizon"
NO_HORIZON = (
    "(SELECT NULL::VARCHAR AS account_id, NULL::VARCHAR AS region, "
    "NULL::VARCHAR AS pipeline, NULL::TIMESTAMPTZ AS since WHERE false)"
)
# What `<name>.horizon.sql` reads besides the tables and relations: the touched executions
# (`{keys}`), the pipelines recomputed whole whatever the horizon says (`{whole}`: their
# definitions changed), the relation's rows as stored before this refresh (`{stored}`) and
# the rows this refresh wrote for the touched executions in a relation by execution
# (`{new_<relation>}`: a few rows, where the relation itself would be scanned whole).
HORIZON_INPUTS = ("keys", "whole", "stored")
_NEW = "new_"


@dataclass(frozen=True)
class Relation:
    name: str
    grain: str
    params: tuple[str, ...] = ()
    sql: str = field(default="", repr=False)
    horizon: str | None = None
    horizon_sql: str = field(default="", repr=False)

    @property
    def reads(self) -> tuple[str, ...]:
        """The inputs its SQL names, in order of first use."""
        found = dict.fromkeys(_PLACEHOLDER.findall(self.sql))
        return tuple(n for n in found if n != HORIZON)

    @property
    def key(self) -> tuple[str, ...]:
        return GRAINS[self.grain]


@dataclass(frozen=True)
class Catalog:
    """The relations to maintain, in the order they are built (each reads only the tables
    and the relations before it), with the SQL of the scalar macros every relation may
    call (`macros`, created first) and of the table macros built on the relations
    (`library`, created after them: DuckDB binds a table macro's body when it is
    created)."""

    relations: tuple[Relation, ...]
    macros: str
    library: str

    def __post_init__(self) -> None:
        seen: dict[str, Relation] = {}
        for rel in self.relations:
            check(rel, seen)
            seen[rel.name] = rel

    @classmethod
    def load(cls, package: str, declared: list[tuple]) -> Catalog:
        """The catalog of `declared` ((name, grain[, params[, horizon]]) each), reading each
        SQL from `<package>/sql/relations/<name>.sql` (and `<name>.horizon.sql`) and the
        macros from `sql/_macros.sql` and `sql/_library.sql`."""
        files = resources.files(package).joinpath("sql")

        def text(name: str) -> str:
            return files.joinpath("relations", name).read_text(encoding="utf-8")

        relations = tuple(
            Relation(name, grain, tuple(rest[0]) if rest else (), text(f"{name}.sql"),
                     horizon, text(f"{name}.horizon.sql") if horizon else "")
            for name, grain, *rest in declared
            for horizon in [rest[1] if len(rest) > 1 else None]
        )  # fmt: skip
        return cls(
            relations,
            files.joinpath("_macros.sql").read_text(encoding="utf-8"),
            files.joinpath("_library.sql").read_text(encoding="utf-8"),
        )

    def __getitem__(self, name: str) -> Relation:
        return next(r for r in self.relations if r.name == name)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.relations]

    @property
    def read_tables(self) -> set[str]:
        """The tables some relation reads: a change to their rows touches a key."""
        return {n for r in self.relations for n in r.reads if n in TABLES}

    def digests(self, tables: str) -> dict[str, str]:
        """Each relation's digest: its declaration and SQL, the macros, and the digests of
        what it reads (`tables`: the tables' digest). A relation whose digest changed is
        recomputed whole, and with it every relation that reads it."""
        out: dict[str, str] = {}
        for rel in self.relations:
            inputs = [out.get(n, tables) for n in rel.reads]
            out[rel.name] = digest(
                rel.name,
                rel.grain,
                rel.params,
                rel.sql,
                rel.horizon,
                rel.horizon_sql,
                self.macros,
                status_macros(temp=True),
                inputs,
            )
        return out


RELATIONS_GROUP = "cprec.relations"  # the entry point that provides the relations


@functools.cache
def default_catalog() -> Catalog:
    """The relations to maintain, as the query layer provides them: it owns every metric
    definition (queries/relations.py) and registers them under the entry point
    RELATIONS_GROUP (pyproject.toml), so the storage layer is given them without
    importing the layer above it."""
    found = entry_points(group=RELATIONS_GROUP)
    if not found:
        raise UserError(
            f"no relations are installed (entry point {RELATIONS_GROUP}): install cprec "
            "with pip install -e ."
        )
    return next(iter(found)).load()()


def check(rel: Relation, before: dict[str, Relation]) -> None:
    """Refuse a declaration that the engine could not maintain correctly."""
    if rel.grain not in GRAINS:
        raise ValueError(f"{rel.name}: unknown grain {rel.grain!r}")
    if unknown := [p for p in rel.params if p not in PARAMETERS]:
        raise ValueError(f"{rel.name}: unknown parameters {unknown}")
    if not rel.reads:
        raise ValueError(f"{rel.name}: its SQL reads nothing (inputs are written {{name}})")
    uses_horizon = HORIZON in _PLACEHOLDER.findall(rel.sql)
    if bool(rel.horizon) != uses_horizon or bool(rel.horizon) != bool(rel.horizon_sql):
        raise ValueError(f"{rel.name}: a horizon is a column, a horizon SQL and {{horizon}}")
    if rel.horizon and rel.grain != "pipeline":
        raise ValueError(f"{rel.name}: only a pipeline relation has a horizon")
    if rel.horizon:
        for name in dict.fromkeys(_PLACEHOLDER.findall(rel.horizon_sql)):
            new = name.removeprefix(_NEW) if name.startswith(_NEW) else None
            if new is not None and getattr(before.get(new), "grain", None) == "execution":
                continue
            if name not in HORIZON_INPUTS and name not in TABLES and name not in before:
                raise ValueError(f"{rel.name}: its horizon reads {name}, which it cannot")
    rank = list(GRAINS)
    for name in rel.reads:
        if name in TABLES:
            cols = {n for n, _ in layout.columns(TABLES[name])}
            if not set(rel.key) <= cols:
                raise ValueError(f"{rel.name}: reads {name}, which has no {rel.grain} key")
            continue
        if name not in before:
            raise ValueError(f"{rel.name}: reads {name}, neither a table nor declared before it")
        other = before[name]
        if rank.index(other.grain) > rank.index(rel.grain):
            raise ValueError(f"{rel.name}: a {rel.grain} relation reads {name}, by {other.grain}")
        if missing := [p for p in other.params if p not in rel.params]:
            raise ValueError(f"{rel.name}: reads {name} without its parameters {missing}")


def digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def expand(rel: Relation, source: Callable[[str], str], horizon: str = NO_HORIZON) -> str:
    """`rel`'s SQL with each input placeholder replaced by `source(name)`, and `{horizon}`
    by `horizon` (by default: nothing bounds it)."""
    return _PLACEHOLDER.sub(
        lambda m: horizon if m.group(1) == HORIZON else source(m.group(1)), rel.sql
    )


def macro_sql(sql: str, *, temp: bool) -> str:
    """Macro definitions (`CREATE OR REPLACE MACRO`), temporary when `temp` (a read-only
    database takes temporary objects only)."""
    return sql.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO") if temp else sql


def defaults(rel: Relation) -> str:
    return ", ".join(PARAMETERS[p][0] for p in rel.params)


def reader_sql(
    catalog: Catalog, *, temp: bool, stored: str | None, tables: Callable[[str], str] = str
) -> list[str]:
    """The statements that give a reader every relation of `catalog`: the scalar macros,
    a view per relation without parameters and a table macro `<name>(params)` per
    relation with some, then the library. `tables(name)`: the relation a table's rows come
    from. `stored`: the schema holding the cache's tables (views then read the stored
    rows, macros the stored rows for the default arguments); None: computed from the
    tables."""
    view = "TEMP VIEW" if temp else "VIEW"
    kind = "TEMP MACRO" if temp else "MACRO"
    by_name = {r.name: r for r in catalog.relations}

    def source(name: str) -> str:
        if name in by_name and by_name[name].params:
            return f"{name}({', '.join(by_name[name].params)})"
        return name if name in by_name else tables(name)

    sql = [status_macros(temp=temp), macro_sql(catalog.macros, temp=temp)]
    for rel in catalog.relations:
        if not rel.params:
            body = f"SELECT * FROM {stored}.{rel.name}" if stored else expand(rel, source)
            sql.append(f"CREATE OR REPLACE {view} {rel.name} AS {body}")
            continue
        args = ", ".join(rel.params)
        sql.append(f"CREATE OR REPLACE {kind} compute_{rel.name}({args}) AS TABLE "
                   + expand(rel, source))  # fmt: skip
        if stored:
            when = " AND ".join(PARAMETERS[p][1] for p in rel.params)
            body = (
                f"SELECT * FROM {stored}.{rel.name} WHERE {when} "
                f"UNION ALL SELECT * FROM compute_{rel.name}({args}) WHERE NOT ({when})"
            )
        else:
            body = f"SELECT * FROM compute_{rel.name}({args})"
        sql.append(f"CREATE OR REPLACE {kind} {rel.name}({args}) AS TABLE {body}")
    sql.append(macro_sql(catalog.library, temp=temp))
    return sql


def status_macros(*, temp: bool) -> str:
    """execution_terminal(status) and action_terminal(status), from the one list of the
    statuses that end each (recorder/schemas.py)."""
    kind = "TEMP MACRO" if temp else "MACRO"
    return "; ".join(
        f"CREATE OR REPLACE {kind} {name}(status) AS status IN "
        f"({', '.join(layout.sql_string(s) for s in statuses)})"
        for name, statuses in (("execution_terminal", TERMINAL_EXECUTION),
                               ("action_terminal", TERMINAL_ACTION))
    )  # fmt: skip


def keys_table(grain: str) -> str:
    return f"cprec_keys_{grain}"


def new_rows_table(name: str) -> str:
    """The temporary table of the rows a refresh just wrote for the touched executions in
    the relation `name` (by execution)."""
    return f"cprec_new_{name}"


def compute_sql(
    con: duckdb.DuckDBPyConnection,
    rel: Relation,
    schema: str,
    table_source: Callable[[str], str],
    *,
    keys: str | None,
    horizon: str | None = None,
) -> str:
    """A SELECT of the rows the cache stores for `rel`: over the cache's tables and
    relations in `schema` (`table_source(name)`: a table's rows there), limited to the
    keys of its grain in the table `keys` (None: every key), and for a relation with a
    horizon, to the rows at or after the `since` of each pipeline of the table `horizon`
    (what `horizon_sql` computed). A relation with parameters is computed for their
    default arguments through a temporary macro (its SQL names them)."""
    key = rel.key

    def source(name: str) -> str:
        relation = table_source(name) if name in TABLES else f"{schema}.{name}"
        if keys is None:
            return relation
        on = " AND ".join(f"x.{c} = k.{c}" for c in key)
        return f"(SELECT x.* FROM {relation} AS x SEMI JOIN {keys} AS k ON {on})"

    if horizon is None:
        body = expand(rel, source)
    else:
        # the rows the SQL computes before a pipeline's horizon are dropped here, so the
        # rows written are exactly those `horizon_delete` removed
        on = " AND ".join(f"x.{c} = h.{c}" for c in key)
        body = (
            f"SELECT x.* FROM ({expand(rel, source, horizon)}) AS x ANTI JOIN {horizon} AS h "
            f"ON {on} AND x.{layout.ident(rel.horizon)} < h.since"
        )
    if not rel.params:
        return body
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO cprec_compute({', '.join(rel.params)}) AS TABLE {body}"
    )
    return f"SELECT * FROM cprec_compute({defaults(rel)})"


def horizon_sql(
    rel: Relation, schema: str, table_source: Callable[[str], str], *, keys: str, whole: str
) -> str:
    """The SELECT of `rel`'s horizon (account_id, region, pipeline, since): its
    `<name>.horizon.sql` over the cache in `schema`, given the touched executions (the
    table `keys`) and the pipelines to recompute whole (the table `whole`)."""
    inputs = {"keys": keys, "whole": whole, "stored": f"{schema}.{rel.name}"}

    def source(name: str) -> str:
        if name in inputs:
            return inputs[name]
        if name.startswith(_NEW):
            return new_rows_table(name.removeprefix(_NEW))
        return table_source(name) if name in TABLES else f"{schema}.{name}"

    return _PLACEHOLDER.sub(lambda m: source(m.group(1)), rel.horizon_sql)


def horizon_delete(rel: Relation, schema: str, horizon: str) -> str:
    """The DELETE of `rel`'s stored rows that a refresh bounded by the table `horizon`
    recomputes: each bounded pipeline's rows at or after its `since` (and those without
    a value in the horizon column, which no bound can place)."""
    on = " AND ".join(f"x.{c} = h.{c}" for c in rel.key)
    col = layout.ident(rel.horizon)
    return (
        f"DELETE FROM {schema}.{rel.name} x USING {horizon} h "
        f"WHERE {on} AND coalesce(x.{col} >= h.since, true)"
    )
