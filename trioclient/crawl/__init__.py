"""trioclient.crawl: the crawler and scraper toolkit (docs/crawling.md).

Bounded fan-out (`fetch_all`), per-host politeness (`Politeness`: concurrency, rate,
robots.txt, Crawl-delay, retries that slow a host down), limits for untrusted sites
(`FetchLimits`), and the crawler's frontier: in memory, or in Redis (`RedisFrontier`,
the ``[redis]`` extra) for several processes sharing one crawl.

Not imported by ``import trioclient``. The pure-Python parts work with the core
dependencies; features needing the ``[crawl]`` extra raise ImportError when used
(robots.txt: `pip install trioclient[crawl]`).
"""

from ._crawler import Crawler as Crawler
from ._demo_site import DemoSite as DemoSite
from ._extract import extract_links as extract_links
from ._fanout import FetchAllStatistics as FetchAllStatistics
from ._fanout import FetchRequest as FetchRequest
from ._fanout import FetchResults as FetchResults
from ._fanout import fetch_all as fetch_all
from ._fetch import FetchLimits as FetchLimits
from ._fetch import FetchResult as FetchResult
from ._frontier import CrawlItem as CrawlItem
from ._frontier import Frontier as Frontier
from ._frontier import FrontierCounts as FrontierCounts
from ._frontier import Lease as Lease
from ._frontier import MemoryFrontier as MemoryFrontier
from ._output import JsonLinesSink as JsonLinesSink
from ._output import ResultSink as ResultSink
from ._output import WarcSink as WarcSink
from ._polite import DEFAULT_RETRY as DEFAULT_RETRY
from ._polite import DEFAULT_USER_AGENT as DEFAULT_USER_AGENT
from ._polite import Politeness as Politeness
from ._polite import TokenBucket as TokenBucket
from ._redis_frontier import RedisFrontier as RedisFrontier
from ._redis_frontier import RedisFrontierError as RedisFrontierError
from ._stats import CrawlStats as CrawlStats
from ._stats import HostStats as HostStats
from ._urlnorm import normalize_url as normalize_url

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_USER_AGENT",
    "CrawlItem",
    "CrawlStats",
    "Crawler",
    "DemoSite",
    "FetchAllStatistics",
    "FetchLimits",
    "FetchRequest",
    "FetchResult",
    "FetchResults",
    "Frontier",
    "FrontierCounts",
    "HostStats",
    "JsonLinesSink",
    "Lease",
    "MemoryFrontier",
    "Politeness",
    "RedisFrontier",
    "RedisFrontierError",
    "ResultSink",
    "TokenBucket",
    "WarcSink",
    "extract_links",
    "fetch_all",
    "normalize_url",
]
