"""How well the collector tells bots from people and phones from tablets, on labelled corpora.

Why here: the suite asserts these figures (tests/ingest/test_traffic_quality.py) and `make bench` prints
them, from the same code. The corpora are other projects' test data, extracted by
scripts/agent_corpora.py into tests/data/agents/ (not shipped); each file names its source, commit
and licence in its header.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..agents import AgentJudge

CRAWLERS = ("isbot-crawlers", "crawlerdetect-crawlers", "matomo-bots", "crawler-user-agents")
BROWSERS = ("isbot-browsers", "matomo-browsers", "matomo-webviews")
DEVICES = ("ua-parser-js-devices", "matomo-devices")
CLASSES = ("desktop", "mobile", "tablet")
UNBOUNDED = 10**9  # lookups per minute: a budget never reached, so every figure is Matomo's full say
MATOMO_DEVICE_SAMPLE = 10  # every 10th labelled Matomo entry: Matomo's parser costs ~20 ms each


@dataclass(frozen=True)
class Corpus:
    name: str
    header: dict[str, str]
    rows: list[tuple[str, ...]]  # (label..., user agent): the User-Agent is always last


@dataclass(frozen=True)
class Figure:
    corpus: str
    share: float  # caught, misflagged or right, as a fraction
    count: int
    total: int
    source: str
    examples: tuple[str, ...]  # a few User-Agents judged wrong, for the failure message


def read(folder: Path, file: str) -> Corpus:
    header: dict[str, str] = {}
    rows: list[tuple[str, ...]] = []
    with gzip.open(folder / f"{file}.tsv.gz", "rt", encoding="utf-8") as lines:
        for text in lines:
            if text.startswith("# "):
                key, _, value = text[2:].rstrip("\n").partition(": ")
                header[key] = value
            else:
                rows.append(tuple(text.rstrip("\n").split("\t")))
    return Corpus(file, header, rows)


def corpus(folder: Path, name: str) -> Corpus:
    """A corpus by the name the figures use; the Matomo ones are views of one extract."""
    if name.startswith("matomo-") and name != "matomo-bots":
        clients = read(folder, "matomo-clients")
        rows: list[tuple[str, ...]]
        if name == "matomo-browsers":
            rows = [(r[2],) for r in clients.rows if r[0] == "browser"]
        elif name == "matomo-webviews":  # apps' embedded browsers carry the engine's Mozilla/5.0
            rows = [(r[2],) for r in clients.rows if r[0] == "mobile app" and r[2].startswith("Mozilla/5.0")]
        else:
            labelled: list[tuple[str, ...]] = [(r[1], r[2]) for r in clients.rows
                                               if r[0] == "browser" and r[1] in CLASSES]
            rows = labelled[::MATOMO_DEVICE_SAMPLE]
        return Corpus(name, clients.header, rows)
    found = read(folder, name)
    if name == "ua-parser-js-devices":
        return Corpus(name, found.header, [r for r in found.rows if r[0] in CLASSES])
    return found


def _share(name: str, found: Corpus, wrong: Callable[[tuple[str, ...]], bool], count_wrong: bool) -> Figure:
    misses = [row for row in found.rows if wrong(row)]
    count = len(misses) if count_wrong else len(found.rows) - len(misses)
    source = f"{found.header.get('source', '?')} @ {found.header.get('commit', '?')[:12]}"
    return Figure(name, count / len(found.rows), count, len(found.rows), source,
                  tuple(row[-1][:160] for row in misses[:8]))


def crawlers_caught(folder: Path, name: str, judge: AgentJudge) -> Figure:
    return _share(name, corpus(folder, name), lambda row: not judge.is_bot(row[-1]), False)


def browsers_misflagged(folder: Path, name: str, judge: AgentJudge) -> Figure:
    return _share(name, corpus(folder, name), lambda row: judge.is_bot(row[-1]), True)


def devices_right(folder: Path, name: str, judge: AgentJudge) -> Figure:
    return _share(name, corpus(folder, name), lambda row: judge.describe(row[-1]).device != row[0], False)


def report(folder: Path) -> list[str]:
    """Every figure as one line each, with the cost of a judgement (for `make bench`)."""
    lines = []
    full = AgentJudge(UNBOUNDED)
    for name in CRAWLERS:
        lines.append(line("crawlers caught", crawlers_caught(folder, name, full)))
    for name in BROWSERS:
        lines.append(line("browsers misflagged", browsers_misflagged(folder, name, full)))
    for name in DEVICES:
        lines.append(line("device class right", devices_right(folder, name, full)))
    lines.extend(miss_costs(folder))
    return lines


def line(what: str, figure: Figure) -> str:
    return (f"{what:<20} {figure.corpus:<24} {figure.share:7.2%}  ({figure.count}/{figure.total}; "
            f"{figure.source})")


def miss_costs(folder: Path, sample: int = 400) -> list[str]:
    """Microseconds per new User-Agent: without Matomo's parser (past the budget) and with it."""
    agents = [row[-1] for row in corpus(folder, "matomo-browsers").rows[::50][:sample]]
    lines = []
    for label, judge in (("without device data", AgentJudge(0)), ("with device data", AgentJudge(UNBOUNDED))):
        judge.describe("warm-up")
        started = time.perf_counter()
        for agent in agents:
            judge.describe(agent)
        micros = (time.perf_counter() - started) / len(agents) * 1e6
        lines.append(f"cache miss cost      {label:<24} {micros:9.0f} us per User-Agent "
                     f"({len(agents)} Matomo browser User-Agents)")
    return lines
