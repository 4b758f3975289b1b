"""The guard on every HTTP request a workflow makes (``http`` steps, ``webhook`` sinks, feeds, calendars).

A workflow's URLs are often rendered from what it reads (a feed entry's link, a webhook field), so without
a guard a message could make plait fetch a service on this machine or the home network (a router's admin
page, a database's HTTP port, a cloud metadata address) and hand the answer on. :class:`GuardedTransport`
therefore, for each request and again for each redirect:

- takes http and https URLs only;
- resolves the host name and refuses it if *any* of its addresses is not a public (global) address:
  loopback, link-local (169.254.0.0/16, fe80::/10), private (10/8, 172.16/12, 192.168/16, fc00::/7),
  shared, reserved or multicast ranges;
- connects to the address it checked (the name goes in ``Host`` and TLS's SNI), so a name cannot resolve
  to a public address for the check and a private one for the connection (DNS rebinding);
- unless the workflow lists the host, address or network in ``network.allow`` (``127.0.0.1:8080``,
  ``nas.local``, ``192.168.1.0/24``): then it is reached as written.

Redirects are not followed unless the workflow sets ``network.redirects``; followed ones pass the same
checks, hop by hop, because each hop is a new request through this transport.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from plait.errors import InputError

Resolver = Callable[[str, int], list[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundRefused(InputError):
    """A workflow's request would reach an address it may not (an SSRF guard refusal)."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpx.ConnectError(f"cannot resolve {host} ({exc.strerror})") from exc
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class _Entry:
    host: str | None  # a host name, lower case
    network: Network | None
    port: int | None

    def matches(self, host: str, address: Address | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return host == self.host
        return address is not None and self.network is not None and address in self.network


def _parse_entry(text: str) -> _Entry:
    text = text.strip().lower()
    port: int | None = None
    host = text
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    elif text.count(":") == 1:
        host, _, tail = text.partition(":")
        if not tail.isdigit():
            raise InputError(f"network.allow entry '{text}': the part after ':' must be a port number")
        port = int(tail)
    try:
        return _Entry(None, ipaddress.ip_network(host, strict=False), port)
    except ValueError:
        if not host or "/" in host:
            raise InputError(f"network.allow entry '{text}' is not a host, address or network") from None
        return _Entry(host.rstrip("."), None, port)


@dataclass(frozen=True)
class NetworkPolicy:
    allow: tuple[str, ...] = ()
    redirects: int = 0

    def entries(self) -> list[_Entry]:
        return [_parse_entry(a) for a in self.allow]


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone id is not part of the address
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    return address


def _kind(address: Address) -> str:
    for name in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    return "non-public"


class GuardedTransport(httpx.BaseTransport):
    """Checks each request's destination (see the module docstring), then hands it to ``inner``."""

    def __init__(self, inner: httpx.BaseTransport | None, policy: NetworkPolicy, *,
                 resolver: Resolver = system_resolver) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.policy, self.resolver = policy, resolver
        self._entries = policy.entries()

    def check(self, url: httpx.URL) -> str | None:
        """The address to connect to (None: connect by name, the author allowed it); raises OutboundRefused."""
        if url.scheme not in ("http", "https"):
            raise OutboundRefused(f"{url.scheme}: URLs are not fetched by workflows; use http:// or https://")
        host = url.host.lower().rstrip(".")
        port = url.port or (443 if url.scheme == "https" else 80)
        literal = _address(host)
        if any(e.matches(host, literal, port) for e in self._entries if e.host is not None):
            return None
        addresses = [literal] if literal is not None else \
            [a for a in (_address(x) for x in self.resolver(host, port)) if a is not None]
        if not addresses:
            raise httpx.ConnectError(f"{host} has no address")
        for address in addresses:
            if address.is_global:
                continue
            if any(e.matches(host, address, port) for e in self._entries if e.network is not None):
                continue
            raise OutboundRefused(
                f"refused to reach {host}:{port}: it is a {_kind(address)} address ({address}), which a workflow may "
                f"reach only if its `network: allow:` lists it (e.g. allow: [\"{address}:{port}\"])")
        return None if literal is not None else str(addresses[0])

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pinned = self.check(request.url)
        if pinned is None:
            return self.inner.handle_request(request)
        # Connect to the address that was checked; the name stays in Host (already set) and in TLS's SNI, so
        # the certificate is still checked against it. A copy: httpx builds redirects from the original.
        direct = httpx.Request(request.method, request.url.copy_with(host=pinned), headers=request.headers,
                               stream=request.stream,
                               extensions={**request.extensions, "sni_hostname": request.url.host})
        return self.inner.handle_request(direct)

    def close(self) -> None:
        self.inner.close()


def check_host(host: str, port: int, policy: NetworkPolicy, *, resolver: Resolver = system_resolver) -> None:
    """The same check for a connection that is not HTTP (IMAP, SMTP): raises OutboundRefused."""
    url = httpx.URL(scheme="http", host=host, port=port)
    try:
        GuardedTransport(httpx.MockTransport(lambda r: httpx.Response(204)), policy, resolver=resolver).check(url)
    except httpx.ConnectError:
        return  # a name that does not resolve: the connection itself will fail and say so


def guarded_client(policy: NetworkPolicy, inner: httpx.BaseTransport | None = None, *,
                   resolver: Resolver = system_resolver, headers: dict[str, str] | None = None,
                   **kwargs: Any) -> httpx.Client:
    """An httpx client whose every request and redirect goes through the guard."""
    return httpx.Client(transport=GuardedTransport(inner, policy, resolver=resolver),
                        follow_redirects=policy.redirects > 0, max_redirects=max(1, policy.redirects),
                        headers=headers, **kwargs)


def policy_from(allow: Sequence[str], redirects: int) -> NetworkPolicy:
    policy = NetworkPolicy(tuple(allow), redirects)
    policy.entries()  # parse now: a bad entry is a workflow error at load, not at the first request
    return policy


def redirect_hint(response: httpx.Response) -> str:
    """For an error message: where a redirect pointed, and how to follow it."""
    if 300 <= response.status_code < 400:
        return (f" (a redirect to {response.headers.get('location', '?')[:200]}; set the workflow's network.redirects "
                "to follow it)")
    return ""
