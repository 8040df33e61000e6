"""IPv4 checks shared by pods and IP ranges, worded as CloudStack words them (431 each).

Addresses are stored as the text the operator sent once validated; comparisons go through
``ipaddress`` so "10.0.0.9" sorts before "10.0.0.10".
"""

from __future__ import annotations

from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError

from cumulo.services.errors import ParamError


def ipv4(field: str, value: str) -> IPv4Address:
    try:
        return IPv4Address(value.strip())
    except (AddressValueError, ValueError):
        raise ParamError(f"Please specify a valid IP address for {field}: {value}") from None


def subnet(gateway: str, netmask: str) -> IPv4Network:
    """The network a gateway and netmask describe; a netmask must be contiguous ones."""
    ipv4("gateway", gateway)
    try:
        return IPv4Network(f"{gateway.strip()}/{netmask.strip()}", strict=False)
    except (NetmaskValueError, AddressValueError, ValueError):
        raise ParamError(f"Please specify a valid netmask: {netmask}") from None


def cidr(field: str, value: str) -> IPv4Network:
    try:
        return IPv4Network(value.strip(), strict=False)
    except (NetmaskValueError, AddressValueError, ValueError):
        raise ParamError(f"Please specify a valid CIDR for {field}: {value}") from None


def checked_range(
    gateway: str, netmask: str, start: str, end: str | None
) -> tuple[IPv4Address, IPv4Address]:
    """A start..end range that lies inside gateway/netmask (end defaults to start)."""
    net = subnet(gateway, netmask)
    first = ipv4("startip", start)
    last = ipv4("endip", end) if end else first
    if first > last:
        raise ParamError(f"Start IP {first} is greater than end IP {last}")
    for addr in (first, last):
        if addr not in net:
            raise ParamError(
                f"The IP range {first}-{last} is not in the subnet of gateway {gateway} "
                f"and netmask {netmask}"
            )
    return first, last


def overlaps(a: tuple[IPv4Address, IPv4Address], b: tuple[IPv4Address, IPv4Address]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]
