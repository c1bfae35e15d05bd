"""`trioclient crawl URL ...` and `trioclient demo`: the crawler with a live display.

The crawl runs `trioclient.crawl.Crawler` (politeness, frontier, sinks are the toolkit's);
this module only turns options into its arguments, draws the live line (pages/s, bytes,
errors, queue) on stderr while it runs, and prints the summary table on stdout at the end,
also after Ctrl-C (then exit 130). `demo` serves the generated demo site
(`trioclient.crawl._demo_site.DemoSite`) with hypercorn on Trio, on an ephemeral
127.0.0.1 port in the same Trio run, and crawls it.

With `rich` the display is a live line and the summary a table; without it, a plain `\\r`
line and aligned text (the crawl itself needs the `crawl` extra, which says so).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

import trio

from .._client import Client
from .._config import Limits
from ._args import _non_negative_int, _Parser, _positive_float
from ._exit import EXIT_CODES_HELP, CLIError, ExitCode, UsageError, leaves
from ._progress import format_size
from ._render import load_rich

if TYPE_CHECKING:
    from rich.live import Live

    from ..crawl import CrawlStats

__all__ = ["crawl_command"]

# Redraws of the live display per second.
_REFRESH_SECONDS = 0.25
# Hosts listed in the summary (the busiest).
_SUMMARY_HOSTS = 8
_EXTRA_HINT = "pip install 'trioclient[cli]'"


def _add_crawl_options(parser: argparse.ArgumentParser, *, demo: bool) -> None:
    crawl = parser.add_argument_group("crawl")
    crawl.add_argument(
        "--depth",
        type=_non_negative_int,
        default=6 if demo else 2,
        metavar="N",
        help=f"links followed from a seed (default {6 if demo else 2})",
    )
    crawl.add_argument(
        "--concurrency",
        type=_positive_int,
        default=16,
        metavar="N",
        help="fetches at once, all hosts together (default 16)",
    )
    crawl.add_argument(
        "--per-host",
        type=_positive_int,
        default=16 if demo else 2,
        metavar="N",
        help=f"fetches at once per host (default {16 if demo else 2})",
    )
    crawl.add_argument(
        "--rate",
        type=_non_negative_float,
        default=0.0 if demo else 1.0,
        metavar="PER_SECOND",
        help="requests per second per host, 0 for no limit "
        + ("(default 0: the demo site is ours)" if demo else "(default 1)"),
    )
    crawl.add_argument(
        "--max-pages", type=_non_negative_int, metavar="N", help="stop after N fetches"
    )
    crawl.add_argument(
        "--out",
        metavar="DIR",
        help="write DIR/results.jsonl (one line per page) and DIR/summary.json",
    )
    crawl.add_argument(
        "--warc", action="store_true", help="also archive the pages in DIR/crawl.warc.gz"
    )
    crawl.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="whole-request deadline per page (default 60)",
    )
    if demo:
        return
    crawl.add_argument(
        "--include", action="append", default=[], metavar="REGEX", help="follow only matching links"
    )
    crawl.add_argument(
        "--exclude", action="append", default=[], metavar="REGEX", help="never follow these"
    )
    crawl.add_argument(
        "--domain",
        action="append",
        metavar="HOST",
        help="hosts to follow links to, subdomains included (default: the seeds' hosts)",
    )
    crawl.add_argument("--no-robots", action="store_true", help="ignore robots.txt")
    crawl.add_argument("--user-agent", metavar="TEXT", help="the crawler's User-Agent")
    crawl.add_argument(
        "--redis",
        metavar="URL",
        help="share the frontier in Redis (redis://host:6379/0) with other crawl processes "
        "started with the same --redis and --name (needs trioclient[redis])",
    )
    crawl.add_argument(
        "--name",
        metavar="NAME",
        help="the shared crawl's name with --redis (default: the first seed's host)",
    )
    conn = parser.add_argument_group("connection")
    conn.add_argument("--http2", action="store_true", help="offer HTTP/2 (ALPN)")
    conn.add_argument("--proxy", metavar="URL", help="http://, https:// or socks5:// proxy")
    conn.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify TLS certificates"
    )


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more, not '0'")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text!r}")
    return value


def build_crawl_parser() -> argparse.ArgumentParser:
    """`trioclient crawl --help`."""
    parser = _Parser(
        prog="trioclient crawl",
        usage="trioclient crawl [options] URL [URL ...]",
        description="Crawl from the seed URLs, politely (robots.txt, per-host limits), with a "
        "live display, then print a summary.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("seeds", nargs="*", metavar="URL", help="where to start")
    _add_crawl_options(parser, demo=False)
    return parser


def build_demo_parser() -> argparse.ArgumentParser:
    """`trioclient demo --help`."""
    parser = _Parser(
        prog="trioclient demo",
        usage="trioclient demo [options]",
        description="Serve a generated site on 127.0.0.1 (some pages slow, some broken, some "
        "redirecting, one robots.txt rule) and crawl it with the live display.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--pages",
        type=_positive_int,
        default=2000,
        metavar="N",
        help="pages in the site (default 2000)",
    )
    _add_crawl_options(parser, demo=True)
    return parser


# --- the display ---------------------------------------------------------------------------


def _live_text(stats: CrawlStats, label: str) -> str:
    frontier = stats.frontier
    return (
        f"{label}  pages {stats.pages:,} ({stats.pages_per_second:.1f}/s)  "
        f"{format_size(stats.bytes)}  errors {stats.error_count:,}  "
        f"queued {frontier.queued:,}  in flight {frontier.leased:,}  {stats.elapsed:.1f} s"
    )


class _Display:
    """The live line on stderr (rich's Live, or a plain `\\r` line); nothing off a terminal."""

    def __init__(self, stats: CrawlStats, label: str, stream: TextIO) -> None:
        self.stats = stats
        self.label = label
        self.stream = stream
        self.visible = stream.isatty()
        self._live: Live | None = None

    def __enter__(self) -> _Display:
        if self.visible and load_rich():
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self._renderable(),
                console=Console(file=self.stream),
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def _renderable(self) -> Any:
        from rich.text import Text

        # One line, cut to the terminal's width: a wrapped live line would not redraw cleanly.
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("crawling ", "bold cyan")
        text.append(_live_text(self.stats, self.label))
        return text

    def draw(self) -> None:
        """Redraw with the current numbers."""
        if self._live is not None:
            self._live.update(self._renderable(), refresh=True)
        elif self.visible:
            self.stream.write("\r\x1b[2Kcrawling " + _live_text(self.stats, self.label))
            self.stream.flush()

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.stop()
        elif self.visible:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    async def run(self) -> None:
        """Redraw a few times a second until cancelled."""
        while True:
            self.draw()
            await trio.sleep(_REFRESH_SECONDS)


def summary_rows(stats: CrawlStats) -> list[tuple[str, str]]:
    """The summary as (label, value) rows, for rich's table or plain text."""
    statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(stats.statuses.items()))
    errors = ", ".join(f"{kind}: {n:,}" for kind, n in stats.errors.most_common())
    frontier = stats.frontier
    rows = [
        ("pages", f"{stats.pages:,} ({stats.ok:,} ok)"),
        ("bytes", format_size(stats.bytes)),
        ("time", f"{stats.elapsed:.1f} s ({stats.pages_per_second:.1f} pages/s)"),
        ("statuses", statuses or "-"),
        ("errors", f"{stats.error_count:,}" + (f" ({errors})" if errors else "")),
        (
            "links",
            f"{stats.links_found:,} found, {stats.links_new:,} new, "
            f"{stats.links_filtered:,} filtered out",
        ),
        (
            "frontier",
            f"{frontier.seen:,} seen, {frontier.done:,} done, {frontier.queued:,} queued",
        ),
    ]
    return rows


