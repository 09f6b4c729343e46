"""Configuration: defaults, file, environment precedence, and one clear error per bad input."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from lake.settings import (
    ConfigError,
    Settings,
    StorageConfig,
    check_writable_root,
    load_settings,
    markets_option,
    symbols_option,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("LAKE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no config/lake.yaml here unless a test writes one


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lake.yaml"
    path.write_text(text)
    return path


def test_shipped_config_loads_and_matches_the_documented_defaults() -> None:
    shipped = load_settings(REPO / "config" / "lake.yaml")
    assert shipped == Settings()
    assert shipped.storage.root == "./data/lake"
    assert shipped.exchange == "sim"
    assert "markPrice@1s" in shipped.markets.um.streams
    assert shipped.markets.spot.streams == ("trade", "bookTicker")


def test_file_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        "exchange: live\nstorage: {root: /from/file}\nmarkets: {um: {symbols: [SOLUSDT]}}\n",
    )
    assert load_settings(path).exchange == "live"
    monkeypatch.setenv("LAKE_STORAGE__ROOT", "/from/env")
    monkeypatch.setenv("LAKE_EXCHANGE", "http://127.0.0.1:8765/")
    s = load_settings(path)
    assert s.storage.root == "/from/env"
    assert s.exchange == "http://127.0.0.1:8765"
    assert s.markets.um.symbols == ("SOLUSDT",)  # nested keys merge across sources
    assert load_settings(path, overrides={"storage": {"root": "/cli"}}).storage.root == "/cli"


def test_lake_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_CONFIG", str(write(tmp_path, "exchange: live\n")))
    assert load_settings().exchange == "live"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "markets: {spot: {symbols: [btcusdt]}}",
            "markets.spot.symbols.0: 'btcusdt' is not a valid symbol",
        ),
        ("markets: {um: {symbols: [BTC-USDT]}}", "'BTC-USDT' is not a valid symbol"),
        ("storage: {root: ./x, colour: red}", "storage.colour: unknown key"),
        ("surprise: 1", "surprise: unknown key"),
        ("backfill: {start: 2024-13-01}", "backfill.start:"),
        (
            "backfill: {start: 2024-02-01, end: 2024-01-01}",
            "end 2024-01-01 is before start 2024-02-01",
        ),
        ("exchange: binance.com", "is not an exchange"),
        ("markets: {um: {streams: [depth]}}", "unknown um stream 'depth'"),
        ("capture: {flush_interval_s: 5}", "capture.flush_interval_s:"),
        ("markets: [1, 2", "lake.yaml:"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert message.startswith(str(path))


def test_bad_env_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_EXCHANGE", "ftp://nowhere")
    with pytest.raises(ConfigError, match="is not an exchange"):
        load_settings()


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("nope.yaml")


def test_dates_are_parsed(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "backfill: {start: 2023-05-01, end: 2023-06-01}\n"))
    assert s.backfill.start == date(2023, 5, 1)
    assert s.backfill.end == date(2023, 6, 1)


def test_writable_root_checks_without_creating(tmp_path: Path) -> None:
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="not writable"):
        check_writable_root(StorageConfig(root=str(a_file / "lake")))
    with pytest.raises(ConfigError, match="not a directory"):
        check_writable_root(StorageConfig(root=str(a_file)))
    fine = tmp_path / "new" / "lake"
    check_writable_root(StorageConfig(root=str(fine)))
    assert not (tmp_path / "new").exists()
    check_writable_root(StorageConfig(root="s3://bucket/lake"))  # remote: checked on first write


def test_api_key_from_the_environment_reaches_the_endpoints_and_never_a_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "exchange: live\n")
    assert load_settings(path).endpoints("live").api_key is None
    monkeypatch.setenv("LAKE_API_KEY", "k3y-value")
    settings = load_settings(path)
    endpoints = settings.endpoints("live")
    assert endpoints.api_key == "k3y-value"
    assert settings.endpoints("http://127.0.0.1:8765").api_key == "k3y-value"
    assert "k3y-value" not in repr(settings) and "k3y-value" not in repr(endpoints)


def test_market_and_symbol_options_are_read_one_way_for_every_command() -> None:
    assert markets_option(None) == ["spot", "um"]
    assert markets_option("um, spot,um") == ["um", "spot"]
    assert markets_option(["spot"]) == ["spot"]
    assert symbols_option(None) is None
    assert symbols_option("btcusdt, ETHUSDT,") == ["BTCUSDT", "ETHUSDT"]
    for bad, message in [
        (lambda: markets_option("spot,coinm"), "unknown market 'coinm' in --markets"),
        (lambda: markets_option(" , "), "--markets is empty"),
        (lambda: symbols_option("BTC-USDT"), "bad symbol 'BTC-USDT' in --symbols"),
        (lambda: symbols_option(","), "bad symbol '' in --symbols"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            bad()


def test_every_lake_variable_must_name_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_STORGE__ROOT", "/mnt/lake")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "LAKE_STORGE__ROOT: no such setting (did you mean LAKE_STORAGE__ROOT?)"
    )
    monkeypatch.delenv("LAKE_STORGE__ROOT")
    monkeypatch.setenv("LAKE_EXCHANGE__URL", "http://127.0.0.1:8765")  # below a plain value
    with pytest.raises(ConfigError, match=r"^LAKE_EXCHANGE__URL: no such setting"):
        load_settings()
    monkeypatch.delenv("LAKE_EXCHANGE__URL")
    monkeypatch.setenv("LAKE_CONFIG", "")  # names the file, not a setting
    monkeypatch.setenv("LAKE_API_KEY", "k")
    monkeypatch.setenv("lake_storage__root", "/lower/case")  # names are case-insensitive
    settings = load_settings()
    assert settings.storage.root == "/lower/case" and settings.api_key is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("BTCUSDT", ("BTCUSDT",)),
        ("BTCUSDT, SOLUSDT,", ("BTCUSDT", "SOLUSDT")),
        ('["BTCUSDT","SOLUSDT"]', ("BTCUSDT", "SOLUSDT")),
        ("", ()),
    ],
)
def test_lists_from_the_environment_take_commas_or_json(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("LAKE_MARKETS__UM__SYMBOLS", value)
    settings = load_settings()
    assert settings.markets.um.symbols == expected
    assert settings.markets.spot.symbols == ("BTCUSDT", "ETHUSDT")  # the rest stays


def test_mappings_from_the_environment_take_json_or_one_variable_per_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKE_STORAGE__OPTIONS", '{"AWS_REGION": "eu-west-1"}')
    monkeypatch.setenv("LAKE_STORAGE__OPTIONS__AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    options = load_settings().storage.options
    assert options == {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "LAKE_MARKETS__UM__SYMBOLS",
            '["BTCUSDT",',
            "LAKE_MARKETS__UM__SYMBOLS: expected a list such as BTCUSDT,ETHUSDT or "
            '["BTCUSDT","ETHUSDT"]',
        ),
        (
            "LAKE_MARKETS__SPOT__SYMBOLS",
            "BTCUSDT,btc",
            "LAKE_MARKETS__SPOT__SYMBOLS: markets.spot.symbols.1: 'btc' is not a valid symbol",
        ),
        (
            "LAKE_STORAGE__OPTIONS",
            "AWS_REGION=eu-west-1",
            'LAKE_STORAGE__OPTIONS: expected a JSON object such as {"key": "value"}, or one '
            "variable per key: LAKE_STORAGE__OPTIONS__KEY=value",
        ),
        ("LAKE_CAPTURE__SEGMENT_ROTATE_S", "soon", "LAKE_CAPTURE__SEGMENT_ROTATE_S: capture."),
        ("LAKE_BACKFILL__END", "2020-01-01", "LAKE_BACKFILL__END: backfill: end 2020-01-01 is"),
        ("LAKE_STORAGE__ROOT", "", "LAKE_STORAGE__ROOT: storage.root: must not be empty"),
    ],
)
def test_a_bad_variable_is_named_with_the_form_expected(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_the_file_is_validated_even_where_a_flag_overrides_it(tmp_path: Path) -> None:
    names = {"storage.root": "--lake"}
    for text, expected in [
        ("storage: 5\n", "storage: Input should be"),
        ("storage: {root: 7}\n", "storage.root: Input should be a valid string"),
    ]:
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            load_settings(path, overrides={"storage": {"root": "/cli"}}, override_names=names)
        assert str(info.value).startswith(f"{path}: {expected}")


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("", "--lake: storage.root: must not be empty"),
        ("   ", "--lake: storage.root: must not be empty"),
        ("lake\nroot", "--lake: storage.root: 'lake\\nroot' holds the control character '\\n'"),
    ],
)
def test_an_empty_root_or_one_with_control_characters_is_refused(root: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            overrides={"storage": {"root": root}}, override_names={"storage.root": "--lake"}
        )
    assert str(info.value).startswith(expected)


def test_config_file_that_is_a_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=f"^--config: {tmp_path} is a directory, not a YAML file"):
        load_settings(tmp_path)
    monkeypatch.setenv("LAKE_CONFIG", "nope.yaml")
    with pytest.raises(ConfigError, match=r"^LAKE_CONFIG: config file nope\.yaml does not exist"):
        load_settings()


def test_a_relative_landing_dir_is_resolved_from_the_root(tmp_path: Path) -> None:
    path = write(tmp_path, f"storage: {{root: {tmp_path}/lk}}\ncapture: {{landing_dir: ../land}}\n")
    assert load_settings(path).landing_path == tmp_path / "land"
