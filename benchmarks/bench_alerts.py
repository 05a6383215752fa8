"""Alert evaluation per tick against the engine's re-margining of the same accounts.

10,000 Binance BTCUSDT accounts (one position each, 2x to 50x): the baseline is
``evaluate_many`` over all of them at a new mark (what a tick costs the engine); measured is
:func:`crossmargin.service.alerts.evaluate` over their views with three rules each (margin
ratio, liquidation distance, first-passage probability), the states carried from the previous
tick, one view at a time and all views at once (one first-passage call for the tick). Medians
of five runs after a warm-up; printed as accounts per second and as the ratio of the alert
time to the engine time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from crossmargin.book import RiskBook
from crossmargin.health import evaluate_many as margin_many
from crossmargin.model import Account, Market, Position
from crossmargin.rules import load_rulebook
from crossmargin.service.alerts import AlertRule, RuleKind, RuleState, evaluate, evaluate_many
from crossmargin.service.state import AccountView, views_of

ACCOUNTS = 10_000


def accounts(n: int, seed: int = 3) -> list[Account]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        leverage = rng.choice([2, 5, 10, 20, 50])
        balance = float(rng.uniform(500, 50_000))
        qty = balance * leverage / 60_000.0 * rng.choice([-1.0, 1.0])
        out.append(Account(f"a{i}", {"USDT": balance}, [Position("BTCUSDT", qty, 60_000.0)]))
    return out


def median_seconds(work: Callable[[], object], runs: int = 5) -> float:
    work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    rules_book = load_rulebook("binance-usdm")
    book = accounts(ACCOUNTS)
    market = Market(rules_book.instruments, {"BTCUSDT": 57_000.0}, "USDT")
    risk = RiskBook.from_accounts(book, market)
    views: list[AccountView] = views_of(
        risk.analysis(), risk.account_ids, risk.params.symbols, "binance", "2026-01-01T00:00Z"
    )
    rules = {
        v.account_id: [
            AlertRule(f"{v.account_id}-m", v.account_id, RuleKind.MARGIN_RATIO, 0.5, 0.05),
            AlertRule(f"{v.account_id}-d", v.account_id, RuleKind.LIQUIDATION_DISTANCE, 0.05),
            AlertRule(
                f"{v.account_id}-p",
                v.account_id,
                RuleKind.LIQUIDATION_PROBABILITY,
                0.2,
                horizon_days=1.0,
            ),
        ]
        for v in views
    }
    vols = {"BTCUSDT": 0.6}
    states: dict[str, RuleState] = {}

    def one_by_one() -> int:
        fired = 0
        for view in views:
            found, new = evaluate(rules[view.account_id], states, view, 0, vols)
            states.update(new)
            fired += len(found)
        return fired

    def together() -> int:
        found, new = evaluate_many(rules, states, views, 0, vols)
        states.update(new)
        return len(found)

    engine = median_seconds(lambda: margin_many(book, market))
    alone = median_seconds(one_by_one)
    batched = median_seconds(together)
    print(
        f"engine re-margin (health.evaluate_many), {ACCOUNTS:,} accounts: "
        f"{ACCOUNTS / engine:,.0f} accounts/s"
    )
    print(
        f"alerts, 3 rules each, one view at a time (alerts.evaluate): "
        f"{ACCOUNTS / alone:,.0f} accounts/s, {alone / engine:.2f}x the engine's time"
    )
    print(
        f"alerts, 3 rules each, all views at once (alerts.evaluate_many): "
        f"{ACCOUNTS / batched:,.0f} accounts/s, {batched / engine:.2f}x the engine's time"
    )


if __name__ == "__main__":
    main()