def _host_rows(stats: CrawlStats) -> list[tuple[str, str, str, str]]:
    busiest = sorted(stats.hosts.items(), key=lambda item: -item[1].pages)[:_SUMMARY_HOSTS]
    return [(h, f"{s.pages:,}", format_size(s.bytes), f"{s.errors:,}") for h, s in busiest]


def print_summary(
    stats: CrawlStats, out: TextIO, *, title: str, outputs: Sequence[str] = ()
) -> None:
    """The table at the end of a crawl (rich when installed, aligned text otherwise)."""
    rows = summary_rows(stats)
    hosts = _host_rows(stats)
    # Paths below the table, unwrapped, so they can be copied.
    wrote = [f"wrote {path}" for path in outputs]
    if load_rich():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold cyan")
        table.add_column()
        for label, value in rows:
            table.add_row(label, value)
        by_host = Table("host", "pages", "bytes", "errors", title="busiest hosts")
        for row in hosts:
            by_host.add_row(*row)
        console = Console(file=out, highlight=False)
        console.print(table)
        if hosts:
            console.print(by_host)
        for line in wrote:
            console.print(line, soft_wrap=True)
        return
    width = max(len(label) for label, _ in rows)
    lines = [title, *(f"  {label:<{width}}  {value}" for label, value in rows)]
    if hosts:
        lines.append("  busiest hosts:")
        lines += [f"    {h}  {p} pages  {b}  {e} errors" for h, p, b, e in hosts]
    lines += wrote
    out.write("\n".join(lines) + "\n")
    out.flush()


