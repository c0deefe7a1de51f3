"""The URL policy: the one place that decides which URLs the connector may open and what their origin is.

A URL is judged by the parser that opens the connection: ``requests`` prepares it and urllib3's
``parse_url`` reads the result, exactly as the connection pool will, so the host checked here is the host
connected to. Before that, anything on which URL parsers are known to disagree is refused outright:
backslashes, user info (``user@host``), control and whitespace characters, percent-encoding in the
authority, and non-ASCII text (IDNA). The rules:

* ``https``; plain ``http`` only to a loopback address (127.0.0.0/8, ``::1``, ``localhost``): the sandbox;
* an allowed host is allowed on one port only (443 for mParticle's hosts; the configured port for an
  override), so ``https://opendsr.mparticle.com:8443`` is not mParticle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from urllib3.util import Url

from dsr_framework.urls import LOOPBACK_NAMES, is_loopback, transport_allowed

__all__ = ["LOOPBACK_NAMES", "Origin", "UrlPolicy", "UrlRefused", "is_loopback", "origin_of"]

DEFAULT_PORTS = {"https": 443, "http": 80}
_AUTHORITY_END = "/?#"


class UrlRefused(ValueError):
    """A URL the policy does not accept. The message names the reason and the host, never the whole URL."""


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port, normalised (lower-case host, explicit port): what a connection goes to."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        port = "" if DEFAULT_PORTS.get(self.scheme) == self.port else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def _check_text(url: str) -> None:
    """Refuse URLs whose text parsers could read differently, before any parser sees them."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("the URL is empty or not text")
    _check_characters(url)
    _check_authority(url)


def _check_characters(url: str) -> None:
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise UrlRefused("the URL contains whitespace or control characters")
    if not url.isascii():
        raise UrlRefused("the URL contains non-ASCII characters")
    if "\\" in url:
        raise UrlRefused("the URL contains a backslash")


def _check_authority(url: str) -> None:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in DEFAULT_PORTS:
        raise UrlRefused("the URL must start with https:// (or http:// for loopback)")
    authority = rest
    for end in _AUTHORITY_END:
        authority = authority.split(end, 1)[0]
    if "@" in authority:
        raise UrlRefused("the URL carries user info (user@host), which is never sent")
    if "%" in authority:
        raise UrlRefused("the URL's host is percent-encoded")


def origin_of(url: str) -> Origin:
    """The origin a connection to ``url`` would go to, judged as ``requests``/urllib3 will open it.

    Raises :class:`UrlRefused` for URLs the policy never accepts (see the module docstring).
    """
    import requests
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    _check_text(url)
    try:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        parsed = parse_url(prepared.url or "")
    except (requests.RequestException, LocationParseError, ValueError) as exc:
        raise UrlRefused(f"the URL cannot be parsed ({type(exc).__name__})") from None
    return _judge(parsed)


def _judge(parsed: Url) -> Origin:
    """The origin of a URL as urllib3 parsed it, if the policy ever accepts it."""
    scheme = (parsed.scheme or "").lower()
    host = (parsed.host or "").lower()
    if parsed.auth:
        raise UrlRefused("the URL carries user info (user@host), which is never sent")
    if scheme not in DEFAULT_PORTS or not host:
        raise UrlRefused("the URL must be https:// (or http:// for loopback) with a host")
    if host.endswith("."):
        raise UrlRefused(f"the host {host} ends with a dot")
    if not transport_allowed(scheme, host):
        raise UrlRefused(f"plain http is only allowed for loopback, not {host}")
    return Origin(scheme, host, parsed.port or DEFAULT_PORTS[scheme])


class UrlPolicy:
    """Which (host, port) pairs the connector may open. Built from the configuration; immutable."""

    def __init__(self, allowed: Iterable[tuple[str, int]]) -> None:
        self._allowed = frozenset((host.lower(), port) for host, port in allowed)

    @classmethod
    def of(cls, urls: Iterable[str], hosts: Iterable[str] = ()) -> UrlPolicy:
        """Allow the origins of ``urls`` and, on port 443 (or an explicit ``host:port``), ``hosts``."""
        pairs = [(o.host, o.port) for o in map(origin_of, urls)]
        for entry in hosts:
            host, sep, port = entry.rpartition(":")
            pairs.append((host, int(port)) if sep and port.isdigit() else (entry, 443))
        return cls(pairs)

    def __repr__(self) -> str:
        return f"UrlPolicy({sorted(f'{h}:{p}' for h, p in self._allowed)})"

    def allows(self, origin: Origin) -> bool:
        return (origin.host, origin.port) in self._allowed

    def check(self, url: str) -> Origin:
        """The origin of ``url`` if the policy allows it; :class:`UrlRefused` (naming the host) otherwise."""
        origin = origin_of(url)
        if not self.allows(origin):
            raise UrlRefused(f"{origin} is not a host this connector trusts")
        return origin
