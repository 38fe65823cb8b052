"""Beacon validation as a table: each raw body gives exactly this beacon or this reason."""

from __future__ import annotations

import json

import pytest

from analytics_bp.beacons import BeaconError, Reason, domain_matches, normalise_page, parse


def body(**fields: object) -> bytes:
    base: dict[str, object] = {"domain": "example.com", "page": "/a"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        (body(), "page", "/a"),
        (body(page="/a/b?x=1#frag"), "page", "/a/b"),
        (body(page="https://example.com/deep/path?q=secret"), "page", "/deep/path"),
        (body(page="//double//slashes"), "page", "/double/slashes"),
        (body(page="/caf%C3%A9/%00x"), "page", "/café/x"),
        (body(page="/" + "p" * 500), "page", "/" + "p" * 199),
        (body(page="no-slash"), "page", "/no-slash"),
        (body(domain="Example.COM."), "domain", "example.com"),
        (body(timezone=-840), "timezone", -840),
        (body(timezone=840), "timezone", 840),
        (body(timezone=None), "timezone", None),
        (body(load_ms=12.6), "load_ms", 13),
        (body(pages=3), "pages", 3),
        (body(platform="Linux\x07 x86_64"), "platform", "Linux x86_64"),
        (body(sess_id="ab-12_Z"), "sess_id", "ab-12_Z"),
        (body(referrer="https://t.co/x?y"), "referrer", "https://t.co/x?y"),
        (body(unknown="ignored", nested={"a": 1}), "page", "/a"),
    ],
)
def test_good_pageview_fields(raw: bytes, field: str, expected: object) -> None:
    assert getattr(parse(raw, "pageview"), field) == expected


def test_utm_extracted_before_the_query_is_stripped() -> None:
    beacon = parse(body(page="/p?utm_source=News&utm_medium=email&utm_campaign=Q4&x=1"), "pageview")
    assert beacon.page == "/p"
    assert beacon.utm == (("utm_source", "news"), ("utm_medium", "email"), ("utm_campaign", "q4"))


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"", Reason.BAD_JSON, ""),
        (b"not json", Reason.BAD_JSON, ""),
        (b"[1, 2]", Reason.BAD_JSON, ""),
        (b"\xff\xfe", Reason.BAD_JSON, ""),
        (b'{"domain": "example.com", "domain": "evil.com", "page": "/"}', Reason.BAD_JSON,
         "duplicate key"),
        (b'{"domain": "example.com", "page": "/", "timezone": NaN}', Reason.BAD_JSON,
         "NaN or Infinity"),
        (b'{"domain": "example.com", "page": "/", "load_ms": 1e999}', Reason.BAD_FIELD,
         "number out of range"),
        (b"[" * 3000 + b"]" * 3000, Reason.BAD_JSON, ""),
        (body(domain=None), Reason.MISSING_FIELD, "domain"),
        (body(page=None), Reason.MISSING_FIELD, "page"),
        (body(domain="exa mple.com"), Reason.BAD_FIELD, "domain"),
        (body(domain=["example.com"]), Reason.BAD_FIELD, "domain"),
        (body(domain="a" * 300), Reason.BAD_FIELD, "domain"),
        (body(page=123), Reason.BAD_FIELD, "page"),
        (body(page="/" + "x" * 3000), Reason.BAD_FIELD, "page"),
        (body(timezone=841), Reason.BAD_FIELD, "timezone"),
        (body(timezone="-60"), Reason.BAD_FIELD, "timezone"),
        (body(timezone=True), Reason.BAD_FIELD, "timezone"),
        (body(pages=0), Reason.BAD_FIELD, "pages"),
        (body(load_ms=-1), Reason.BAD_FIELD, "load_ms"),
        (body(load_ms=10**12), Reason.BAD_FIELD, "load_ms"),
        (body(sess_id="has space"), Reason.BAD_FIELD, "sess_id"),
        (body(sess_id="x" * 65), Reason.BAD_FIELD, "sess_id"),
        (body(referrer={"a": 1}), Reason.BAD_FIELD, "referrer"),
    ],
)
def test_bad_pageviews_are_refused_with_a_reason(raw: bytes, reason: Reason, field: str) -> None:
    with pytest.raises(BeaconError) as caught:
        parse(raw, "pageview")
    assert caught.value.reason is reason
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("fields", "event", "note"),
    [
        ({"event": "SocialClick", "note": "twitter"}, "socialclick", "twitter"),
        ({"event": "signup"}, "signup", ""),
        ({"event": "signup", "note": "line\nbreak\u2028x"}, "signup", "linebreakx"),
        ({"event": "signup", "note": "n" * 600}, "signup", "n" * 256),
    ],
)
def test_events(fields: dict[str, str], event: str, note: str) -> None:
    beacon = parse(body(**fields), "event")
    assert (beacon.event, beacon.note) == (event, note)


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "ünï", "-lead"])
def test_bad_event_names(name: str) -> None:
    with pytest.raises(BeaconError) as caught:
        parse(body(event=name), "event")
    assert caught.value.reason in (Reason.BAD_FIELD, Reason.MISSING_FIELD)


@pytest.mark.parametrize(
    ("domain", "patterns", "ok"),
    [
        ("example.com", ("example.com",), True),
        ("www.example.com", ("example.com",), False),
        ("www.example.org", ("*.example.org",), True),
        ("a.b.example.org", ("*.example.org",), True),
        ("example.org", ("*.example.org",), False),
        ("evilexample.org", ("*.example.org",), False),
    ],
)
def test_domain_patterns(domain: str, patterns: tuple[str, ...], ok: bool) -> None:
    assert domain_matches(domain, patterns) is ok


def test_page_normalisation_is_bounded_and_decoded() -> None:
    assert normalise_page("/%E2%82%AC?utm_source=a#x") == ("/€", (("utm_source", "a"),))
    assert normalise_page("/%ZZ") == ("/%ZZ", ())
