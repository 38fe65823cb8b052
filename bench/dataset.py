"""Synthetic raw pageviews shaped like the collector's: 3 domains, 200 pages, realistic tags."""

from __future__ import annotations

import random
from collections.abc import Iterator

from analytics_bp.schema import raw_line

DOMAINS = ("a.example", "b.example", "c.example")
PAGES = tuple(f"/docs/page-{i}" for i in range(200))
SOURCES = ("direct", "internal", "google.com", "news.ycombinator.com", "duckduckgo.com")
AGENTS = (("Chrome", "Windows", "desktop"), ("Firefox", "Linux", "desktop"),
          ("Mobile Safari", "iOS", "mobile"), ("Chrome Mobile", "Android", "mobile"))
COUNTRIES = ("GB", "DE", "FR", "US", "NL", "-")


def pageviews(n: int, start_ns: int, span_ns: int, seed: int = 1, engaged_every: int = 0) -> Iterator[str]:
    """`n` pageview lines with unique, increasing timestamps spread evenly over `span_ns`; with
    `engaged_every`, also the engaged time (`agent.extras.js`) of every so many pageviews, half a
    step later (its own random numbers, so the pageviews stay the same)."""
    rnd = random.Random(seed)
    engaged = random.Random(seed + 1)
    step = max(span_ns // n, 1)
    for i in range(n):
        browser, os_name, device = rnd.choice(AGENTS)
        tags = {"domain": rnd.choice(DOMAINS), "page": PAGES[int(rnd.paretovariate(1.2)) % len(PAGES)],
                "source": rnd.choice(SOURCES), "browser": browser, "os": os_name, "device": device,
                "country": rnd.choice(COUNTRIES), "timezone": rnd.choice(("0", "-60", "300")),
                "platform": "linux"}
        fields = {"count": 1, "visitor": f"{rnd.getrandbits(64):016x}", "sess_id": f"s{i // 3}",
                  "pages": 1 + i % 3, "load_ms": 150 + rnd.randrange(900)}
        yield raw_line("pageview", {**tags, **fields}, start_ns + i * step)
        if engaged_every and i % engaged_every == 0:
            seconds = min(3600, int(engaged.lognormvariate(3.4, 1)))
            shared = {k: v for k, v in tags.items() if k != "source"}
            yield raw_line("engagement", {**shared, "sess_id": fields["sess_id"], "seconds": seconds,
                                          "pageview": fields["pages"]}, start_ns + i * step + step // 2)
