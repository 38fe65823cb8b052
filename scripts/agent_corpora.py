"""Extract the labelled User-Agent corpora under tests/data/agents/ from their public repositories.

Why a script: the corpora are other projects' test data (isbot, CrawlerDetect, Matomo's
device-detector, crawler-user-agents). We keep a compact extract (label and User-Agent) with the
source, commit and licence named in each file's header, so the test reads them without YAML and
without the network, and anyone can regenerate them at a newer commit to see how the judgement
ages. Development time only (needs PyYAML); the package never ships these files.

    pip install pyyaml crawler-user-agents
    python scripts/agent_corpora.py ISBOT_REPO CRAWLERDETECT_REPO DEVICE_DETECTOR_REPO UA_PARSER_JS_REPO

Each REPO is a git directory (a clone or a bare mirror) of omrilotan/isbot, JayBizzle/Crawler-Detect,
matomo-org/device-detector and faisalman/ua-parser-js; its HEAD is read. crawler-user-agents'
instances come from the installed PyPI package.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "agents"
# Matomo's device types folded into our three classes; other types (TV, console, car...) keep
# their own name and the test leaves them out of the device-class figure.
MATOMO_DEVICE = {"desktop": "desktop", "smartphone": "mobile", "feature phone": "mobile",
                 "phablet": "mobile", "tablet": "tablet"}


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True,
                          text=True).stdout


def git_dir(path: str) -> str:
    candidate = Path(path)
    return str(candidate / ".git") if (candidate / ".git").exists() else str(candidate)


def write(name: str, header: dict[str, str], rows: Iterable[tuple[str, ...]]) -> None:
    """One gzip'd TSV: `# key: value` header lines, then the rows (tabs and newlines removed)."""
    OUT.mkdir(parents=True, exist_ok=True)
    unique = sorted({tuple(" ".join(c.split()) for c in row) for row in rows if row[-1].strip()})
    with gzip.open(OUT / name, "wt", encoding="utf-8", compresslevel=9) as out:
        out.writelines(f"# {key}: {value}\n" for key, value in header.items())
        out.writelines("\t".join(row) + "\n" for row in unique)
    print(f"{name}: {len(unique)} rows")


def source(repo: str, url: str, path: str, licence: str) -> dict[str, str]:
    return {"source": url, "commit": git(repo, "rev-parse", "HEAD").strip(), "path": path,
            "licence": licence}


def yaml_at(repo: str, path: str) -> Any:
    return yaml.safe_load(git(repo, "show", f"HEAD:{path}"))


def isbot(repo: str) -> None:
    """isbot's fixtures: a mapping of product names to lists of User-Agents."""
    for kind in ("crawlers", "browsers"):
        path = f"fixtures/{kind}.yml"
        data = yaml_at(repo, path)
        rows = [(ua,) for agents in data.values() for ua in agents or []]
        write(f"isbot-{kind}.tsv.gz", source(repo, "https://github.com/omrilotan/isbot", path,
                                             "Unlicense"), rows)


def crawlerdetect(repo: str) -> None:
    path = "tests/data/user_agent/crawlers.txt"
    rows = [(line,) for line in git(repo, "show", f"HEAD:{path}").splitlines()]
    write("crawlerdetect-crawlers.tsv.gz",
          source(repo, "https://github.com/JayBizzle/Crawler-Detect", path, "MIT"), rows)


def matomo_entries(repo: str) -> Iterator[tuple[str, str, str]]:
    """(client type, device class, User-Agent) of every non-bot fixture."""
    for path in git(repo, "ls-tree", "--name-only", "HEAD", "Tests/fixtures/").split():
        if not path.endswith(".yml") or path.endswith("bots.yml"):
            continue
        for entry in yaml_at(repo, path) or []:
            client = (entry.get("client") or {}).get("type") or "none"
            device = str((entry.get("device") or {}).get("type") or "unknown")
            yield client, MATOMO_DEVICE.get(device, device.replace(" ", "_")), str(entry["user_agent"])


def matomo(repo: str) -> None:
    url = "https://github.com/matomo-org/device-detector"
    write("matomo-clients.tsv.gz", source(repo, url, "Tests/fixtures/*.yml (all but bots.yml)",
                                          "LGPL-3.0-or-later"), matomo_entries(repo))
    bots = [(str(entry["user_agent"]),) for entry in yaml_at(repo, "Tests/fixtures/bots.yml")]
    write("matomo-bots.tsv.gz", source(repo, url, "Tests/fixtures/bots.yml", "LGPL-3.0-or-later"), bots)


def ua_parser_js(repo: str) -> None:
    """ua-parser-js's device tests: each User-Agent with the device type its authors expect."""
    folder = "test/data/ua/device/"
    rows = []
    for path in git(repo, "ls-tree", "--name-only", "HEAD", folder).split():
        for case in json.loads(git(repo, "show", f"HEAD:{path}")):
            kind = str((case.get("expect") or {}).get("type") or "undefined")
            rows.append((kind, str(case["ua"])))
    write("ua-parser-js-devices.tsv.gz", source(repo, "https://github.com/faisalman/ua-parser-js",
                                                 folder + "*.json", "AGPL-3.0-or-later"), rows)


def crawler_user_agents() -> None:
    """The instances listed beside each pattern in the crawler-user-agents package we install."""
    import crawleruseragents

    path = Path(crawleruseragents.__file__).with_name("crawler-user-agents.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    version = json.loads(path.with_name("package.json").read_text(encoding="utf-8"))["version"]
    rows = [(ua,) for entry in data for ua in entry.get("instances", [])]
    write("crawler-user-agents.tsv.gz", {"source": "https://github.com/monperrus/crawler-user-agents",
                                         "commit": f"PyPI crawler-user-agents {version}",
                                         "path": "crawler-user-agents.json (instances)",
                                         "licence": "MIT"}, rows)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    isbot(git_dir(argv[0]))
    crawlerdetect(git_dir(argv[1]))
    matomo(git_dir(argv[2]))
    ua_parser_js(git_dir(argv[3]))
    crawler_user_agents()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
