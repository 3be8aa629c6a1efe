"""The OSCQuery service announced on the local network by zeroconf (mDNS/DNS-SD).

TouchOSC, Open Stage Control and Max browse for ``_oscjson._tcp`` (the namespace's HTTP
port) and ``_osc._udp`` (where to send OSC); this registers both under the show's name,
on the interfaces the server listens on (every interface for 0.0.0.0). Only a server
opened beyond loopback announces itself (``OscQuery.announce``): mDNS multicasts on real
interfaces, which a show kept on this machine has no business doing. A name already
taken on the network gets a suffix (zeroconf's ``allow_name_change``).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from livernn.errors import LivernnError
from livernn.web.deps import zeroconf_asyncio

TYPES = ("_oscjson._tcp.local.", "_osc._udp.local.")


def _addresses(host: str) -> list[str]:
    """The IPv4 addresses a browser on the network may reach: the bound one, or, for
    0.0.0.0, every interface's (loopback only when there is nothing else)."""
    if host not in ("0.0.0.0", "::"):
        return [host]
    import ifaddr  # zeroconf's own dependency

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if isinstance(ip.ip, str)]
    outside = [a for a in found if not ipaddress.ip_address(a).is_loopback]
    return outside or found


class Announcement:
    """Registers the services on ``start()``, withdraws them on ``close()``."""

    def __init__(self, name: str, host: str, http_port: int, osc_port: int) -> None:
        self.name, self.host = name, host
        self.http_port, self.osc_port = http_port, osc_port
        self._zeroconf: Any = None
        self._infos: list[Any] = []

    async def start(self) -> list[str]:
        """Register; returns the service names as announced."""
        aio = zeroconf_asyncio()
        from zeroconf import InterfaceChoice, ServiceInfo

        addresses = _addresses(self.host)
        interfaces: Any = InterfaceChoice.All if self.host in ("0.0.0.0", "::") else addresses
        try:
            self._zeroconf = aio.AsyncZeroconf(interfaces=interfaces)
        except OSError as exc:
            raise LivernnError(f"oscquery: cannot announce on the network ({exc.strerror or exc})") from None
        server = socket.gethostname().split(".")[0] + ".local."
        packed = [socket.inet_aton(a) for a in addresses if ipaddress.ip_address(a).version == 4]
        for kind, port in zip(TYPES, (self.http_port, self.osc_port), strict=True):
            info = ServiceInfo(kind, f"{self.name}.{kind}", port=port, addresses=packed, server=server,
                               properties={"txtvers": "1"})
            await self._zeroconf.async_register_service(info, allow_name_change=True)
            self._infos.append(info)
        return [info.name for info in self._infos]

    async def close(self) -> None:
        if self._zeroconf is None:
            return
        try:
            await self._zeroconf.async_unregister_all_services()
        finally:
            await self._zeroconf.async_close()
            self._zeroconf = None
