"""Take client addresses out of log records (gunicorn's error log, and any logger it is put on).

Why: gunicorn logs a malformed request as "Invalid request from ip=203.0.113.7: ...", and other
lines of its own may name the peer; our promise is that no client address is ever written. The
filter rewrites a record's message with every IPv4 or IPv6 address replaced by `(address)`, except
the line that says where the server listens (its own address, not a client's).
"""

from __future__ import annotations

import ipaddress
import logging
import re

REDACTED = "(address)"
# Candidates: runs of hex digits, dots and colons (IPv4, IPv6, IPv4-mapped IPv6); each candidate is
# checked by ipaddress, so version numbers and times are left alone.
_CANDIDATE = re.compile(r"(?<![\w.:])[0-9A-Fa-f:.\[\]]*[.:][0-9A-Fa-f:.\[\]]*(?![\w.:])")
_OWN_ADDRESS = ("Listening at:",)


def _is_address(text: str) -> bool:
    candidate = text.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def redact(message: str) -> str:
    """`message` with each IP address in it replaced (ports stay: they identify no one)."""
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        text = whole.rstrip(".:")  # "ip=203.0.113.7: ..." ends the address with punctuation
        tail = whole[len(text):]
        if _is_address(text) or _is_address(whole):
            return REDACTED + (tail if _is_address(text) else "")
        host, _, port = text.rpartition(":")  # 203.0.113.7:51234
        if port.isdigit() and _is_address(host):
            return f"{REDACTED}:{port}{tail}"
        return whole

    return _CANDIDATE.sub(replace, message)


class ClientAddressFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(_OWN_ADDRESS):
            record.msg, record.args = redact(message), None
        return True
