"""Typed configuration: the only place where configuration files and the environment are read.

Precedence, highest first: explicit overrides (CLI flags such as ``--lake``), environment variables
``LAKE_*`` (nested keys joined by ``__``, e.g. ``LAKE_STORAGE__ROOT``; see :mod:`lake.envvars`),
the YAML file (``--config``, else ``$LAKE_CONFIG``, else ``config/lake.yaml`` when present), then
the defaults below. Unknown keys anywhere are rejected, a ``LAKE_*`` variable that names no
setting too. Each source is validated as it is laid over the ones below it, so an error names
the source that brought it (the file and key, the variable, the flag) and a wrong file is an
error even where a flag overrides the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

if TYPE_CHECKING:
    from lake.binance.endpoints import Endpoints

DEFAULT_CONFIG_PATH = Path("config/lake.yaml")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
EXCHANGE_URL_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?/?$")

Market = Literal["spot", "um"]
MARKETS: tuple[Market, ...] = ("spot", "um")

SPOT_STREAMS = ("trade", "bookTicker", "aggTrade", "kline_1m")
UM_STREAMS = ("aggTrade", "trade", "markPrice@1s", "kline_1m", "bookTicker", "forceOrder")


class ConfigError(ValueError):
    """A configuration problem, phrased as one line a user can act on."""


def _check_symbol(value: str) -> str:
    if not SYMBOL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid symbol (expected {SYMBOL_RE.pattern})")
    return value


Symbol = Annotated[str, AfterValidator(_check_symbol)]


def split_list(text: str | Sequence[str] | None) -> list[str] | None:
    """``"a,b"`` or ``["a", "b"]`` → ``["a", "b"]`` (blanks dropped); None stays None."""
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    return [p.strip() for p in parts if p.strip()]


def markets_option(text: str | Sequence[str] | None) -> list[Market]:
    """The ``--markets`` option (``spot``, ``um`` or both, the default), deduplicated.

    Raises:
        ValueError: one line naming the bad value.
    """
    values = split_list(text)
    if values is None:
        return list(MARKETS)
    if not values:
        raise ValueError("--markets is empty (use spot, um or spot,um)")
    for v in values:
        if v not in MARKETS:
            raise ValueError(f"unknown market {v!r} in --markets (use spot, um or spot,um)")
    return [cast(Market, m) for m in dict.fromkeys(values)]


def symbols_option(text: str | Sequence[str] | None) -> list[str] | None:
    """The ``--symbols`` option, upper-cased; None when not given (the configured ones apply).

    Raises:
        ValueError: one line naming the bad symbol.
    """
    symbols = split_list(text)
    if symbols is None:
        return None
    symbols = [s.upper() for s in symbols]
    bad = [s for s in symbols if not SYMBOL_RE.fullmatch(s)]
    if bad or not symbols:
        shown = bad[0] if bad else ""
        raise ValueError(
            f"bad symbol {shown!r} in --symbols (expected e.g. BTCUSDT: 2-20 letters/digits)"
        )
    return symbols


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketConfig(_Strict):
    """The symbol universe and streams captured for one market."""

    symbols: tuple[Symbol, ...] = ("BTCUSDT", "ETHUSDT")
    streams: tuple[str, ...] = ()

    @field_validator("symbols")
    @classmethod
    def _unique(cls, symbols: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must not repeat")
        return symbols


def _spot_default() -> MarketConfig:
    return MarketConfig(streams=("trade", "bookTicker"))


def _um_default() -> MarketConfig:
    return MarketConfig(streams=UM_STREAMS)


class MarketsConfig(_Strict):
    spot: MarketConfig = Field(default_factory=_spot_default)
    um: MarketConfig = Field(default_factory=_um_default)

    @model_validator(mode="after")
    def _known_streams(self) -> MarketsConfig:
        for market, allowed in (("spot", SPOT_STREAMS), ("um", UM_STREAMS)):
            for stream in getattr(self, market).streams:
                if stream not in allowed:
                    raise ValueError(
                        f"unknown {market} stream {stream!r} (known: {', '.join(allowed)})"
                    )
        return self

    def get(self, market: Market) -> MarketConfig:
        cfg: MarketConfig = getattr(self, market)
        return cfg


def _check_root(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty (give a local directory or s3://bucket/prefix)")
    bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        raise ValueError(f"{value!r} holds the control character {bad!r}: give a plain path")
    return value


class StorageConfig(_Strict):
    """Where the Delta tables live: a local path or an ``s3://`` URI."""

    root: Annotated[str, AfterValidator(_check_root)] = "./data/lake"
    options: dict[str, str] = Field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    @property
    def local_root(self) -> Path:
        return Path(self.root.removeprefix("file://")).expanduser()

    @property
    def uri(self) -> str:
        """The root as an absolute local path or as the remote URI, without a trailing slash."""
        if self.is_local:
            return str(self.local_root.resolve())
        return self.root.rstrip("/")