# --- the crawl -----------------------------------------------------------------------------


def _load_crawl() -> Any:
    try:
        import protego  # noqa: F401 - robots.txt, checked here for one clear message
        import selectolax  # noqa: F401 - link extraction

        import trioclient.crawl as crawl
    except ImportError as exc:
        raise CLIError(
            f"crawling needs its extra: {_EXTRA_HINT} ({exc})", ExitCode.REQUEST_FAILED
        ) from None
    return crawl


async def _run_crawl(
    args: argparse.Namespace,
    seeds: list[str],
    *,
    title: str,
    label: str,
    interrupt: _Interrupt,
    allowed_domains: list[str] | None = None,
) -> None:
    crawl = _load_crawl()
    outputs: list[str] = []
    politeness = crawl.Politeness(
        per_host=args.per_host,
        rate=args.rate or None,
        robots=not getattr(args, "no_robots", False),
        **({"user_agent": args.user_agent} if getattr(args, "user_agent", None) else {}),
    )
    client_kwargs: dict[str, Any] = {
        "verify": not getattr(args, "insecure", False),
        "http2": getattr(args, "http2", False),
        "limits": Limits(max_connections=max(args.concurrency, 10)),
    }
    if getattr(args, "proxy", None):
        client_kwargs["proxy"] = args.proxy
    async with AsyncExitStack() as stack:
        sinks: list[Any] = []
        if args.out:
            try:
                os.makedirs(args.out, exist_ok=True)
            except OSError as exc:
                raise CLIError(
                    f"cannot create {args.out}: {exc.strerror or exc}", ExitCode.OUTPUT_FAILED
                ) from None
            outputs.append(os.path.join(args.out, "results.jsonl"))
            sinks.append(crawl.JsonLinesSink(outputs[-1]))
            if args.warc:
                outputs.append(os.path.join(args.out, "crawl.warc.gz"))
                sinks.append(crawl.WarcSink(outputs[-1], user_agent=politeness.user_agent))
            for sink in sinks:
                stack.push_async_callback(sink.aclose)
        frontier = None
        if getattr(args, "redis", None):
            try:
                shared = crawl.RedisFrontier(args.redis, crawl=args.name or _seed_host(seeds))
            except ImportError as exc:  # coredis: the redis extra
                raise CLIError(f"--redis: {exc}", ExitCode.REQUEST_FAILED) from None
            frontier = await stack.enter_async_context(shared)
        client = await stack.enter_async_context(Client(**client_kwargs))
        crawler = crawl.Crawler(
            client,
            seeds,
            frontier=frontier,
            politeness=politeness,
            limits=crawl.FetchLimits(total_timeout=args.timeout),
            max_depth=args.depth,
            allowed_domains=allowed_domains,
            include=getattr(args, "include", ()),
            exclude=getattr(args, "exclude", ()),
            max_pages=args.max_pages,
            workers=args.concurrency,
            sinks=sinks,
        )
        interrupted = False
        try:
            with _Display(crawler.stats, label, sys.stderr) as display:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(display.run)
                    await crawler.run()
                    nursery.cancel_scope.cancel()
        except BaseException as exc:
            interrupted = interrupt.requested or _is_interrupt(exc)
            if not interrupted:
                raise
            # Ctrl-C: the summary of what was crawled, then exit 130 (the caller's).
            title += " (interrupted)"
            raise
        finally:
            if interrupted or crawler.stats.finished is not None:
                if args.out:
                    outputs.append(os.path.join(args.out, "summary.json"))
                    _write_summary(outputs[-1], crawler.stats)
                print_summary(crawler.stats, sys.stdout, title=title, outputs=outputs)


