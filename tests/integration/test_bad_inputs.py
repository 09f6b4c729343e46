"""Every bad input gets exactly one ``error:`` line on stderr, exit code 2 (1 when the command ran
and could not do its job: an exchange or storage that cannot be reached), no traceback, nothing
on stdout, and leaves the working directory exactly as it was.

The cases run in-process through typer's CliRunner (a process each would cost a second apiece);
two run as real processes, for the entry points themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lake.cli import app
from lake.exchange.testing import RunningExchange, start_exchange

pytestmark = pytest.mark.integration

NOWHERE = "http://127.0.0.1:1"  # nothing listens on port 1: connections are refused at once
NEVER = "http://127.0.0.1:9"  # for cases that must fail before the exchange is asked
S3_DOWN = (
    "storage:\n  root: s3://bucket/lake\n  options: {AWS_ENDPOINT_URL: 'http://127.0.0.1:1', "
    "AWS_ALLOW_HTTP: 'true', AWS_REGION: us-east-1, AWS_ACCESS_KEY_ID: x, "
    "AWS_SECRET_ACCESS_KEY: y}\n"
)
BACKFILL = ["backfill", "--symbols", "BTCUSDT", "--start", "2024-03-01", "--end", "2024-03-02"]


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    message: str  # a fragment the error line must hold
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # path under the tmp dir -> text


def c(
    id: str,
    args: list[str],
    message: str,
    *,
    code: int = 2,
    env: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
) -> Case:
    return Case(id, args, message, code, env or {}, files or {})


LK = ["--lake", "lk"]

CASES = [
    # usage errors: one mechanism for every command (lake.clikit.OneLineErrors)
    c("unknown-option", [*LK, "init", "--bogus"], "no such option: --bogus"),
    c("unknown-root-option", ["--bogus", "tables"], "no such option: --bogus"),
    c("unknown-command", [*LK, "tabels"], "no such command 'tabels'"),
    c("extra-argument", [*LK, "tables", "extra"], "unexpected extra argument"),
    c("missing-argument", [*LK, "history"], "missing argument"),
    c("missing-option-value", [*LK, "show-watermark", "--table"], "requires an argument"),
    c("config-without-value", ["--config"], "requires an argument"),
    c("limit-not-a-number", [*LK, "history", "agg_trades", "--limit", "abc"], "'--limit'"),
    c("limit-zero", [*LK, "history", "agg_trades", "--limit", "0"], "'--limit'"),
    c(
        "limit-huge",
        [*LK, "history", "agg_trades", "--limit", "99999999999999999999"],
        "'--limit'",
    ),
    c("duration-negative", [*LK, "collect", "--duration", "-5"], "'--duration'"),
    c("duration-not-a-number", [*LK, "collect", "--duration", "abc"], "'--duration'"),
    c("duration-infinite", [*LK, "collect", "--duration", "inf"], "--duration inf"),
    c("backfill-source-without-value", [*LK, *BACKFILL, "--source"], "requires an argument"),
    c("land-wait-negative", [*LK, "land", "--wait", "-1"], "'--wait'"),
    c("demo-capture-zero", [*LK, "demo", "--capture", "0"], "'--capture'"),
    c("demo-capture-not-a-number", [*LK, "demo", "--capture", "abc"], "'--capture'"),
    c("serve-port-too-big", ["exchange", "serve", "--port", "70000"], "'--port'"),
    c("serve-port-not-a-number", ["exchange", "serve", "--port", "abc"], "'--port'"),
    c("serve-unknown-option", ["exchange", "serve", "--bogus"], "no such option"),
    # the built-in exchange: nonsense it used to accept
    c("serve-clock-negative", ["exchange", "serve", "--clock-speed", "-1"], "'--clock-speed'"),
    c("serve-clock-infinite", ["exchange", "serve", "--clock-speed", "inf"], "--clock-speed inf"),
    c("serve-agg-rate-zero", ["exchange", "serve", "--agg-rate", "0"], "--agg-rate 0"),
    c("serve-agg-rate-negative", ["exchange", "serve", "--agg-rate", "-3"], "--agg-rate -3"),
    c("serve-speed-negative", ["exchange", "serve", "--speed", "-2"], "'--speed'"),
    c("serve-empty-api-key", ["exchange", "serve", "--api-key", " "], "--api-key is empty"),
    c("serve-bad-symbol", ["exchange", "serve", "--symbols", "BTC-USDT"], "bad symbol"),
    c("serve-bad-fault", ["exchange", "serve", "--faults", "ws.explode"], "unknown fault"),
    c("serve-bad-start", ["exchange", "serve", "--start", "yesterday"], "bad --start"),
    c("serve-replay-missing", ["exchange", "serve", "--replay", "nope.gz"], "not found"),
    c("serve-replay-directory", ["exchange", "serve", "--replay", "foreign"], "is a directory"),
    c(
        "serve-replay-not-a-recording",
        ["exchange", "serve", "--replay", "foreign/notes.txt"],
        "not a recording",
    ),
    c(
        "serve-replay-broken-gzip",
        ["exchange", "serve", "--replay", "broken.gz"],
        "cannot be read as a recording",
        files={"broken.gz": "\x1f\x8b not gzip at all"},
    ),
    # configuration: flags, environment, file
    c("empty-lake-flag", ["--lake", "", "init"], "--lake: storage.root: must not be empty"),
    c("empty-lake-flag-read", ["--lake", "", "tables"], "must not be empty"),
    c(
        "empty-root-variable",
        ["init"],
        "LAKE_STORAGE__ROOT: storage.root: must not be empty",
        env={"LAKE_STORAGE__ROOT": ""},
    ),
    c("newline-in-root", ["--lake", "a\nb", "init"], "control character"),
    c(
        "misspelt-variable",
        ["init"],
        "LAKE_STORGE__ROOT: no such setting (did you mean LAKE_STORAGE__ROOT?)",
        env={"LAKE_STORGE__ROOT": "lk"},
    ),
    c(
        "variable-below-a-value",
        [*LK, "tables"],
        "LAKE_EXCHANGE__URL: no such setting",
        env={"LAKE_EXCHANGE__URL": NEVER},
    ),
    c(
        "list-variable-bad-json",
        [*LK, "tables"],
        'LAKE_MARKETS__UM__SYMBOLS: expected a list such as BTCUSDT,ETHUSDT or ["BTCUSDT"',
        env={"LAKE_MARKETS__UM__SYMBOLS": '["BTCUSDT",'},
    ),
    c(
        "list-variable-bad-symbol",
        [*LK, "tables"],
        "LAKE_MARKETS__UM__SYMBOLS: markets.um.symbols.1: 'ethusdt' is not a valid symbol",
        env={"LAKE_MARKETS__UM__SYMBOLS": "BTCUSDT,ethusdt"},
    ),
    c(
        "mapping-variable-not-json",
        [*LK, "tables"],
        "LAKE_STORAGE__OPTIONS: expected a JSON object",
        env={"LAKE_STORAGE__OPTIONS": "AWS_REGION=eu-west-1"},
    ),
    c(
        "number-variable-not-a-number",
        [*LK, "tables"],
        "LAKE_CAPTURE__FLUSH_INTERVAL_S: capture.flush_interval_s:",
        env={"LAKE_CAPTURE__FLUSH_INTERVAL_S": "fast"},
    ),
    c(
        "variable-contradicts-the-defaults",
        [*LK, "tables"],
        "LAKE_BACKFILL__END: backfill: end 2000-01-01 is before start",
        env={"LAKE_BACKFILL__END": "2000-01-01"},
    ),
    c(
        "exchange-variable",
        [*LK, "collect"],
        "LAKE_EXCHANGE: exchange: 'ftp://x' is not an exchange",
        env={"LAKE_EXCHANGE": "ftp://x"},
    ),
    c(
        "config-variable-missing-file",
        [*LK, "tables"],
        "LAKE_CONFIG: config file missing.yaml does not exist",
        env={"LAKE_CONFIG": "missing.yaml"},
    ),
    c("config-is-a-directory", ["--config", "foreign", *LK, "tables"], "is a directory"),
    c("config-missing", ["--config", "missing.yaml", *LK, "tables"], "does not exist"),
    c(
        "lake-flag-hides-no-bad-storage-section",
        ["--config", "bad.yaml", *LK, "tables"],
        "bad.yaml: storage: Input should be",
        files={"bad.yaml": "storage: 5\n"},
    ),
    c(
        "lake-flag-hides-no-unknown-key",
        ["--config", "bad.yaml", *LK, "init"],
        "bad.yaml: storage.colour: unknown key",
        files={"bad.yaml": "storage: {root: ./x, colour: red}\n"},
    ),
    c(
        "config-bad-yaml",
        ["--config", "bad.yaml", "tables"],
        "bad.yaml: invalid YAML at line",
        files={"bad.yaml": "markets: [1, 2\n"},
    ),
    c(
        "config-bad-exchange",
        ["--config", "bad.yaml", *LK, "tables"],
        "bad.yaml: exchange: 'binance.com' is not an exchange",
        files={"bad.yaml": "exchange: binance.com\n"},
    ),
    c("root-under-a-file", ["--lake", "a-file/lk", "init"], "is not writable"),
    # a root that is not a lake
    c("init-into-foreign-directory", ["--lake", "foreign", "init"], "no cryptolake lake"),
    c("tables-on-foreign-directory", ["--lake", "foreign", "tables"], "no cryptolake lake"),
    c("tables-on-a-file", ["--lake", "a-file", "tables"], "is a file, not a lake directory"),
    c("history-on-a-file", ["--lake", "a-file", "history", "agg_trades"], "is a file"),
    c("watermark-on-foreign", ["--lake", "foreign", "show-watermark"], "no cryptolake lake"),
    c(
        "collect-into-foreign",
        ["--lake", "foreign", "collect", "--exchange", NEVER],
        "no cryptolake lake",
    ),
    c(
        "backfill-into-foreign",
        ["--lake", "foreign", *BACKFILL, "--exchange", NEVER],
        "no cryptolake lake",
    ),
    c(
        "dry-run-on-foreign",
        ["--lake", "foreign", *BACKFILL, "--exchange", NEVER, "--dry-run"],
        "no cryptolake lake",
    ),
    c("land-on-a-file", ["--lake", "a-file", "land", "--no-repair"], "not a directory"),
    c("demo-under-a-file", ["--lake", "a-file/lk", "demo"], "is not writable"),
    c(
        "s3-root-unreachable-read",
        ["--config", "s3.yaml", "tables"],
        "storage.root s3://bucket/lake cannot be reached",
        code=1,
        files={"s3.yaml": S3_DOWN},
    ),
    c(
        "s3-root-unreachable-write",
        ["--config", "s3.yaml", "init"],
        "Connection refused",
        code=1,
        files={"s3.yaml": S3_DOWN},
    ),
    # tables
    c("unknown-table", [*LK, "history", "nope"], "unknown table 'nope'"),
    c("unknown-watermark-table", [*LK, "show-watermark", "--table", "nope"], "unknown table"),
    c("history-before-init", [*LK, "history", "agg_trades"], "cryptolake init"),
    # backfill
    c("backfill-bad-day", [*LK, *BACKFILL, "--start", "2024-02-30"], "bad --start"),
    c("backfill-end-first", [*LK, *BACKFILL, "--start", "2024-03-05"], "is before --start"),
    c("backfill-bad-dataset", [*LK, *BACKFILL, "--datasets", "depth"], "unknown dataset"),
    c("backfill-bad-symbol", [*LK, *BACKFILL, "--symbols", "BTC/USDT"], "bad symbol"),
    c("backfill-bad-market", [*LK, *BACKFILL, "--markets", "futures"], "unknown market"),
    c("backfill-bad-exchange", [*LK, *BACKFILL, "--exchange", "ftp://x"], "is not an exchange"),
    c(
        "backfill-unreachable",
        [*LK, *BACKFILL, "--exchange", NOWHERE],
        f"the exchange at {NOWHERE} cannot be reached (GET /api/v3/ping",
        code=1,
    ),
    c(
        "backfill-unlisted-symbol",
        [*LK, *BACKFILL, "--symbols", "BTCUSDT,NOSUCHUSDT", "--exchange", "{ex}"],
        "does not list NOSUCHUSDT on spot; NOSUCHUSDT on um",
    ),
    # collect
    c("collect-bad-market", [*LK, "collect", "--markets", "futures"], "unknown market"),
    c("collect-bad-symbol", [*LK, "collect", "--symbols", "BTC-USDT"], "bad symbol"),
    c("collect-bad-exchange", [*LK, "collect", "--exchange", "sim2"], "is not an exchange"),
    c(
        "collect-landing-under-a-file",
        ["--config", "landing.yaml", *LK, "collect", "--exchange", NEVER],
        "the landing directory",
        files={"landing.yaml": "capture: {landing_dir: ../a-file/landing}\n"},
    ),
    c(
        "collect-landing-is-a-file",
        [*LK, "collect", "--exchange", NEVER, "--markets", "um"],
        "exists and is not a directory",
        files={"lk/_landing/um": "not a directory"},
    ),
    c(
        "collect-landing-unwritable",
        ["--config", "landing.yaml", *LK, "collect", "--exchange", NEVER],
        "is not writable",
        files={"landing.yaml": "capture: {landing_dir: '{unwritable}/landing'}\n"},
    ),
    c(
        "collect-unreachable",
        [*LK, "collect", "--exchange", NOWHERE, "--duration", "5"],
        f"the exchange at {NOWHERE} cannot be reached",
        code=1,
    ),
    c(
        "collect-unlisted-symbol",
        [*LK, "collect", "--exchange", "{ex}", "--symbols", "NOSUCHUSDT", "--markets", "um"],
        "does not list NOSUCHUSDT on um",
    ),
    # land
    c("land-bad-market", [*LK, "land", "--markets", "futures"], "unknown market"),
    c(
        "land-repair-unreachable",  # checked before anything lands (--no-repair lands without)
        [*LK, "land", "--exchange", NOWHERE],
        f"the exchange at {NOWHERE} cannot be reached",
        code=1,
    ),
    c(
        "land-landing-under-a-file",
        ["--config", "landing.yaml", *LK, "land", "--no-repair"],
        "a-file",
        files={"landing.yaml": "capture: {landing_dir: ../a-file/landing}\n"},
    ),
    # query
    c("query-bad-sql", [*LK, "query", "selec 1"], 'syntax error at or near "selec"'),
    c("query-unknown-table", [*LK, "query", "select * from nope"], "nope does not exist"),
    c("query-writes-a-file", [*LK, "query", "copy (select 1) to 'x.csv'"], "are disabled"),
    c("query-json-and-csv", [*LK, "query", "select 1", "--json", "--csv"], "not both"),
    c("query-on-a-file", ["--lake", "a-file", "query", "select 1"], "is a file"),
    c(
        "query-as-of-before-init",
        [*LK, "query", "select * from latest_price", "--as-of", "3"],
        "cryptolake init",
    ),
    c(
        "query-as-of-not-a-time",
        [*LK, "query", "select * from bronze_trades", "--as-of", "yesterday"],
        "bad as_of 'yesterday'",
    ),
]


@pytest.fixture(scope="module")
def listing_exchange() -> Iterator[RunningExchange]:
    """A built-in exchange listing BTCUSDT and ETHUSDT on both markets (for unlisted symbols)."""
    ex = start_exchange()
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot write in (as root, mode bits do not stop it: /sys)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        yield locked
        locked.chmod(0o700)
        return
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pass
    except OSError:
        yield Path("/sys")
        return
    pytest.skip("no directory here refuses a write by root")


def tree(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root`` with whether it is a directory, its size and mtime (ns)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (path.is_dir(), st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_error_line_and_nothing_written(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    for key in [k for k in os.environ if k.upper().startswith("LAKE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("someone else's files\n")
    fill = {"{tmp}": str(tmp_path)}
    if any("{ex}" in a for a in case.args):
        fill["{ex}"] = request.getfixturevalue("listing_exchange").base_url
    if any("{unwritable}" in text for text in case.files.values()):
        fill["{unwritable}"] = str(request.getfixturevalue("unwritable"))
    for name, text in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_filled(text, fill))
    args = [_filled(a, fill) for a in case.args]
    before = tree(tmp_path)

    t0 = time.monotonic()
    result = CliRunner().invoke(app, args, env=case.env)
    elapsed = time.monotonic() - t0

    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code == case.code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "Usage:" not in result.stderr
    assert case.message in lines[0]
    assert result.stdout == ""
    assert tree(tmp_path) == before
    assert elapsed < 10, f"took {elapsed:.1f} s"


def _filled(text: str, fill: dict[str, str]) -> str:
    for key, value in fill.items():
        text = text.replace(key, value)
    return text


def test_the_installed_entry_points_print_usage_errors_as_one_line(tmp_path: Path) -> None:
    cli = str(Path(sys.executable).with_name("cryptolake"))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LAKE_")}
    runs = [
        [cli, "--lake", "lk", "collect", "--duration", "-5"],
        [sys.executable, "-m", "lake.exchange", "serve", "--port", "70000"],
    ]
    for cmd in runs:
        done = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2 and done.stdout == ""
        assert (
            done.stderr.startswith("error: invalid value for '--") and done.stderr.count("\n") == 1
        ), done.stderr
    assert list(tmp_path.iterdir()) == []
