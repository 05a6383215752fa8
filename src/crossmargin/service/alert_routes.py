"""Alert rules, webhooks, the alert history and the alert WebSocket; the tick listener that
evaluates the rules and delivers what fires.

After each tick the listener evaluates every rule of each changed account
(:func:`crossmargin.service.alerts.evaluate`) and sends each alert, in this order, to the hub
(channels ``alerts`` and ``alerts:{account_id}``, read by the WebSocket routes), into the
ledger database's record, to the bus (NATS subject ``crossmargin.alerts.{account}`` when the
service has a broker) and, in the background, to each webhook that follows the account. The
tick-to-alert latency is observed when the alert reaches the hub.

With a broker (``Settings.nats_url``) the service also applies the price updates published on
``crossmargin.prices`` (consumer ``service-{host}-{port}``: each process sees the whole feed),
and puts the alerts other processes raise on its own WebSocket channels (an ephemeral consumer
of the alert stream, :meth:`Bus.alert_feed`), each alert id once, so a client sees every
process's alerts whichever process it is connected to.

Rules and webhooks are kept in the ledger database (:mod:`crossmargin.service.alert_store`)
and read at start-up; each rule's hysteresis state lives in the process. An account key sees
and changes only its account's rules, webhooks and alerts; the operator all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import time
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Annotated, Any, Literal

import httpx
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Query,
    Request,
    Response,
    WebSocket,
)
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from crossmargin.model import CrossMarginError
from crossmargin.service.alert_store import AlertStore
from crossmargin.service.alerts import AlertRule, RuleKind, RuleState, evaluate_many, parse_rule
from crossmargin.service.bus import Bus, BusSubscription, LocalBus, NatsBus
from crossmargin.service.errors import ApiError
from crossmargin.service.security import Principal, principal, require_account
from crossmargin.service.state import AccountView, ServiceState, Tick
from crossmargin.service.streams import caller, forward
from crossmargin.service.webhooks import Delivery, Webhook, WebhookSender, parse_webhook

__all__ = ["AlertService", "router", "start", "stop"]

log = logging.getLogger("crossmargin.service")

router = APIRouter(tags=["alerts"])

SHOWN_IDS = 100_000
"""Alert ids remembered as shown on the WebSocket channels (a relayed copy of one is dropped)."""
NATS_PREFIX = "crossmargin"
"""Subject prefix (and, upper-cased, stream-name prefix) of the service's NATS streams."""

Number = StrictFloat | StrictInt
Account = Annotated[Principal, Depends(require_account)]
Anyone = Annotated[Principal, Depends(principal)]


