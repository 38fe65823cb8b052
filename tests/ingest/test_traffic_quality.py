"""Bots, people and device classes, judged on public labelled corpora and by rule.

The corpora (tests/data/agents, extracted by scripts/agent_corpora.py) are other projects' test
data: isbot's, CrawlerDetect's, Matomo device-detector's, crawler-user-agents' and ua-parser-js's.
Each figure is printed at the end of the run ("measured figures") and by `make bench`.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_bp import agents
from analytics_bp.agents import AgentJudge, Budget
from analytics_bp.dev import traffic_quality as quality
from tests.support.influx import flush

FOLDER = Path(__file__).parents[1] / "data" / "agents"
# Matomo's data knows this Umax tablet by its model; its User-Agent still says `Mobile`.
TABLET_SAYING_MOBILE = ("Mozilla/5.0 (Linux; Android 10; 7A_3G) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/103.0.0.0 Mobile Safari/537.36")
WECHAT = ("Mozilla/5.0 (Linux; Android 9; SM-G965F Build/PPR1.180610.011; wv) AppleWebKit/537.36 "
          "(KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.62 XWEB/2889 MMWEBSDK/20210902 Mobile "
          "Safari/537.36 MMWEBID/4096 MicroMessenger/8.0.15.2020(0x28000F3D) Process/tools "
          "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64")
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")


@pytest.fixture(scope="module")
def judge() -> AgentJudge:
    return AgentJudge(quality.UNBOUNDED)


def _say(report_figure: Any, what: str, figure: quality.Figure) -> str:
    report_figure(quality.line(what, figure))
    return "\n".join(["judged wrong, for example:", *figure.examples])


@pytest.mark.parametrize("name", quality.CRAWLERS)
def test_crawlers_are_caught(name: str, judge: AgentJudge, report_figure: Any) -> None:
    figure = quality.crawlers_caught(FOLDER, name, judge)
    assert figure.share >= 0.95, _say(report_figure, "crawlers caught", figure)
    _say(report_figure, "crawlers caught", figure)


@pytest.mark.parametrize("name", quality.BROWSERS)
def test_real_browsers_and_in_app_browsers_are_people(name: str, judge: AgentJudge,
                                                      report_figure: Any) -> None:
    figure = quality.browsers_misflagged(FOLDER, name, judge)
    assert figure.share <= 0.005, _say(report_figure, "browsers misflagged", figure)
    _say(report_figure, "browsers misflagged", figure)


@pytest.mark.parametrize("name", quality.DEVICES)
def test_device_class_is_right(name: str, judge: AgentJudge, report_figure: Any) -> None:
    figure = quality.devices_right(FOLDER, name, judge)
    assert figure.share >= 0.95, _say(report_figure, "device class right", figure)
    _say(report_figure, "device class right", figure)


def test_every_corpus_names_its_source_commit_and_licence() -> None:
    for path in sorted(FOLDER.glob("*.tsv.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            header = dict(line[2:].rstrip("\n").split(": ", 1) for line in lines if line.startswith("# "))
        assert set(header) == {"source", "commit", "path", "licence"}, path.name
        assert header["source"].startswith("https://github.com/"), path.name


@pytest.mark.parametrize("user_agent, bot", [
    ("", True), ("   ", True),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
     "Safari/537.36", True),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
    ("python-requests/2.32.3", True), ("curl/8.5.0", True),
    (CHROME, False), (WECHAT, False),
    # Rule 1: the maker's model name (`VR BOT 552`) is not a crawler's word
    ("Mozilla/5.0 (Linux; Android 6.0; VR BOT 552) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/78.0.3904.96 Mobile Safari/537.36", False),
    # ...but a crawler that names itself after the parentheses still is one
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     True),
    # Rule 2: a shape alone (`\b\w+/1\.0;`) does not make a recognised browser on a known OS a bot
    ("Mozilla/5.0 (SAMSUNG; SAMSUNG-GT-S5330/S5330XXJJ1; U; Bada/1.0; it-it) AppleWebKit/533.1 "
     "(KHTML, like Gecko) Dolfin/2.0 Mobile WQVGA SMM-MMS/1.2.0 OPN-B", False),
])
def test_bot_verdicts(user_agent: str, bot: bool, judge: AgentJudge) -> None:
    assert judge.describe(user_agent).bot is bot
    assert judge.is_bot(user_agent) is bot


def test_device_class_comes_from_matomos_data_within_the_budget() -> None:
    now = [0.0]
    judge = AgentJudge(1)
    judge.budget = Budget(1, clock=lambda: now[0])
    assert judge.describe(TABLET_SAYING_MOBILE).device == "tablet"  # Matomo's data, the token spent
    other = TABLET_SAYING_MOBILE.replace("103.0.0.0", "104.0.0.0")
    assert judge.describe(other).device == "mobile"  # past the budget: ua-parser and `Mobile`
    assert (judge.cached(), judge.lookups, judge.over_budget) == (1, 1, 1)  # the guess is not kept
    now[0] += 60  # a minute later the token is back, and the same User-Agent is judged again
    assert judge.describe(other).device == "tablet"
    assert (judge.cached(), judge.lookups) == (2, 2)
    assert judge.describe(other).device == "tablet" and judge.lookups == 2  # now from the cache


def test_an_in_app_browser_past_the_budget_stays_a_bot_until_matomo_can_be_asked() -> None:
    now = [0.0]
    judge = AgentJudge(1)
    judge.budget = Budget(1, clock=lambda: now[0])
    judge.describe(CHROME)  # spends the one token
    assert judge.describe(WECHAT).bot is True and judge.cached() == 1
    now[0] += 60
    assert judge.describe(WECHAT) == agents.Agent("Chrome Mobile WebView", "Android", "mobile", False)


def test_a_budget_of_zero_never_loads_matomos_data() -> None:
    judge = AgentJudge(0)
    assert judge.describe(TABLET_SAYING_MOBILE).device == "mobile"
    assert judge.describe(WECHAT).bot is True  # without a second opinion, isbot's word stands
    assert judge.lookups == 0 and judge.cached() == 2


def test_only_the_first_512_characters_are_judged(judge: AgentJudge) -> None:
    padded = CHROME + " " * (agents.MAX_AGENT - len(CHROME))
    assert judge.describe(padded + "Googlebot/2.1").bot is False
    assert judge.describe(padded[:-20] + "Googlebot/2.1").bot is True


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_any_user_agent_gets_a_verdict_from_the_vocabulary(user_agent: str) -> None:
    judge = AgentJudge(0)
    agent = judge.describe(user_agent)
    assert agent.device in ("desktop", "mobile", "tablet", "bot")
    assert agent.bot is (agent.device == "bot")
    assert agent == judge.describe(user_agent[: agents.MAX_AGENT])


def test_a_flood_of_new_user_agents_from_one_client_spends_only_the_budget(
        make_app: Any, influx: Any, bucket: str) -> None:
    """Random User-Agents would each cost Matomo's parser ~14 ms: past the per-minute budget they
    are judged from ua-parser alone, and every beacon is still stored with a class."""
    app = make_app(ANALYTICS_DEVICE_LOOKUPS_PER_MINUTE=5)
    client = app.test_client()
    for i in range(40):
        agent = TABLET_SAYING_MOBILE.replace("103.0.0.0", f"103.0.{i}.0")
        resp = client.post("/analytics/pageview", headers={"User-Agent": agent, "Content-Type": "text/plain"},
                           data=f'{{"domain": "example.com", "page": "/p{i}"}}',
                           environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert resp.status_code == 204
    judge = app.extensions["analytics"].collector.agents
    assert (judge.lookups, judge.over_budget, judge.cached()) == (5, 35, 5)
    flush(app)
    devices = [row["_value"] for row in influx.query(
        'from(bucket: b) |> range(start: 0) |> filter(fn: (r) => r._measurement == "pageview" and '
        'r._field == "device") |> group()', b=bucket)]
    assert sorted(devices) == ["mobile"] * 35 + ["tablet"] * 5
