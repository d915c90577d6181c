"""`monitor status` and `monitor deliveries`: what the store says, as a terminal table or JSON.
Reads the store; pure formatting otherwise."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from monitor.config import Config
from monitor.store import DeliveryRow, Store

RESET, RED, YELLOW, GREEN, DIM = "\x1b[0m", "\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[2m"


def ago(ts: float | None, now: float) -> str:
    if not ts:
        return "-"
    d = now - ts
    sign = "" if d >= 0 else "in "
    d = abs(d)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if d >= size:
            return f"{sign}{int(d // size)}{unit}" + (" ago" if not sign else "")
    return f"{sign}{int(d)}s" + (" ago" if not sign else "")


def feed_status(config: Config, store: Store, now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = {str(r["url"]): r for r in store.feed_rows()}
    threshold = config.raw.poll.unhealthy_after
    out = []
    for f in config.feeds:
        r = rows.get(f.url, {})
        streak = int(r.get("error_streak") or 0)
        state = (
            "new"
            if not r
            else "unhealthy"
            if streak >= threshold
            else ("failing" if streak else "ok")
        )
        out.append(
            {
                "feed": f.name,
                "url": f.url,
                "state": state,
                "last_success": r.get("last_success_at"),
                "last_error": r.get("last_error") if streak else None,
                "last_error_at": r.get("last_error_at"),
                "error_streak": streak,
                "next_poll": r.get("next_poll_at"),
                "items_24h": int(r.get("items_24h") or 0),
            }
        )
    return out


def status_json(config: Config, store: Store) -> dict[str, Any]:
    counts = store.counts()
    return {
        "feeds": feed_status(config, store),
        "outbox": {
            "pending": counts.get("deliveries_pending", 0),
            "sending": counts.get("deliveries_sending", 0),
            "delivered": counts.get("deliveries_done", 0),
            "dead": counts.get("deliveries_dead", 0),
        },
        "items": counts.get("items", 0),
        "stories": counts.get("stories", 0),
        "alerts": counts.get("alerts", 0),
    }


def _table(headers: Sequence[str], rows: list[list[str]], colours: list[str], colour: bool) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(headers)]
    for r, c in zip(rows, colours, strict=True):
        text = line(r)
        out.append(f"{c}{text}{RESET}" if colour and c else text)
    return "\n".join(out)


def render_status(data: dict[str, Any], *, colour: bool, now: float | None = None) -> str:
    now = time.time() if now is None else now
    rows, colours = [], []
    for f in data["feeds"]:
        err = (f["last_error"] or "-")[:48]
        rows.append(
            [
                f["feed"][:24],
                f["state"],
                ago(f["last_success"], now),
                err,
                str(f["error_streak"]),
                ago(f["next_poll"], now),
                str(f["items_24h"]),
            ]
        )
        colours.append({"ok": GREEN, "failing": YELLOW, "unhealthy": RED}.get(f["state"], DIM))
    table = _table(
        ["FEED", "STATE", "LAST SUCCESS", "LAST ERROR", "STREAK", "NEXT POLL", "ITEMS 24H"],
        rows,
        colours,
        colour,
    )
    o = data["outbox"]
    dead = (
        f"{RED}{o['dead']} dead letters{RESET}"
        if colour and o["dead"]
        else f"{o['dead']} dead letters"
    )
    summary = (
        f"outbox: {o['pending']} pending, {o['sending']} sending, "
        f"{o['delivered']} delivered, {dead}\n"
        f"store: {data['items']} items, {data['stories']} stories, {data['alerts']} alerts"
    )
    return f"{table}\n\n{summary}"


def deliveries_json(rows: list[DeliveryRow]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "alert": r.alert_id,
            "destination": r.destination,
            "state": r.state,
            "attempts": r.attempts,
            "next_at": r.next_at,
            "error": r.last_error,
            "watchlist": r.watchlist,
            "title": r.title,
        }
        for r in rows
    ]


def render_deliveries(rows: list[DeliveryRow], *, colour: bool, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if not rows:
        return "no deliveries waiting and no dead letters"
    table_rows = [
        [
            str(r.id),
            r.state,
            r.destination,
            r.watchlist[:20],
            str(r.attempts),
            ago(r.next_at, now) if r.state == "pending" else "-",
            (r.last_error or "-")[:40],
            r.title[:50],
        ]
        for r in rows
    ]
    colours = [RED if r.state == "dead" else YELLOW if r.state == "sending" else "" for r in rows]
    return _table(
        ["ID", "STATE", "DESTINATION", "WATCHLIST", "TRIES", "NEXT", "ERROR", "TITLE"],
        table_rows,
        colours,
        colour,
    )