class AlertService:
    """Rules by id, their states, webhooks by id, the bus and the webhook sender of one
    service process (``app.state.alerts``)."""

    def __init__(
        self,
        state: ServiceState,
        bus: Bus,
        sender: WebhookSender | None = None,
        store: AlertStore | None = None,
    ) -> None:
        self.state = state
        self.bus = bus
        self.sender = sender
        self.store = store if store is not None else AlertStore(state.ledger.store)
        self.rules: dict[str, AlertRule] = {}
        self._by_account: dict[str, list[AlertRule]] = {}
        for rule in self.store.rules():
            self._keep(rule)
        # A restart goes on counting each rule's firings from the record, so an alert id
        # ({rule}-{n}) is never reused (the record, the bus and webhook receivers drop one
        # they have seen).
        self.states: dict[str, RuleState] = {}
        fired = state.records.fired() if self.rules else {}
        for rule_id in self.rules:
            if fired.get(rule_id):
                self.states[rule_id] = RuleState(count=fired[rule_id])
        self.webhooks: dict[str, Webhook] = {h.id: h for h in self.store.webhooks()}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unrecorded: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._shown: OrderedDict[str, None] = OrderedDict()
        self._recorder: asyncio.Task[None] | None = None

    def add_rule(self, rule: AlertRule) -> None:
        """Keep a rule (database, then this process)."""
        self.store.add_rule(rule)
        self._keep(rule)

    def _keep(self, rule: AlertRule) -> None:
        # Lists are replaced, never changed in place: routes run on worker threads while a
        # tick reads them on the event loop.
        self.rules[rule.id] = rule
        self._by_account[rule.account_id] = [*self._by_account.get(rule.account_id, ()), rule]

    def remove_rules(self, ids: list[str]) -> None:
        """Forget rules and their states."""
        self.store.delete_rules(ids)
        for rule_id in ids:
            rule = self.rules.pop(rule_id, None)
            self.states.pop(rule_id, None)
            if rule is not None:
                kept = [r for r in self._by_account[rule.account_id] if r.id != rule_id]
                if kept:
                    self._by_account[rule.account_id] = kept
                else:
                    del self._by_account[rule.account_id]

    def add_webhook(self, hook: Webhook) -> None:
        """Keep a webhook (database, then this process)."""
        self.store.add_webhook(hook)
        self.webhooks[hook.id] = hook

    def remove_webhook(self, webhook_id: str) -> None:
        """Forget a webhook."""
        self.store.delete_webhook(webhook_id)
        self.webhooks.pop(webhook_id, None)

    def failed(self, delivery: Delivery) -> None:
        """A webhook delivery given up: counted in the metrics and logged."""
        self.state.metrics.webhook_failures.inc()
        log.warning(
            "webhook delivery failed",
            extra={
                "webhook": delivery.webhook_id,
                "alert": delivery.alert_id,
                "error": delivery.error,
            },
        )

    def watched(self) -> list[str]:
        """The accounts with rules (their views are kept current on every change)."""
        return list(self._by_account)

    def rules_of(self, account_id: str) -> list[AlertRule]:
        """The account's rules, in the order they were added."""
        return list(self._by_account.get(account_id, ()))

    def _volatility(self, views: list[AccountView]) -> dict[str, float]:
        """Realised volatility of the symbols held in ``views``."""
        symbols = {p.symbol for view in views for p in view.positions}
        return {symbol: self.state.volatility(symbol) for symbol in sorted(symbols)}

    async def on_tick(self, tick: Tick) -> None:
        """Evaluate the changed accounts' rules and deliver what fires."""
        rules = self._by_account
        views = [view for view in tick.changed if view.account_id in rules]
        if not views:
            return
        probable = [
            view
            for view in views
            if any(r.kind is RuleKind.LIQUIDATION_PROBABILITY for r in rules[view.account_id])
        ]
        vols = self._volatility(probable)
        alerts, states = evaluate_many(rules, self.states, views, tick.received_ns, vols)
        self.states.update(states)
        if alerts:
            await self.deliver([alert.as_dict() for alert in alerts], tick.received_ns)

    async def deliver(self, alerts: list[dict[str, Any]], received_ns: int) -> None:
        """Publish, record and send the alerts of one tick (see the module docstring): they go
        out on the WebSocket channels at once; the ledger's record, the bus and the webhooks
        take them after the alerts of the ticks before (ticks overlap here, never reorder),
        the alerts of every tick waiting meanwhile in one transaction. Returns once they are
        recorded and on the bus."""
        for alert in alerts:
            self.show(alert)
            self.state.metrics.observe_tick_to_alert(received_ns)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unrecorded.append((alerts, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.ensure_future(self._record_waiting())
        await asyncio.shield(done)

    def show(self, alert: dict[str, Any]) -> bool:
        """Put ``alert`` on the WebSocket channels (``alerts``, ``alerts:{account_id}``) unless
        its id was shown already (among the last :data:`SHOWN_IDS`); whether it was."""
        alert_id = str(alert.get("id"))
        if alert_id in self._shown:
            return False
        self._shown[alert_id] = None
        if len(self._shown) > SHOWN_IDS:
            self._shown.popitem(last=False)
        self.state.hub.publish("alerts", alert)
        self.state.hub.publish(f"alerts:{alert.get('account_id')}", alert)
        return True

    async def _record_waiting(self) -> None:
        """Record and send the waiting ticks' alerts, all of them at a time, in tick order,
        until none wait; each tick's caller is answered when its alerts are through."""
        while self._unrecorded:
            batch, self._unrecorded = self._unrecorded, []
            try:
                await self._record_and_send([a for alerts, _ in batch for a in alerts])
            except Exception as error:
                for _, done in batch:
                    done.set_exception(error)
            else:
                for _, done in batch:
                    done.set_result(None)

    async def _record_and_send(self, alerts: list[dict[str, Any]]) -> None:
        try:
            await self.state.run(functools.partial(self.state.record_alerts, alerts))
        except CrossMarginError as error:
            log.error("alerts not recorded", extra={"reason": str(error), "alerts": len(alerts)})
        for alert in alerts:
            try:
                await self.bus.publish_alert(alert)
            except Exception:
                log.exception("alert not published on the bus", extra={"alert": alert["id"]})
        if self.sender is None:
            return
        for alert in alerts:
            for hook in list(self.webhooks.values()):
                if hook.wants(alert):
                    task = asyncio.create_task(self.sender.deliver(hook, alert))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def cancel(self) -> None:
        """Stop the webhook deliveries under way."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _service(request: Request | WebSocket) -> AlertService:
    found: AlertService = request.app.state.alerts
    return found


class RuleIn(BaseModel):
    """An alert rule (see ``crossmargin.service.alerts``): fractions and probabilities lie in
    [0, 1]; ``band`` is the hysteresis margin in the threshold's units."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal[
        "margin_ratio",
        "crash_distance",
        "liquidation_distance",
        "status_change",
        "liquidation_probability",
    ]
    threshold: Number | None = Field(None, description="Required except for status_change.")
    band: Number = Field(0.0, description="Re-arms once the figure clears the threshold by this.")
    cooldown_s: Number = Field(0.0, description="Seconds quiet after a firing.")
    horizon_days: Number = Field(1.0, description="First-passage horizon in days.")


class WebhookIn(BaseModel):
    """A receiver: deliveries are signed with ``secret`` (HMAC-SHA256)."""

    model_config = ConfigDict(extra="forbid")

    url: StrictStr = Field(max_length=2000)
    secret: StrictStr = Field(min_length=16, max_length=200)
    account_id: StrictStr | None = Field(None, description="Follow one account (default: all).")


@router.get("/accounts/{account_id}/alerts")
def list_rules(account_id: str, who: Account, request: Request) -> list[dict[str, Any]]:
    """The account's alert rules."""
    service = _service(request)
    service.state.require(account_id)
    return [r.as_dict() for r in service.rules_of(account_id)]


@router.post("/accounts/{account_id}/alerts", status_code=201)
def add_rule(account_id: str, body: RuleIn, who: Account, request: Request) -> dict[str, Any]:
    """Add an alert rule to the account; its id is in the answer."""
    service = _service(request)
    service.state.require(account_id)
    rule_id = uuid.uuid4().hex[:16]
    try:
        rule = parse_rule(body.model_dump(exclude_none=True), rule_id, account_id)
    except CrossMarginError as error:
        raise ApiError.of(error) from None
    service.add_rule(rule)
    if rule.kind is RuleKind.STATUS_CHANGE:
        status = service.state.view(account_id).status
        service.states[rule_id] = RuleState(reported_status=status)
    return rule.as_dict()


@router.delete("/accounts/{account_id}/alerts/{rule_id}", status_code=204)
def delete_rule(account_id: str, rule_id: str, who: Account, request: Request) -> Response:
    """Remove one of the account's rules."""
    service = _service(request)
    rule = service.rules.get(rule_id)
    if rule is None or rule.account_id != account_id:
        raise ApiError(404, "rule_id", f"no rule {rule_id!r} on account {account_id!r}")
    service.remove_rules([rule_id])
    return Response(status_code=204)


@router.delete("/accounts/{account_id}/alerts", status_code=204)
def delete_rules(account_id: str, who: Account, request: Request) -> Response:
    """Remove every rule of the account."""
    service = _service(request)
    service.state.require(account_id)
    service.remove_rules([rule.id for rule in service.rules_of(account_id)])
    return Response(status_code=204)


@router.post("/webhooks", status_code=201)
def add_webhook(body: WebhookIn, who: Anyone, request: Request) -> dict[str, Any]:
    """Add a webhook; an account key's webhook follows its own account."""
    service = _service(request)
    data = body.model_dump()
    if not who.is_operator:
        if data["account_id"] not in (None, who.account_id):
            raise ApiError(403, "account_id", "this key may not follow that account")
        data["account_id"] = who.account_id
    if data["account_id"] is None:
        data.pop("account_id")
    else:
        service.state.require(data["account_id"])
    try:
        hook = parse_webhook(data, uuid.uuid4().hex[:16])
    except CrossMarginError as error:
        raise ApiError.of(error) from None
    service.add_webhook(hook)
    return hook.as_dict()


@router.get("/webhooks")
def list_webhooks(who: Anyone, request: Request) -> list[dict[str, Any]]:
    """The webhooks this key may see (secrets left out)."""
    hooks = _service(request).webhooks.values()
    return [h.as_dict() for h in hooks if who.is_operator or h.account_id == who.account_id]


@router.delete("/webhooks/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: str, who: Anyone, request: Request) -> Response:
    """Remove a webhook."""
    service = _service(request)
    hook = service.webhooks.get(webhook_id)
    if hook is None or not (who.is_operator or hook.account_id == who.account_id):
        raise ApiError(404, "webhook_id", f"no webhook {webhook_id!r}")
    service.remove_webhook(webhook_id)
    return Response(status_code=204)


@router.get("/alerts")
def alert_history(
    who: Anyone,
    request: Request,
    account_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The newest alerts from the durable record (an account key: its account's), newest
    first."""
    if not who.is_operator:
        if account_id not in (None, who.account_id):
            raise ApiError(403, "account_id", "this key may not see that account")
        account_id = who.account_id
    state = _service(request).state
    return state.records.alerts(account_id, limit)


@router.websocket("/ws/alerts")
async def alerts_channel(websocket: WebSocket) -> None:
    """Every alert as it fires (an account key: its account's)."""
    who = await caller(websocket)
    if who is None:
        return
    await forward(websocket, "alerts" if who.is_operator else f"alerts:{who.account_id}")


@router.websocket("/ws/alerts/{account_id}")
async def account_alerts_channel(websocket: WebSocket, account_id: str) -> None:
    """The account's alerts as they fire."""
    if await caller(websocket, account_id) is not None:
        await forward(websocket, f"alerts:{account_id}")


async def _show_others(service: AlertService, sub: BusSubscription) -> None:
    """Put the alerts on the bus (other processes' among them) on this process's WebSocket
    channels, each id once; one without an id or an account is dropped."""
    async for message in sub:
        alert = message.data
        if isinstance(alert.get("id"), str) and isinstance(alert.get("account_id"), str):
            service.show(alert)
        await message.ack()


async def _apply_feed(state: ServiceState, sub: BusSubscription) -> None:
    """Apply the bus's price updates; a bad one is logged and acknowledged (not retried)."""
    async for message in sub:
        try:
            at = datetime.fromisoformat(str(message.data.get("at")))
            await state.apply_prices(message.data.get("prices", {}), at, time.perf_counter_ns())
        except (CrossMarginError, ValueError) as error:
            log.warning("price update refused", extra={"reason": str(error)})
        await message.ack()


async def start(app: FastAPI) -> None:
    """Create the process's :class:`AlertService` (a NATS bus when the settings name a
    broker), hook its tick listener and, with a broker, apply the shared price feed."""
    state: ServiceState = app.state.service
    url = state.settings.nats_url
    bus: Bus = LocalBus() if url is None else NatsBus(url, prefix=NATS_PREFIX)
    client = httpx.AsyncClient()
    service = AlertService(state, bus)
    service.sender = WebhookSender(client, on_failure=service.failed)
    app.state.alerts = service
    app.state.alert_client = client
    state.tick_listeners.append(service.on_tick)
    state.watchers.append(service.watched)
    app.state.alert_feed = None
    app.state.alert_relay = None
    if url is not None:
        name = f"service-{socket.gethostname()}-{state.settings.port}"
        feed = await bus.prices(name)
        app.state.alert_feed = asyncio.create_task(_apply_feed(state, feed))
        others = await bus.alert_feed()
        app.state.alert_relay = asyncio.create_task(_show_others(service, others))


async def stop(app: FastAPI) -> None:
    """Stop the feed and the deliveries under way, close the bus and the HTTP client."""
    service: AlertService | None = getattr(app.state, "alerts", None)
    if service is None:
        return
    for task in (app.state.alert_feed, app.state.alert_relay):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    with contextlib.suppress(ValueError):
        service.state.tick_listeners.remove(service.on_tick)
        service.state.watchers.remove(service.watched)
    await service.cancel()
    await service.bus.close()
    await app.state.alert_client.aclose()