def _is_interrupt(exc: BaseException) -> bool:
    return any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves(exc))


class _Interrupt:
    """Ctrl-C as a clean stop. The first SIGINT cancels the work (so the crawl unwinds with
    `trio.Cancelled`, sinks closed, and prints the summary of what it fetched; exit 130),
    instead of a KeyboardInterrupt landing in whichever task was running (the demo's server,
    say). A second Ctrl-C during that cleanup is an ordinary KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` until it returns or Ctrl-C cancels it."""
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, scope)
                await work()
                nursery.cancel_scope.cancel()

    async def _watch(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                self.requested = True
                scope.cancel()
                return


def _write_summary(path: str, stats: CrawlStats) -> None:
    try:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(stats.as_dict(), file, indent=2)
            file.write("\n")
    except OSError as exc:
        raise CLIError(
            f"cannot write {path}: {exc.strerror or exc}", ExitCode.OUTPUT_FAILED
        ) from None


def _seed_host(seeds: list[str]) -> str:
    from .._urls import URL

    return URL(seeds[0]).host


async def _run_demo(args: argparse.Namespace, *, interrupt: _Interrupt) -> None:
    _load_crawl()
    try:
        from hypercorn.config import Config
        from hypercorn.trio import serve
    except ImportError as exc:
        raise CLIError(
            f"the demo needs hypercorn: {_EXTRA_HINT} ({exc})", ExitCode.REQUEST_FAILED
        ) from None
    from ..crawl._demo_site import DemoSite

    site: Any = DemoSite(args.pages)  # an ASGI app; hypercorn's type is a narrower Protocol
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    # The site closes some connections mid-body on purpose: nothing for the user to read.
    quiet = logging.getLogger("trioclient.demo")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    config.errorlog = quiet
    config.graceful_timeout = 1.0
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(serve, site, config, shutdown_trigger=shutdown.wait, mode="asgi")
        )
        root = binds[0].rstrip("/") + "/"
        print(
            f"Serving a demo site of {args.pages:,} pages on {root} (some slow, some broken, "
            "some redirecting; robots.txt disallows /private/), crawling it:",
            flush=True,
        )
        try:
            await _run_crawl(
                args, [root], title=f"Crawl summary: {root}", label=root, interrupt=interrupt
            )
        finally:
            shutdown.set()


def crawl_command(argv: list[str]) -> int:
    """`trioclient crawl ...` or `trioclient demo ...` (argv starts with the subcommand)."""
    from . import request_error

    interrupt = _Interrupt()
    if argv[0] == "demo":
        args = build_demo_parser().parse_args(argv[1:])
        main = partial(_run_demo, args, interrupt=interrupt)
    else:
        args = build_crawl_parser().parse_args(argv[1:])
        if not args.seeds and not (args.redis and args.domain):
            raise UsageError("give a URL to start from (or --redis and --domain to join a crawl)")
        if args.name and not args.redis:
            raise UsageError("--name goes with --redis")
        for pattern in [*args.include, *args.exclude]:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise UsageError(f"not a regular expression: {pattern!r}: {exc}") from None
        main = partial(
            _run_crawl,
            args,
            list(args.seeds),
            title="Crawl summary",
            label=", ".join(args.seeds) or args.name or "",
            allowed_domains=args.domain,
            interrupt=interrupt,
        )
    if args.warc and not args.out:
        raise UsageError("--warc needs --out DIR")
    try:
        trio.run(interrupt.run, main)
    except BaseException as exc:
        # One failure inside the nurseries comes out as itself (a group of one otherwise).
        errors = [leaf for leaf in leaves(exc) if not isinstance(leaf, trio.Cancelled)]
        leaf = errors[0] if len(errors) == 1 else exc
        if isinstance(leaf, CLIError):
            raise leaf from None
        error = request_error(leaf)
        if error is None and type(leaf).__name__ == "RedisFrontierError":
            # Redis unreachable or refusing: the message names the server, not its password.
            error = CLIError(f"RedisFrontierError: {leaf}", ExitCode.REQUEST_FAILED)
        if error is None:
            raise
        raise error from None
    return int(ExitCode.INTERRUPTED if interrupt.requested else ExitCode.OK)
