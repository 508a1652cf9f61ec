"""Filters of the firewall role: check firewall_services / firewall_ssh_sources and
split sources into the IPv4 and IPv6 networks the nftables template writes.

Both run on the controller (Python's ipaddress module, no extra dependency), so
preflight can refuse bad input before anything on the host changes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from typing import Any

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
PROTOS = ("tcp", "udp")


def _source_problems(where: str, sources: Any) -> list[str]:
    if sources == "any":
        return []
    if not isinstance(sources, list):
        return [f"{where}: must be a list of addresses or CIDRs, or the word any (got {sources!r})"]
    problems = []
    for source in sources:
        text = str(source).strip()
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f"; did you mean {ipaddress.ip_network(text, strict=False)}?"
            problems.append(f"{where}: {source!r} is not an IPv4/IPv6 address or CIDR ({e}){hint}")
    return problems


def firewall_problems(services: Any, ssh_sources: Any) -> list[str]:
    """Every problem of firewall_services and firewall_ssh_sources, naming the entry."""
    problems = _source_problems("firewall_ssh_sources", ssh_sources)
    if not isinstance(services, list):
        return [*problems, f"firewall_services must be a list (got {type(services).__name__})"]
    seen: dict[str, int] = {}
    for i, service in enumerate(services):
        if not isinstance(service, dict):
            problems.append(f"firewall_services[{i}] must be a mapping {{name, port, sources}}")
            continue
        name = service.get("name")
        where = f"firewall_services[{i}] ({name})"
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(
                f"{where}: name must be 1-63 letters, digits, '.', '_' or '-' (got {name!r})"
            )
        elif name in seen:
            problems.append(
                f"{where}: the name {name} is also firewall_services[{seen[name]}]'s;"
                " every service needs its own name"
            )
        else:
            seen[name] = i
        port = service.get("port")
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port)  # a templated value
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            problems.append(f"{where}: port must be a number from 1 to 65535 (got {port!r})")
        proto = service.get("proto", "tcp")
        if proto not in PROTOS:
            problems.append(f"{where}: proto must be tcp or udp (got {proto!r})")
        if "sources" not in service:
            problems.append(f"{where}: sources is missing (a list of addresses/CIDRs, or any)")
        else:
            problems += _source_problems(f"{where} sources", service["sources"])
    return problems


def firewall_output_problems(drops: Any) -> list[str]:
    """Every problem of firewall_output_drops, naming the entry."""
    if not isinstance(drops, list):
        return [f"firewall_output_drops must be a list (got {type(drops).__name__})"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, drop in enumerate(drops):
        if not isinstance(drop, dict):
            problems.append(
                f"firewall_output_drops[{i}] must be a mapping {{name, destinations, port}}"
            )
            continue
        name = drop.get("name")
        where = f"firewall_output_drops[{i}] ({name})"
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(
                f"{where}: name must be 1-63 letters, digits, '.', '_' or '-' (got {name!r})"
            )
        elif name in seen:
            problems.append(
                f"{where}: the name {name} is also firewall_output_drops[{seen[name]}]'s"
            )
        else:
            seen[name] = i
        port = drop.get("port")
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            problems.append(f"{where}: port must be a number from 1 to 65535 (got {port!r})")
        if drop.get("proto", "tcp") not in PROTOS:
            problems.append(f"{where}: proto must be tcp or udp (got {drop.get('proto')!r})")
        destinations = drop.get("destinations")
        if not isinstance(destinations, list) or not destinations:
            problems.append(
                f"{where}: destinations must be a non-empty list of addresses or CIDRs"
                f" (got {destinations!r})"
            )
        else:
            problems += _source_problems(f"{where} destinations", destinations)
        uids = drop.get("uids", [])
        if not isinstance(uids, list) or not all(
            not isinstance(u, bool) and str(u).strip().isdigit() and int(u) < 2**32 for u in uids
        ):
            problems.append(f"{where}: uids must be a list of numeric uids (got {uids!r})")
    return problems


def firewall_networks(sources: Any) -> dict[str, Any]:
    """``any`` or a list of addresses/CIDRs -> {any, ipv4: [...], ipv6: [...]} (sorted, merged)."""
    if sources == "any":
        return {"any": True, "ipv4": [], "ipv6": []}
    nets = [ipaddress.ip_network(str(s).strip(), strict=True) for s in sources]

    def family(version: int) -> list[str]:
        # overlapping networks merged: nftables refuses overlapping set intervals
        merged = ipaddress.collapse_addresses(n for n in nets if n.version == version)  # type: ignore[misc]
        return [
            str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in merged
        ]

    return {"any": False, "ipv4": family(4), "ipv6": family(6)}


class FilterModule:
    """The firewall role's filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "firewall_problems": firewall_problems,
            "firewall_output_problems": firewall_output_problems,
            "firewall_networks": firewall_networks,
        }
