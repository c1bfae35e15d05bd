"""The crawler's parts import without the [crawl] extra, and say what to install at use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import sys
from pathlib import Path
sys.modules["selectolax"] = None
sys.modules["selectolax.lexbor"] = None
sys.modules["warcio"] = None
sys.modules["warcio.warcwriter"] = None
import trioclient.crawl as crawl

crawl.MemoryFrontier()
crawl.JsonLinesSink("unused.jsonl")
assert crawl.normalize_url("HTTP://A/") == "http://a/"
for use in (lambda: crawl.extract_links("<a href=x>", "http://a/"), lambda: crawl.WarcSink("x")):
    try:
        use()
    except ImportError as exc:
        print(exc)
"""


def test_the_crawler_imports_without_its_extra(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    assert done.stdout.splitlines() == [
        "link extraction needs selectolax: pip install trioclient[crawl]",
        "WARC output needs warcio: pip install trioclient[crawl]",
    ]
