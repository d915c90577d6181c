"""Command line: commands only, no logic. `monitor COMMAND`, also `python -m monitor`.

    monitor run            the daemon
    monitor reload         make the running daemon re-read its config (SIGHUP)
    monitor check          validate the config
    monitor poll-once      one pass over every feed, deliver what is due, exit
    monitor match [TEXT]   which watchlists match TEXT (or stdin), and why
    monitor story REF      a story's items, sources and why each joined
    monitor replay FILES   backtest watchlists and story grouping on an archive
    monitor status         every feed's health, the outbox and dead letters
    monitor deliveries     deliveries waiting or failed; --retry sends dead letters again
    monitor demo           the seed story served on 127.0.0.1, through the whole pipeline
    monitor feeds import F add the feeds of an OPML file to the config; feeds export: OPML

Exit codes: 0 ok; 1 `match` found nothing / `poll-once` had failing feeds; 2 bad config or usage;
3 the store is locked or unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

from monitor import __version__, logs
from monitor.config import Config, load, resolve_path
from monitor.errors import ConfigError, MonitorError, StoreError
from monitor.store import Store

log = logging.getLogger("monitor")


def _load(args: argparse.Namespace) -> Config:
    return load(resolve_path(args.config))


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    print(config.summary())
    if not getattr(args, "online", False):
        return 0
    from monitor.notify.slack import SlackNotifier

    problems: list[str] = []
    for name, d in config.destinations.items():  # HAZARDS 37: ask Slack before the first alert
        if d.type == "slack":
            found, notes = SlackNotifier(name, d.token, d.channel, base_url=d.base_url).check()
            problems += found
            for n in notes:
                print(f"  note: {n}")
    for p in problems:
        print(f"  problem: {p}")
    print("online check: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.daemon import Daemon

    config = _load(args)

    async def main() -> int:
        daemon = Daemon(config, listen=args.listen)
        return await daemon.run()

    return asyncio.run(main())


def cmd_reload(args: argparse.Namespace) -> int:
    import signal

    from monitor.daemon import daemon_pid

    config = _load(args)  # an invalid file is reported here, and the daemon is not disturbed
    pid = daemon_pid(config)
    if pid is None:
        print(f"monitor: no running daemon holds {config.storage}", file=sys.stderr)
        return 3
    os.kill(pid, signal.SIGHUP)
    print(f"sent SIGHUP to the daemon (pid {pid}); its log says `reload outcome=...`")
    return 0


def cmd_poll_once(args: argparse.Namespace) -> int:
    import time

    from monitor.daemon import Daemon

    config = _load(args)

    async def main() -> int:
        daemon = Daemon(config)
        try:
            daemon.store.recover()
            reports = await daemon.poll_all()
            await daemon.drain(time.monotonic() + args.send_timeout)
        finally:
            await daemon.close()
        failed = [r for r in reports if r.outcome == "error"]
        return 1 if failed and len(failed) == len(reports) else 0

    return asyncio.run(main())


def cmd_match(args: argparse.Namespace) -> int:
    from monitor.match import compile_watchlists, render_explanation

    config = _load(args)
    text = args.text if args.text is not None else sys.stdin.read()
    matcher = compile_watchlists(config.watchlists)
    expl = matcher.explain(args.title or "", "", text, feed=args.feed)
    if args.json:
        print(json.dumps(expl.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render_explanation(expl))
    return 0 if expl.to_json()["matches"] else 1


def _open_store(config: Config) -> Store:
    from monitor.store import open_store

    return open_store(config.storage)


def cmd_story(args: argparse.Namespace) -> int:
    from monitor.dedup import FOLLOWING

    config = _load(args)
    store = _open_store(config)
    try:
        story_id = store.story_of(args.ref)
        if story_id is None:
            print(f"monitor: no item {args.ref!r} in {config.storage}", file=sys.stderr)
            return 1
        items = store.story_items(story_id)
        alerts = store.story_alerts(story_id)
        followed_by = store.items_by_reason(f"{FOLLOWING}{story_id} ")
    finally:
        store.close()
    if args.json:
        out = {
            "story": story_id,
            "sources": list(dict.fromkeys(i.feed for i in items)),
            "alerts": alerts,
            "items": [
                {
                    "id": i.item_id,
                    "feed": i.feed,
                    "title": i.title,
                    "url": i.url,
                    "seen": _iso(i.seen_at),
                    "reason": i.reason,
                }
                for i in items
            ],
            "followed_by": [
                {
                    "id": i.item_id,
                    "feed": i.feed,
                    "title": i.title,
                    "url": i.url,
                    "seen": _iso(i.seen_at),
                }
                for i in followed_by
            ],
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    sources = list(dict.fromkeys(i.feed for i in items))
    print(
        f"story {story_id}: {len(items)} items from {len(sources)} sources ({', '.join(sources)})"
    )
    print(f"alerted: {', '.join(sorted(alerts)) or 'no watchlist'}")
    for i in items:
        print(f"\n  {_iso(i.seen_at)}  {i.feed}  {i.title}")
        if i.url:
            print(f"    {i.url}")
        print(f"    why: {i.reason}")
    if followed_by:
        print(f"\nfollowed by {len(followed_by)} new stories (a new lead on this story's text):")
        for i in followed_by:
            print(f"\n  {_iso(i.seen_at)}  {i.feed}  {i.title}")
            if i.url:
                print(f"    {i.url}")
    return 0


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_replay(args: argparse.Namespace) -> int:
    from monitor.replay import replay

    if args.dead_letters:
        return _replay_dead_letters(args)
    if not args.items:
        print("monitor replay: name archive files, or --dead-letters", file=sys.stderr)
        return 2
    config = _load(args)
    store = _open_store(config)
    counts = {"items": 0, "stories": 0, "alerts": 0}
    try:
        for r in replay(config, store, args.items):
            counts["items"] += 1
            counts["stories"] += r.new_story
            counts["alerts"] += len(r.alerts)
            if args.json:
                print(json.dumps(r.to_json(), ensure_ascii=False))
            else:
                mark = "NEW " if r.new_story else "same"
                wl = f" -> {', '.join(r.matches)}" if r.matches else ""
                print(f"{r.story[:14]:<14} {mark} {r.item.feed[:14]:<14} {r.item.title[:70]}{wl}")
    finally:
        store.close()
    if not args.json:
        print(
            f"\n{counts['items']} items, {counts['stories']} stories, "
            f"{counts['alerts']} alerts would be sent",
            file=sys.stderr,
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.status import render_status, status_json

    config = _load(args)
    store = _open_store(config)
    try:
        data = status_json(config, store)
    finally:
        store.close()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(render_status(data, colour=_colour()))
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    from monitor.status import deliveries_json, render_deliveries

    config = _load(args)
    store = _open_store(config)
    try:
        if args.retry_all or args.retry:
            n = store.requeue(None if args.retry_all else args.retry)
            print(f"{n} dead letters queued again; the running daemon sends them within seconds")
            return 0 if n else 1
        states = ("dead",) if args.dead else ("pending", "sending", "dead")
        rows = store.deliveries(states)
    finally:
        store.close()
    if args.json:
        print(json.dumps(deliveries_json(rows), ensure_ascii=False, indent=2))
    else:
        print(render_deliveries(rows, colour=_colour()))
    return 0


def _colour() -> bool:
    return sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


def _replay_dead_letters(args: argparse.Namespace) -> int:
    """`monitor replay --dead-letters [ID...]`: send dead letters again (all, or these delivery
    ids), like `monitor deliveries --retry`."""
    try:
        ids = [int(i) for i in args.items] or None
    except ValueError:
        print("monitor replay --dead-letters: delivery ids are numbers", file=sys.stderr)
        return 2
    config = _load(args)
    store = _open_store(config)
    try:
        n = store.requeue(ids)
    finally:
        store.close()
    print(f"{n} dead letters queued again; the running daemon sends them within seconds")
    return 0 if n else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(keep=args.keep)


def cmd_feeds_import(args: argparse.Namespace) -> int:
    from monitor.feedlist import import_opml, render_report

    report = import_opml(resolve_path(args.config), args.file, dry_run=args.dry_run)
    print(render_report(report))
    plan = report.plan
    return 1 if plan.refused and not plan.added and not plan.skipped else 0


def cmd_feeds_export(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from monitor.feedlist import export_opml, write_atomic

    data = export_opml(resolve_path(args.config), now=datetime.now(UTC))
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomic(args.output, data)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monitor", description="Arabic-first news monitor")
    p.add_argument("--version", action="version", version=f"monitor {__version__}")
    p.add_argument(
        "-c", "--config", help="config file (default: $MONITOR_CONFIG, else config/monitor.yaml)"
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file")
        return sp

    rn = add("run", "run the daemon")
    rn.add_argument("--listen", help="serve /healthz and /metrics on HOST:PORT (overrides http)")
    rn.set_defaults(func=cmd_run)
    add("reload", "make the running daemon re-read its config (SIGHUP)").set_defaults(
        func=cmd_reload
    )
    ck = add("check", "validate the config")
    ck.add_argument("--online", action="store_true", help="also ask Slack: token, scope, channel")
    ck.set_defaults(func=cmd_check)
    po = add("poll-once", "poll every feed once, deliver what is due, exit")
    po.add_argument("--send-timeout", type=float, default=60.0, help="seconds to spend delivering")
    po.set_defaults(func=cmd_poll_once)
    m = add("match", "which watchlists match a text, on which terms, where")
    m.add_argument("text", nargs="?", help="the text (default: stdin)")
    m.add_argument("--title", help="a title to match along with the text")
    m.add_argument("--feed", help="match as if the text came from this feed")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.set_defaults(func=cmd_match)
    st = add("story", "show a story's items, sources and why each joined")
    st.add_argument("ref", help="an item's URL or id")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_story)
    rp = add("replay", "backtest watchlists and story grouping on archive files; sends nothing")
    rp.add_argument(
        "items",
        nargs="*",
        help="RSS/Atom files or JSONL files of items, in order (or, with "
        "--dead-letters, delivery ids)",
    )
    rp.add_argument(
        "--dead-letters",
        action="store_true",
        help="instead: send dead letters again (all, or the delivery ids given)",
    )
    rp.add_argument("--json", action="store_true", help="one JSON object per item")
    rp.set_defaults(func=cmd_replay)
    ss = add("status", "every feed's health, the outbox and dead letters")
    ss.add_argument("--json", action="store_true")
    ss.set_defaults(func=cmd_status)
    dl = add("deliveries", "deliveries waiting or failed; send dead letters again")
    dl.add_argument("--json", action="store_true")
    dl.add_argument("--dead", action="store_true", help="only dead letters")
    dl.add_argument(
        "--retry", type=int, nargs="+", metavar="ID", help="send these dead letters again"
    )
    dl.add_argument("--retry-all", action="store_true", help="send every dead letter again")
    dl.set_defaults(func=cmd_deliveries)
    d = add("demo", "serve the seed story on 127.0.0.1 and run the pipeline on it")
    d.add_argument("--keep", action="store_true", help="keep the demo's temporary store")
    d.set_defaults(func=cmd_demo)
    fd = add("feeds", "feed lists: import and export OPML (what every feed reader exchanges)")
    fsub = fd.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    fi = fsub.add_parser("import", help="add the feeds of an OPML file to the config file")
    fi.add_argument("file", help="an OPML export (Feedly, Inoreader, Miniflux, NetNewsWire, ...)")
    fi.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    fi.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file")
    fi.set_defaults(func=cmd_feeds_import)
    fe = fsub.add_parser("export", help="the configured feeds as OPML 2.0")
    fe.add_argument("-o", "--output", help="write to this file (default: stdout)")
    fe.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file")
    fe.set_defaults(func=cmd_feeds_export)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    try:
        return int(args.func(args))
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"monitor: {e}", file=sys.stderr)
        return 3
    except MonitorError as e:
        print(f"monitor: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `monitor ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
