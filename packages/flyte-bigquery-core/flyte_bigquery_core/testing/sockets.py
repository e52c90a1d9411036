"""Who listens where, read from /proc (Linux; no extra tools): for tests that a server binds loopback only."""

from __future__ import annotations

import ipaddress
import os
import socket

__all__ = [
    "is_loopback",
    "listening_addresses",
    "listening_ports",
    "non_loopback_address",
    "reachable_off_loopback",
    "unmapped",
]


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 4), ("tcp6", 16)):
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state != "0A" or inode not in inodes:  # 0A = LISTEN
                    continue
                hex_addr, hex_port = local.split(":")
                raw = bytes.fromhex(hex_addr)
                # /proc prints each 32-bit word in host (little-endian) order.
                packed = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
                found.append((str(ipaddress.ip_address(packed)), int(hex_port, 16)))
    return found


def unmapped(address: str) -> str:
    """``address`` with an IPv4-mapped IPv6 address as the IPv4 one: gRPC binds "127.0.0.1:port" as an IPv6
    socket on ``::ffff:127.0.0.1``, which is still IPv4 loopback."""
    ip = ipaddress.ip_address(address)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return str(mapped or ip)


def is_loopback(address: str) -> bool:
    """Whether a listening address (IPv4-mapped IPv6 included) is loopback."""
    return ipaddress.ip_address(unmapped(address)).is_loopback


def non_loopback_address() -> str | None:
    """This machine's address on its default route, or None without one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def reachable_off_loopback(port: int, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``port`` on this machine's address on its default route succeeds (False
    without such an address: then only loopback exists)."""
    other = non_loopback_address()
    if other is None:
        return False
    try:
        with socket.create_connection((other, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening_ports() -> set[int]:
    """The ports of every listening TCP socket in this network namespace, whoever owns it."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            with open(table) as f:
                next(f)
                ports |= {int(row[1].rsplit(":", 1)[1], 16) for row in map(str.split, f) if row[3] == "0A"}
    return ports
