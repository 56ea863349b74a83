"""The prices `cost` bills by: AWS's, from `aws_prices()` in sql/_library.sql (the one
place they and the billing rules are written, with where AWS states each), replaced field
by field by a prices file and `--price-per-minute`.

A prices file is TOML, every key optional:

    currency = "USD"
    action_minute = 0.002          # V2: per action execution minute
    free_action_minutes = 100      # V2: free minutes per account and month
    active_pipeline_month = 1.00   # V1: per active pipeline and month
    free_active_pipelines = 1      # V1: free active pipelines per account and month
    free_days = 30                 # V1: days after its creation a pipeline is free

    [regions.eu-south-2]           # a region's own prices, where they differ
    action_minute = 0.0024
    active_pipeline_month = 1.20

Prices are read as decimals from the file's text (0.002 is 0.002, not the nearest binary
double), so a cost is exact to its 8th decimal place.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import duckdb

from recorder.errors import UserError

BY = ("pipeline", "stage", "action", "account", "month")
MONEY = ("action_minute", "active_pipeline_month")
COUNTS = ("free_action_minutes", "free_active_pipelines", "free_days")
PLACES = Decimal("0.00000001")  # the DECIMAL(18, 8) of aws_prices()


def aws_prices(con: duckdb.DuckDBPyConnection) -> dict:
    """AWS's prices, as sql/_library.sql writes them."""
    return con.execute("SELECT aws_prices()").fetchall()[0][0]


def prices(
    con: duckdb.DuckDBPyConnection,
    file: Path | None = None,
    per_minute: Decimal | None = None,
) -> dict:
    """AWS's prices, then the prices file's, then `per_minute` (the V2 price per action
    minute in every region): the value `cost` binds as `$prices`."""
    result = aws_prices(con)
    if file is not None:
        result = _merged(result, _read(file), file)
    if per_minute is not None:
        result["action_minute"] = _money(per_minute, "--price-per-minute")
        result["regions"] = [{**r, "action_minute": None} for r in result["regions"]]
    return result


def _read(file: Path) -> dict:
    try:
        with open(file, "rb") as fh:
            return tomllib.load(fh, parse_float=Decimal)
    except OSError as exc:
        raise UserError(f"cannot read the prices file {file}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{file} is not a TOML prices file: {exc}") from None


def _merged(base: dict, given: dict, file: Path) -> dict:
    known = ("currency", *MONEY, *COUNTS, "regions")
    result = dict(base)
    for key, value in given.items():
        where = f"{file}: {key}"
        if key not in known:
            raise UserError(f"{where} is not a price (known: {', '.join(known)})")
        if key == "currency":
            if not isinstance(value, str) or not value:
                raise UserError(f'{where} must be a currency code, such as "USD"')
            result[key] = value
        elif key in MONEY:
            result[key] = _money(value, where)
        elif key in COUNTS:
            # (bounded by what the SQL takes: arg_min's top-N, an INTEGER of days)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**6:
                raise UserError(f"{where} must be a whole number, 0 to 999999")
            result[key] = value
        else:
            result[key] = _regions(value, where)
    return result


def _regions(value: object, where: str) -> list[dict]:
    if not isinstance(value, dict):
        raise UserError(f"{where} must be tables [regions.<region>]")
    rows = []
    for region, own in value.items():
        if not isinstance(own, dict):
            raise UserError(f"{where}.{region} must be a table of prices")
        unknown = set(own) - set(MONEY)
        if unknown:
            raise UserError(
                f"{where}.{region}.{sorted(unknown)[0]} is not a regional price "
                f"(known: {', '.join(MONEY)})"
            )
        rows.append(
            {"region": region}
            | {k: _money(own[k], f"{where}.{region}.{k}") if k in own else None for k in MONEY}
        )
    return rows


def _money(value: object, where: str) -> Decimal:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | Decimal)
        or not Decimal(value).is_finite()  # nan, inf: TOML floats
        or value < 0
    ):
        raise UserError(f"{where} must be a price, 0 or more (such as 0.002)")
    exact = Decimal(value)
    if exact >= 10**10 or exact != exact.quantize(PLACES):  # (1e400 cannot be quantized)
        raise UserError(f"{where}: {value} has more than 8 decimal places or 10 digits")
    return exact
