"""What VM-minutes cost: the scenario's `[cost]` table, in a currency the user names.

Nothing about prices is built in: the project has no network and must not pretend to know
them. A scenario gives a price per VM-hour (`vm_hour`), or a VM size and a price table file
(`vm_size`, `price_table`: a CSV with the columns `vm_size` and `vm_hour`, and optionally
`currency`), plus, if it wants the shortfall priced, a price per VM-hour of capacity below
target (`shortfall_vm_hour`). Reports then put money next to the VM-minutes they already show;
the arithmetic is this module's, the wording the reports'.
"""
from __future__ import annotations

import csv
import difflib
import math
from pathlib import Path
from typing import Optional

from pydantic import Field, NonNegativeFloat, model_validator

from .tables import StrictTable, clip


class CostError(ValueError):
    """A price table that cannot give the scenario's price: `field` is the path to blame."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class Cost(StrictTable):
    """The `[cost]` table. After loading, `vm_hour` is always set (read from the price table
    if the scenario named one), so a run's manifest carries the price it used."""

    currency: str = Field(min_length=1, max_length=20, pattern=r"^\S(.*\S)?$",
                          description="the user's own currency label, e.g. EUR")
    vm_hour: Optional[NonNegativeFloat] = Field(None, description="price of one VM-hour")
    vm_size: Optional[str] = Field(None, min_length=1, description="the row of price_table")
    price_table: Optional[str] = Field(None, description="CSV: vm_size, vm_hour[, currency]")
    shortfall_vm_hour: Optional[NonNegativeFloat] = Field(
        None, description="price of one VM-hour of usable capacity below target")

    @model_validator(mode="after")
    def _one_price(self) -> "Cost":
        if self.price_table is not None:
            if self.vm_hour is not None:
                raise ValueError("give vm_hour or price_table (with vm_size), not both")
            if self.vm_size is None:
                raise ValueError("price_table needs vm_size: the row of the table to use")
        elif self.vm_hour is None:
            raise ValueError("expected vm_hour (a price per VM-hour) or vm_size with price_table")
        return self

    def vm_cost(self, vm_minutes: float) -> float:
        """What VM-minutes of instances cost at `vm_hour`."""
        return vm_minutes * (self.vm_hour or 0.0) / 60.0

    def shortfall_cost(self, vm_minutes: float) -> float:
        """What VM-minutes of capacity shortfall cost; NaN when no shortfall price is given."""
        if self.shortfall_vm_hour is None:
            return math.nan
        return vm_minutes * self.shortfall_vm_hour / 60.0

    @property
    def price_text(self) -> str:
        """`0.192 EUR per VM-hour (Standard_D4s_v5)`: what the reports say they priced at."""
        size = f" ({self.vm_size})" if self.vm_size else ""
        return f"{self.vm_hour:g} {self.currency} per VM-hour{size}"


def read_price_table(cost: Cost, base_dir: Path) -> Cost:
    """`cost` with `vm_hour` read from its price table (a path relative to the scenario)."""
    if cost.price_table is None:
        return cost
    path = Path(base_dir) / cost.price_table
    where = "cost.price_table"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CostError(where, f"price table {str(path)!r} not found") from None
    except (UnicodeDecodeError, OSError) as err:
        raise CostError(where, f"{path}: unreadable ({err}); expected a UTF-8 CSV") from None
    reader = csv.DictReader(text.splitlines())
    try:
        cols = reader.fieldnames or []
        for col in ("vm_size", "vm_hour"):
            if col not in cols:
                raise CostError(where, f"{path}: expected a column {col!r}; found "
                                       f"{clip(repr(cols), 40)}")
        prices = _prices(reader, cost, path, where)
    except csv.Error as err:  # a field past the csv module's limit, a NUL byte, ...
        raise CostError(where, f"{path}, line {reader.line_num + 1}: not a CSV line "
                               f"({type(err).__name__})") from None
    if cost.vm_size not in prices:
        close = difflib.get_close_matches(cost.vm_size or "", list(prices), n=3, cutoff=0.4)
        sizes = close or sorted(prices)[:10]
        raise CostError("cost.vm_size", f"{cost.vm_size!r} is not in the price table "
                                        f"{str(path)!r}; expected one of its sizes, e.g. "
                                        f"{', '.join(map(repr, sizes))}")
    return cost.model_copy(update={"vm_hour": prices[cost.vm_size][0], "price_table": None})


def _prices(reader: csv.DictReader, cost: Cost, path: Path, where: str
            ) -> dict[str, tuple[float, int]]:
    """size -> (price per VM-hour, line) of a price table's rows."""
    prices: dict[str, tuple[float, int]] = {}
    for line, row in enumerate(reader, start=2):
        try:
            price = float(row["vm_hour"])
            if not math.isfinite(price) or price < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise CostError(where, f"{path}, line {line}: expected vm_hour >= 0, got "
                                   f"{clip(repr(row.get('vm_hour')), 40)}") from None
        if "currency" in (reader.fieldnames or []) and row["vm_size"] == cost.vm_size and \
                (row.get("currency") or "").strip() != cost.currency:
            raise CostError(where, f"{path}, line {line}: the price is in "
                                   f"{clip(repr(row.get('currency')), 40)}, the scenario's "
                                   "cost.currency is "
                                   f"{cost.currency!r}; expected the same currency")
        size = row["vm_size"]
        if size in prices and prices[size][0] != price:
            raise CostError(where, f"{path}, line {line}: {clip(repr(size), 40)} is priced "
                                   "twice (also line "
                                   f"{prices[size][1]}); expected one price per size")
        prices[size] = (price, line)
    return prices
