"""Can a device dial this URL to reach a coordinator that listens where its data dir says?

A running coordinator writes ``coordinator.json`` into its data directory: the URL it advertises
and the address and port it is bound to. ``fogmesh token create`` runs beside it (same data
directory) and puts a URL into each join token; a token whose URL cannot reach that bind
address enrols nobody, and the device only finds out by timing out. Pure: no I/O, no name
resolution (a host name the machine would have to resolve is given the benefit of the doubt).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from fogmesh.security.tls import is_loopback, is_wildcard

__all__ = ["reach_warning", "runtime_url"]

_DEFAULT_PORTS: Final = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _endpoint(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def reach_warning(url: str, runtime: Mapping[str, Any]) -> str | None:
    """Why a device given ``url`` cannot reach the coordinator described by ``runtime`` (the
    parsed ``coordinator.json``), or None when it can or this cannot tell."""
    bind_host = str(runtime.get("host", "")).lower()
    bind_port = runtime.get("port")
    if not isinstance(bind_port, int) or "host" not in runtime:
        return None  # written by a coordinator that did not record its bind address
    advertised = runtime.get("url")
    if isinstance(advertised, str) and _endpoint(advertised) == _endpoint(url):
        return None  # the URL the coordinator was told devices dial (--url)
    _, host, port = _endpoint(url)
    listening = f"{bind_host or '*'}:{bind_port}"
    if port != bind_port and not (isinstance(advertised, str) and _endpoint(advertised)[2] == port):
        return f"the coordinator listens on port {bind_port} ({listening}), but {url} says {port}"
    if is_wildcard(bind_host):
        if is_loopback(host):
            return (
                f"{url} reaches the coordinator from this machine only; for a device on another "
                f"machine, give --url with this machine's address (e.g. http://192.168.1.20:"
                f"{bind_port})"
            )
        return None
    if is_loopback(bind_host):
        if is_loopback(host):
            return None
        return (
            f"the coordinator listens on {listening} only, so a device on another machine cannot "
            f"reach {url}: restart it with --host 0.0.0.0 (every interface) or --host {host}"
        )
    # Bound to one address: a URL naming another address (or loopback) misses it.
    wanted = _ip(bind_host)
    given = _ip(host)
    if is_loopback(host) or (wanted is not None and given is not None and wanted != given):
        return (
            f"the coordinator listens on {listening} only, so {url} cannot reach it: restart it "
            f"with --host 0.0.0.0 or --host {host}, or give --url with {bind_host}"
        )
    return None


def runtime_url(runtime: Mapping[str, Any]) -> str | None:
    """The URL a running coordinator advertises, when a device could dial it (not 0.0.0.0)."""
    url = runtime.get("url")
    if not isinstance(url, str) or is_wildcard(_endpoint(url)[1]):
        return None
    return url
