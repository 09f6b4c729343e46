"""The REST client: every request under the shared weight budget, retried when that is safe.

* Before a request its weight is reserved in the budget of its host and market
  (:mod:`lake.binance.budget`); the ``X-MBX-USED-WEIGHT-1M`` header of the answer corrects it.
  Routes with a request-count quota of their own (``fundingRate`` 500 and ``/futures/data``
  1000 per 5 minutes) also reserve one request in that quota's budget.
* 429 and 418 honour ``Retry-After`` (exponential backoff without it) and hold back every other
  request on the same budget until then.
* 5xx, 408 and timeouts are retried with exponential backoff and jitter; other 4xx are errors
  that name the route and Binance's message.

Paging lives in :mod:`lake.binance.history`; this module only sends requests.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from lake.binance.budget import WeightBudget, shared_budget
from lake.binance.endpoints import Endpoints
from lake.binance.limits import (
    API_KEY_HEADER,
    WEIGHT_BUDGET_PER_MINUTE,
    WEIGHT_HEADER,
    IpQuota,
    RestEndpoint,
)
from lake.settings import Market

RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})


class RestError(RuntimeError):
    """A request that failed for good: a 4xx answer, or retries exhausted."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _RateLimit(msgspec.Struct):
    rateLimitType: str
    interval: str
    intervalNum: int
    limit: int


class _ExchangeInfo(msgspec.Struct):
    rateLimits: list[_RateLimit]


_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_INFO_PATH: dict[Market, str] = {"spot": "/api/v3/exchangeInfo", "um": "/fapi/v1/exchangeInfo"}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff for the ``attempt``-th retry (1-based), jittered down to half."""
        cap = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return float(cap * (0.5 + random.random() / 2))


class RestClient:
    """Async client for one exchange (live or the built-in one). Use as an async context."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.retry = retry or RetryPolicy()
        self._client = httpx.AsyncClient(
            timeout=timeout_s, transport=transport, headers={"User-Agent": "cryptolake"}
        )
        self._budgets: dict[Market, WeightBudget] = {}
        self.requests = 0  # requests sent (retries included): callers budget a pass with it

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _key(self, market: Market) -> str:
        # Spot and USD-M weights are counted apart even where one host serves both.
        return f"{self.endpoints.rest_url(market, '')}#{market}"

    def budget(self, market: Market) -> WeightBudget:
        """The shared weight budget of this exchange's host for ``market``."""
        if market not in self._budgets:
            self._budgets[market] = shared_budget(
                self._key(market), WEIGHT_BUDGET_PER_MINUTE[market]
            )
        return self._budgets[market]

    def quota(self, market: Market, quota: IpQuota) -> WeightBudget:
        """The shared request-count budget of a route family (e.g. 1000 per 5 min), one per
        request, next to the weight budget."""
        return shared_budget(
            f"{self._key(market)}#{quota.name}", quota.requests, window_s=float(quota.window_s)
        )

    async def calibrate(self, market: Market, *, window_s: float | None = None) -> WeightBudget:
        """Learn the weight limit and window from ``exchangeInfo`` (its REQUEST_WEIGHT entry);
        ``window_s`` overrides the window it states."""
        url = self.endpoints.rest_url(market, _INFO_PATH[market])
        body = await self._send(market, url, {}, weight=20 if market == "spot" else 1)
        info = msgspec.json.decode(body, type=_ExchangeInfo)
        for rl in info.rateLimits:
            if rl.rateLimitType == "REQUEST_WEIGHT":
                window = window_s or float(_INTERVAL_S.get(rl.interval, 60) * rl.intervalNum)
                self._budgets[market] = shared_budget(self._key(market), rl.limit, window_s=window)
        return self.budget(market)

    async def get(
        self,
        endpoint: RestEndpoint,
        params: Mapping[str, Any],
        *,
        limit: int | None = None,
    ) -> bytes:
        """GET ``endpoint`` with ``params`` (and ``limit``); returns the raw body.

        Raises:
            RestError: a 4xx other than 408/418/429, or the retries ran out.
        """
        query = dict(params)
        if limit is not None:
            query["limit"] = limit
        url = self.endpoints.rest_url(endpoint.market, endpoint.path)
        key = self.endpoints.api_key if endpoint.api_key else None
        if endpoint.quota is not None:
            await self._reserve(self.quota(endpoint.market, endpoint.quota), 1)
        try:
            return await self._send(
                endpoint.market,
                url,
                query,
                weight=endpoint.weight_for(limit),
                headers={API_KEY_HEADER: key} if key else None,
            )
        except RestError as exc:
            if exc.status == 401 and endpoint.api_key:
                hint = "was refused" if key else "is needed: set LAKE_API_KEY"
                raise RestError(f"{exc} (an API key {hint})", status=401) from None
            raise

    async def _send(
        self,
        market: Market,
        url: str,
        params: Mapping[str, Any],
        *,
        weight: int,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        budget = self.budget(market)
        last_error = "no attempt made"
        for attempt in range(1, self.retry.attempts + 1):
            await self._reserve(budget, weight)
            self.requests += 1
            try:
                resp = await self._client.get(url, params=params, headers=headers)
            except httpx.TransportError as exc:  # timeouts, resets, refused connections
                last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            used = resp.headers.get(WEIGHT_HEADER)
            if used is not None and used.isdigit():
                budget.observe(int(used))
            status = resp.status_code
            if status == 200:
                return resp.content
            last_error = f"HTTP {status}: {resp.text[:200]}"
            if status in (429, 418):
                wait = _retry_after(resp) or self.retry.delay(attempt)
                budget.block(wait, banned=status == 418)
                continue
            if status in RETRY_STATUSES:
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            shown = httpx.URL(url, params=dict(params))  # the query as sent, not a dict repr
            raise RestError(f"GET {shown} failed: {last_error}", status=status)
        raise RestError(f"GET {url} gave up after {self.retry.attempts} attempts: {last_error}")

    @staticmethod
    async def _reserve(budget: WeightBudget, weight: int) -> None:
        while (wait := budget.reserve(weight)) > 0:
            budget.note_wait(wait)
            await asyncio.sleep(wait)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