def _liveness_default() -> dict[str, float]:
    return {
        "markPrice@1s": 5.0,
        "kline_1m": 10.0,
        "bookTicker": 30.0,
        "aggTrade": 120.0,
        "trade": 120.0,
    }


class CaptureConfig(_Strict):
    """Live capture: landing segments, connections, liveness and gap filling."""

    # Segments wait here until landed. Unset: `_landing` inside a local lake root; a relative
    # path is taken from the lake root too, so every command finds the same segments wherever it
    # runs. A remote root (s3://) needs an absolute local path.
    landing_dir: str | None = None
    flush_interval_s: float = Field(default=1.0, gt=0, le=1.0)
    segment_rotate_s: float = Field(default=60.0, gt=0)
    segment_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    land_interval_s: float = Field(default=60.0, gt=0)
    queue_max_messages: int = Field(default=200_000, gt=0)
    max_streams_per_connection: int = Field(default=200, gt=0, le=1024)
    connection_lifetime_s: float = Field(default=23.5 * 3600, gt=0, le=24 * 3600)
    liveness_s: dict[str, float] = Field(default_factory=_liveness_default)
    max_rest_fill_ids: int = Field(default=200_000, ge=0)
    repair_max_requests: int = Field(default=100, gt=0)

    @field_validator("liveness_s")
    @classmethod
    def _known(cls, value: dict[str, float]) -> dict[str, float]:
        for stream, limit in value.items():
            if stream not in SPOT_STREAMS + UM_STREAMS:
                raise ValueError(f"unknown stream {stream!r} in liveness_s")
            if limit <= 0:
                raise ValueError(f"liveness_s.{stream} must be positive")
        return value


class BackfillConfig(_Strict):
    """Defaults for history backfill and repair horizons."""

    start: date = date(2024, 1, 1)
    end: date | None = None
    max_concurrent_downloads: int = Field(default=4, gt=0, le=32)

    @model_validator(mode="after")
    def _ordered(self) -> BackfillConfig:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class RetentionConfig(_Strict):
    """How long superseded data and landing segments are kept."""

    vacuum_retention_hours: int = Field(default=168, ge=0)
    landing_keep_days: int = Field(default=7, ge=0)


def _check_exchange(value: str) -> str:
    if value in ("sim", "live") or EXCHANGE_URL_RE.fullmatch(value):
        return value.rstrip("/")
    raise ValueError(
        f"{value!r} is not an exchange (expected 'sim', 'live' or a base URL such as "
        "http://127.0.0.1:8765)"
    )


LANDING_DIR_NAME = "_landing"
"""The landing directory inside a local lake root when ``capture.landing_dir`` is unset."""


class Settings(BaseSettings):
    """Everything cryptolake can be configured with."""

    # The sources are read and laid over each other by `load_settings`; Settings() is the defaults.
    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    exchange: Annotated[str, AfterValidator(_check_exchange)] = "sim"
    # Binance API key (read-only is enough), sent only to routes that ask for one: USD-M
    # historicalTrades, which fills trade-id gaps. Best set as LAKE_API_KEY, not in a file.
    api_key: SecretStr | None = None
    markets: MarketsConfig = Field(default_factory=MarketsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    backfill: BackfillConfig = Field(default_factory=BackfillConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @property
    def landing_path(self) -> Path:
        """Where landing segments wait: ``capture.landing_dir`` resolved against the lake root.

        Raises:
            ConfigError: the root is remote and no absolute landing directory is configured.
        """
        configured = self.capture.landing_dir
        if configured:
            path = Path(configured).expanduser()
            if path.is_absolute():
                return path
        if not self.storage.is_local:
            raise ConfigError(
                f"capture.landing_dir must be an absolute local path when storage.root is "
                f"remote ({self.storage.root}): landing segments wait on local disk"
            )
        # resolved: `../landing` from a root not made yet must still name a real place
        return (Path(self.storage.uri) / (configured or LANDING_DIR_NAME)).resolve()

    def endpoints(self, url: str) -> Endpoints:
        """The endpoints of the exchange at ``url`` (``live`` or a base URL), with the API key."""
        from lake.binance.endpoints import Endpoints

        key = self.api_key.get_secret_value() if self.api_key is not None else None
        return Endpoints.for_exchange(url, api_key=key or None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def load_settings(
    config_path: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    override_names: Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate the configuration; see :func:`lake.settings_load.load_settings`."""
    from lake.settings_load import load_settings as load

    return load(config_path, overrides=overrides, override_names=override_names)


def check_writable_root(storage: StorageConfig) -> None:
    """See :func:`lake.settings_load.check_writable_root`."""
    from lake.settings_load import check_writable_root as check

    check(storage)


def check_writable_dir(directory: Path, what: str) -> None:
    """See :func:`lake.settings_load.check_writable_dir`."""
    from lake.settings_load import check_writable_dir as check

    check(directory, what)
