"""Judge a User-Agent: a bot or a person, and on which browser, OS and class of device.

Why these data, chosen by measurement over public labelled corpora (tests/ingest/test_traffic_quality.py,
figures in CHANGES.md):
- **Bots: isbot's pattern list** (the npm package Umami and GoatCounter use, shipped here as
  data/isbot-patterns.json by the agent build). It catches 95-100% of four crawler corpora; the
  crawler-user-agents list we used before caught about half.
- **Device class: Matomo's device-detector data** (the data Plausible uses), through its Python port.
  It knows, model by model, which Android devices are tablets; ua-parser's data does not say, and our
  guess from the `Mobile` token was right for 85% of ua-parser-js's labelled devices (98% with it).
- **Browser and OS families: ua-parser**, as before, so stored names do not change.

A judgement runs once per distinct User-Agent (a bounded cache). Matomo's parser costs 10-90 ms
per new User-Agent, so random User-Agents would be a cheap way to burn CPU: it runs at most
ANALYTICS_DEVICE_LOOKUPS_PER_MINUTE times per minute per process, and past that budget the class
comes from ua-parser and the `Mobile` token, not cached, so the User-Agent is judged again later.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from importlib import resources
from typing import Any, NamedTuple

import regex
from ua_parser import parse as parse_ua

MAX_AGENT = 512  # longer User-Agents are read up to here: real ones are shorter, names come first
AGENT_CACHE = 4096  # at most 4,096 x 512 characters of attacker-chosen strings in memory
MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS"}

# Matomo's device types folded into our three classes by screen size, the way Plausible's own
# device dimension reads (phones and smaller: mobile; tablet-sized: tablet; the rest: desktop).
DEVICE_CLASS = {
    "desktop": "desktop", "tv": "desktop", "console": "desktop", "car browser": "desktop",
    "peripheral": "desktop", "tablet": "tablet", "smart display": "tablet", "smart speaker": "tablet",
    "smartphone": "mobile", "phablet": "mobile", "feature phone": "mobile", "wearable": "mobile",
    "camera": "mobile", "portable media player": "mobile",
}

# Rule 1: an Android User-Agent names the device model in its first parentheses; the maker chose
# that name (`Discovery`, `VR BOT 552`, `ECHO JAVA`), not the program, so bot words there are not a
# crawler's. Measured: 1.04% -> 0.85% of Matomo's browsers misflagged, no crawler corpus below 95%.
ANDROID_MODEL = regex.compile(
    r"(\(Linux;(?: U;)? Android [^;)]*;(?: [a-z]{2}(?:[-_][a-z]{2,4})?;)?)[^;)]*", regex.I)
# Rule 2: some of isbot's patterns name no product, only a shape (`\b\w+/1\.0;`, `^[^ ]{50,}$`,
# `\(\)`); old TVs, feature phones and UC Browser's compact form have those shapes too. A shape
# alone is not enough when ua-parser recognises both the browser and the OS: 0.85% -> 0.44%.
_SHAPE_LITERAL = regex.compile(r"[a-z]{3,}", regex.I)
# An app's embedded browser: Android's WebView marks itself `; wv)` (Android's WebView docs); iOS's
# WKWebView sends Safari's User-Agent without the `Safari/` token.
WEBVIEW = regex.compile(r"; wv\)|^Mozilla/5\.0 \((?:iPhone|iPad|iPod)(?!.*Safari/)")


class Agent(NamedTuple):
    browser: str
    os: str
    device: str
    bot: bool


BOT = Agent("bot", "bot", "bot", True)


def _names_a_product(pattern: str) -> bool:
    """Whether a pattern holds a literal word of 3+ letters once escapes and classes are removed."""
    bare = regex.sub(r"\\.|\[[^\]]*\]|\(\?<?[=!:]|\{[^}]*\}", " ", pattern)
    return bool(_SHAPE_LITERAL.search(bare))


class BotPatterns:
    """isbot's list, split into patterns that name a product and patterns that only describe a shape."""

    def __init__(self, patterns: list[str], version: str) -> None:
        self.version = version
        # One compiled pattern each, tried in turn: each search then starts from its own literal,
        # 5x faster than one alternation of all of them (65 us against 330 us per User-Agent).
        self._named = [regex.compile(p, regex.I) for p in patterns if _names_a_product(p)]
        self._shaped = [regex.compile(p, regex.I) for p in patterns if not _names_a_product(p)]

    @classmethod
    def shipped(cls) -> BotPatterns:
        data = json.loads(resources.files("analytics_bp").joinpath("data/isbot-patterns.json")
                          .read_text(encoding="utf-8"))
        return cls(list(data["patterns"]), str(data["version"]))

    def is_bot(self, user_agent: str, browser: str, os_family: str) -> bool:
        if not user_agent.strip():
            return True
        text = ANDROID_MODEL.sub(r"\1", user_agent, count=1)
        if any(pattern.search(text) for pattern in self._named):
            return True
        if not any(pattern.search(text) for pattern in self._shaped):
            return False
        return browser == "Other" or os_family == "Other"


