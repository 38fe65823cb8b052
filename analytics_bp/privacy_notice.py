"""The privacy notice as data, generated from the live settings so it cannot drift from the collector.

Why generated: a hand-written notice goes stale the day someone changes the salt period or the
retention. Every setting marked `privacy=True` in settings.py has a line here; a test fails when
one is missing. The page and the footer line are Jinja templates (templates/analytics/privacy.html
and notice_line.html), which a site may override with its own.
"""

from __future__ import annotations

from typing import Any

from .settings import Config


def _duration(seconds: int) -> str:
    if seconds == 0:
        return "kept indefinitely"
    days, rest = divmod(seconds, 86400)
    return f"{days} days" if not rest else f"{seconds // 3600} hours"


# What each switched-on extra of the agent (ANALYTICS_AGENT_EXTRAS) adds, for the notice.
EXTRAS_COLLECTED = {
    "outbound": "Clicks on links to other sites: the destination's host and path (no query string "
                "or fragment), with the page and the details listed for events",
    "downloads": "Clicks on links to files (such as PDF or ZIP): the file's path, and its host when "
                 "it is on another site (no query string or fragment)",
    "engagement": "Time on page: whole seconds each page was visible (at most an hour), sent when "
                  "it is hidden or left, with the page's number in the session and the session "
                  "hash; visit duration is computed from it",
}
EXTRAS_NAMED = {"outbound": "outbound link clicks", "downloads": "file downloads",
                "engagement": "time on page"}


def notice(cfg: Config) -> dict[str, Any]:
    """The notice as data: served as JSON, rendered as HTML, summarised in one line."""
    period = "day" if cfg.salt_period == "day" else "calendar month"
    return {
        "collected": {
            "pageview": ["site domain", "page path (no query string or fragment)",
                         "referring site (host only)", "UTM source/medium/campaign",
                         "browser family", "OS family", "device class", "timezone offset",
                         "platform family", "country" if cfg.geoip else None,
                         "per-tab session ID, as a hash that changes every " + period,
                         "pages seen in the session",
                         "page load time", "salted visitor hash"],
            "event": ["event name (only: " + (", ".join(cfg.permitted_events) or "none") + ")",
                      "a short note chosen by the site"],
            "extras": [EXTRAS_COLLECTED[e] for e in cfg.agent_extras],
        },
        "never_collected": ["IP address", "User-Agent string", "cookies or local identifiers",
                            "full URLs with query strings", "identifiers that last beyond one "
                            + period, "the tab's session ID as sent (only a hash that changes every "
                            + period + ")"],
        "settings": {
            "ANALYTICS_SALT_PERIOD": f"Unique visitors are counted with a keyed hash of site, IP "
            f"address and User-Agent. The random key (salt) changes every {period}; the old one "
            "is deleted, so hashes cannot be linked across periods or recomputed later.",
            "ANALYTICS_RAW_RETENTION": "Individual page views, events and engaged times (with the "
            "salted visitor and session hashes, which count as personal data while their key "
            "exists) are "
            f"{_duration(cfg.raw_retention)}" + ("" if cfg.raw_retention == 0 else
                                                  " and then deleted")
            + "; records that could not be stored are deleted after at most "
            + _duration(cfg.set_aside_retention) + ".",
            "ANALYTICS_HOURLY_RETENTION": "Hourly totals are "
            f"{_duration(cfg.hourly_retention)}; daily and monthly totals are kept indefinitely.",
            "ANALYTICS_RESPECT_DNT": "Browsers sending Do Not Track or Global Privacy Control are "
            + ("not recorded." if cfg.respect_dnt else "recorded (this site does not honour them)."),
            "ANALYTICS_GEOIP": ("The country is looked up from the IP address with its last part "
                                "removed, on this server, and only the country is kept.")
            if cfg.geoip else "No location is derived from IP addresses.",
            "ANALYTICS_TRUSTED_PROXIES": "The IP address is read from "
            + (f"the {cfg.trusted_proxies} trusted proxy hop(s) in front of the collector"
               if cfg.trusted_proxies else "the connection")
            + "; it is used for the visitor hash (and country) and never stored or logged.",
            "ANALYTICS_PERMITTED_EVENTS": "Events recorded: "
            + (", ".join(cfg.permitted_events) or "none") + ".",
            "ANALYTICS_AGENT_EXTRAS": "Also recorded: " + (", ".join(
                EXTRAS_NAMED[e] for e in cfg.agent_extras) or "nothing else") + ".",
            "ANALYTICS_NOTE_EVENTS": "Events whose note is counted by value: "
            + (", ".join(cfg.note_events) or "none") + ".",
            "ANALYTICS_SKIP_DOMAINS": "Sites never recorded: "
            + (", ".join(cfg.skip_domains) or "none") + ".",
            "ANALYTICS_HMAC_SECRET": "Signed-in users' actions on the server side are stored "
            "under a keyed one-way pseudonym of their user ID, never the ID itself."
            if cfg.hmac_secret else "No server-side usage of signed-in users is recorded.",
            "ANALYTICS_USAGE_LOG": "Server-side usage is also written to the application log, "
            "with pseudonyms only." if cfg.usage_log else "Server-side usage is not logged.",
        },
        "not_counted": "Bots are not counted: User-Agents that isbot's maintained list of crawler "
        "patterns matches (an app's built-in browser is checked again against Matomo's device "
        "data), and browsers that report being automated (navigator.webdriver). The browser, OS "
        "and device class are read from the User-Agent with ua-parser's and Matomo's maintained "
        "data, on this server; the User-Agent itself is never stored.",
        "opt_out": "Enable Do Not Track or Global Privacy Control in your browser, or run "
        "localStorage.analytics_ignore = 'true' in the browser console on this site.",
    }
