"""Exact decimal strings from integer units, scalar and vectorised (polars).

Prices and sizes live as integers, so every surface prints the very same digits and sums such as
kline volumes are exact.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl


def dec(units: int, scale: int, out: int | None = None) -> str:
    """``units * 10**-scale`` printed with ``out`` decimals (default ``scale``).

    >>> dec(6180030, 2), dec(5, 3, 8), dec(-42931, 8)
    ('61800.30', '0.00500000', '-0.00042931')
    """
    out = scale if out is None else out
    sign = "-" if units < 0 else ""
    units = abs(int(units))
    if scale == 0:
        whole, frac = str(units), ""
    else:
        whole, frac = str(units // 10**scale), str(units % 10**scale).zfill(scale)
    frac = (frac + "0" * out)[:out] if out >= scale else frac[:out]
    return f"{sign}{whole}.{frac}" if out else f"{sign}{whole}"


def dec_expr(col: pl.Expr, scale: int, out: int | None = None) -> pl.Expr:
    """Vectorised :func:`dec` over an Int64 column expression."""
    out = scale if out is None else out
    a = col.abs()
    sign = pl.when(col < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    if scale == 0:
        whole, frac = a.cast(pl.String), pl.lit("")
    else:
        whole = (a // 10**scale).cast(pl.String)
        frac = (a % 10**scale).cast(pl.String).str.zfill(scale)
    if out > scale:
        frac = frac + pl.lit("0" * (out - scale))
    elif out < scale:
        frac = frac.str.slice(0, out)
    if out == 0:
        return pl.concat_str([sign, whole])
    return pl.concat_str([sign, whole, pl.lit("."), frac])


def dec_list(units: npt.ArrayLike, scale: int, out: int | None = None) -> list[str]:
    """Vectorised :func:`dec` returning Python strings."""
    s = pl.Series("x", np.asarray(units, dtype=np.int64))
    return pl.select(dec_expr(pl.lit(s), scale, out)).to_series().to_list()


def float_units(values: npt.ArrayLike, scale: int) -> npt.NDArray[np.int64]:
    """Round floats to integer units of ``10**-scale``."""
    return np.asarray(np.rint(np.asarray(values, dtype=np.float64) * 10**scale), dtype=np.int64)


def bool_expr(col: pl.Expr, spot: bool) -> pl.Expr:
    """``True/False`` (spot CSV) or ``true/false`` (futures CSV, JSON)."""
    t, f = ("True", "False") if spot else ("true", "false")
    return pl.when(col).then(pl.lit(t)).otherwise(pl.lit(f))