class Budget:
    """A token bucket: `per_minute` tokens, refilled continuously, at most `per_minute` saved up."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self._tokens = float(per_minute)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.capacity / 60)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class MatomoReading(NamedTuple):
    device_type: str  # Matomo's type (`smartphone`, `tablet`, `tv`...), '' when it cannot tell
    person: bool  # a browser or an app's browser, and not one of Matomo's bots


class MatomoData:
    """Matomo's device-detector data, loaded on first use (about 1.5 s) in the thread that needs
    it: no background thread, so nothing is mid-load at a fork or at interpreter exit. gunicorn's
    master loads it before forking (`preload`), so workers start with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._detector: Any = None
        os.register_at_fork(after_in_child=self._fresh_lock)

    def _fresh_lock(self) -> None:
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._detector is None:
            from device_detector import DeviceDetector

            DeviceDetector("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile", check_cache=False).parse()
            self._detector = DeviceDetector

    def read(self, user_agent: str, with_bots: bool = False) -> MatomoReading:
        with self._lock:  # its caches are not thread-safe, and one lookup at a time bounds the CPU
            self._load_locked()
            parsed = self._detector(user_agent, check_cache=False, skip_bot_detection=not with_bots).parse()
            kind = str(getattr(parsed.device_type(), "value", parsed.device_type()) or "")
            client = str(getattr(parsed.client_type(), "value", parsed.client_type()) or "")
            person = client in ("browser", "mobile app") and not (with_bots and parsed.is_bot())
            return MatomoReading(kind, person)


_MATOMO = MatomoData()


def preload(matomo: bool = True) -> None:
    """Compile isbot's patterns, warm ua-parser and load Matomo's data now (gunicorn's master,
    before the workers fork), so no worker's first beacon pays for them."""
    _shipped_patterns()
    parse_ua("Mozilla/5.0")
    if matomo:
        _MATOMO.load()


class AgentJudge:
    """The judgement of one process: isbot for bots, Matomo's data within a budget for the device
    class, ua-parser for names; cached per User-Agent."""

    def __init__(self, lookups_per_minute: int, patterns: BotPatterns | None = None) -> None:
        self.patterns = patterns or _shipped_patterns()
        self.budget = Budget(lookups_per_minute) if lookups_per_minute > 0 else None
        self._cache: OrderedDict[str, Agent] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.lookups = 0
        self.over_budget = 0

    def describe(self, user_agent: str) -> Agent:
        """Browser family, OS family, device class and whether it is a bot."""
        user_agent = user_agent[:MAX_AGENT]
        with self._cache_lock:
            known = self._cache.get(user_agent)
            if known is not None:
                self._cache.move_to_end(user_agent)
                return known
        agent, final = self._judge(user_agent)
        if final:  # a class guessed past the budget is not kept: a later beacon may do better
            with self._cache_lock:
                self._cache[user_agent] = agent
                if len(self._cache) > AGENT_CACHE:
                    self._cache.popitem(last=False)
        return agent

    def cached(self) -> int:
        return len(self._cache)

    def is_bot(self, user_agent: str) -> bool:
        """The bot verdict alone, uncached (for measuring it on corpora)."""
        user_agent = user_agent[:MAX_AGENT]
        result = parse_ua(user_agent)
        return self._bot_verdict(user_agent, _family(result.user_agent), _family(result.os))[0]

    def _judge(self, user_agent: str) -> tuple[Agent, bool]:
        result = parse_ua(user_agent)
        browser, os_family = _family(result.user_agent), _family(result.os)
        bot, reading, final = self._bot_verdict(user_agent, browser, os_family)
        if bot:
            return BOT, final
        if reading is None and self._may_look_up():
            reading = _MATOMO.read(user_agent)
        if reading is None:
            return Agent(browser, os_family, guess_device_class(user_agent, os_family, result.device),
                         False), self.budget is None
        device = DEVICE_CLASS.get(reading.device_type) or guess_device_class(user_agent, os_family,
                                                                              result.device)
        return Agent(browser, os_family, device, False), True

    def _bot_verdict(self, user_agent: str, browser: str,
                     os_family: str) -> tuple[bool, MatomoReading | None, bool]:
        """(bot, Matomo's reading if one was made, final). Rule 3: apps' embedded browsers carry
        the app's name (`SogouSearch`, WeChat's `Process/tools`, `com.google.GooglePlus`), which
        isbot's product words can hit; for them only, Matomo's data decides whether a person is
        reading. Measured: 1.69% -> 0.18% of Matomo's in-app browsers misflagged; isbot's own
        crawler corpus 98.7% -> 97.6% caught. Past the budget it stays a bot, not cached."""
        if not self.patterns.is_bot(user_agent, browser, os_family):
            return False, None, True
        if not WEBVIEW.search(user_agent):
            return True, None, True
        if not self._may_look_up():
            return True, None, self.budget is None
        reading = _MATOMO.read(user_agent, with_bots=True)
        return not reading.person, reading, True

    def _may_look_up(self) -> bool:
        if self.budget is None:
            return False
        if self.budget.take():
            self.lookups += 1
            return True
        self.over_budget += 1
        return False

def _family(parsed: Any) -> str:
    return str(parsed.family) if parsed else "Other"


@lru_cache(maxsize=1)
def _shipped_patterns() -> BotPatterns:
    return BotPatterns.shipped()


def guess_device_class(user_agent: str, os_family: str, device: Any) -> str:
    """The class from ua-parser's device family and the `Mobile` token, when Matomo's data cannot
    be asked (over budget) or does not know: Android without `Mobile` is a tablet, as Google's
    guidance for Android browsers says."""
    family = (device.family if device else "") or ""
    lowered = user_agent.lower()
    if "ipad" in lowered or "tablet" in lowered or family.lower().startswith(("ipad", "kindle")):
        return "tablet"
    if os_family == "Android" and "mobile" not in lowered:
        return "tablet"
    if os_family in MOBILE_OS or "mobile" in lowered:
        return "mobile"
    return "desktop"
