"""The tag a site owner pastes: the agent's <script> with Subresource Integrity, and the stub.

Why SRI: the agent runs on every page of the site; the hash pins the exact bytes the collector
serves, so a tampered file is refused by the browser.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from html import escape
from importlib import resources

# data-* options the agent reads (agent_js/src/agent.js); nothing else is rendered.
AGENT_OPTIONS = {"endpoint": "endpoint", "allow_local": "allow-local", "hash": "hash",
                 "outbound": "outbound", "downloads": "downloads", "engagement": "engagement"}
# Options only the extras build (agent.extras.js) reads: any of them switches the tag to it.
EXTRAS_OPTIONS = ("outbound", "downloads", "engagement")
# The agent's builds: the name it is served under -> its file in static/ (the one list of them:
# the views serve these, `export nginx` copies these, the script tag hashes these).
AGENT_FILES = {"agent.js": "agent.min.js", "agent.extras.js": "agent.extras.min.js",
               "agent.debug.js": "agent.debug.js"}
QUEUE_STUB = (
    "<script>window.recordEvent=window.recordEvent||function(){"
    "(window.recordEvent.q=window.recordEvent.q||[]).push(arguments)}</script>"
)


@lru_cache(maxsize=4)
def agent_sri(filename: str = "agent.min.js") -> str:
    data = resources.files("analytics_bp").joinpath("static", filename).read_bytes()
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def script_tag(base_url: str, **options: object) -> str:
    """`<script defer src=".../agent.js" integrity=... data-...>`; options are allowlisted.

    `outbound=True`, `downloads=True` (or a comma list of extensions such as "pdf,zip") and
    `engagement=True` switch to agent.extras.js, the build that reads them."""
    unknown = set(options) - set(AGENT_OPTIONS)
    if unknown:
        raise TypeError(f"unknown agent option {sorted(unknown)}; allowed: {sorted(AGENT_OPTIONS)}")
    name = "agent.extras.js" if any(options.get(k) not in (None, False) for k in EXTRAS_OPTIONS) \
        else "agent.js"
    attrs = [f'src="{escape(base_url.rstrip("/") + "/" + name)}"',
             f'integrity="{agent_sri(AGENT_FILES[name])}"', 'crossorigin="anonymous"']
    for key in AGENT_OPTIONS:  # a fixed order: the same options always give the same tag
        value = options.get(key)
        if value is True:
            attrs.append(f"data-{AGENT_OPTIONS[key]}")
        elif value not in (None, False):
            attrs.append(f'data-{AGENT_OPTIONS[key]}="{escape(str(value))}"')
    return f"<script defer {' '.join(attrs)}></script>"


def queue_stub(nonce: str = "") -> str:
    """The inline stub that queues recordEvent calls made before the agent has loaded."""
    if not nonce:
        return QUEUE_STUB
    return QUEUE_STUB.replace("<script>", f'<script nonce="{escape(nonce)}">', 1)
