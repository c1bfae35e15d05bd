"""trioclient.crawl: the crawler and scraper toolkit (docs/crawling.md).

Not imported by ``import trioclient``. The pure-Python parts work with the core
dependencies; features needing the ``[crawl]`` extra raise ImportError when used.
"""

from ._frontier import CrawlItem, Frontier, FrontierCounts, Lease, MemoryFrontier

__all__ = [
    "CrawlItem",
    "Frontier",
    "FrontierCounts",
    "Lease",
    "MemoryFrontier",
]
