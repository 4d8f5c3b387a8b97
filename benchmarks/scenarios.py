"""Desired states for the scale benchmarks: a small ISP, a large operator (also with ASPAs), a registry.

Each is generated deterministically (a fixed seed), so two runs sign the same objects and their figures
compare. The prefixes are carved from fixed blocks so that every ROA entry is inside its CA's resources,
and every ASPA's customer AS from a range the CA holds.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SETTINGS = """\
publication:
  rsync_base: rsync://rpki.example.net/repo/
  rrdp_base: https://rpki.example.net/rrdp/
  directory: {published}
signers:
  default:
    type: file
    directory: {keys}
"""

TRUST_ANCHOR = """\
name: ta
trust_anchor: true
resources:
  asn: ["0-4294967295"]
  ipv4: ["0.0.0.0/0"]
  ipv6: ["::/0"]
"""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    members: int  # CAs below the operator's (or registry's) CA
    roas: int  # ROA entries in all
    asns: int  # distinct origin ASNs (per CA for the operator; per member for the registry)
    aspas: int = 0  # ASPAs of the operator's CA, one per customer AS (none for the registry)

    @property
    def description(self) -> str:
        if self.members == 0:
            aspas = f", {self.aspas:,} ASPAs" if self.aspas else ""
            return f"1 CA under a TA, {self.roas:,} ROA entries over {self.asns:,} ASNs{aspas}"
        return f"1 TA, 1 online CA, {self.members:,} member CAs, {self.roas:,} ROA entries"


SCENARIOS = {
    "small": Scenario("small", members=0, roas=50, asns=3),
    "large": Scenario("large", members=0, roas=5_000, asns=300),
    # The large operator's ROAs, and ASPAs for the customers it holds the AS numbers of: a provider set
    # re-signed beside 5,000 ROAs in one CA, on the same manifest and CRL.
    "large-aspa": Scenario("large-aspa", members=0, roas=5_000, asns=300, aspas=1_000),
    "registry": Scenario("registry", members=20_000, roas=150_000, asns=1),
}


def scaled(scenario: Scenario, factor: float) -> Scenario:
    """The same shape with fewer CAs and entries (a registry at a tenth of its size, say)."""
    if factor == 1:
        return scenario
    return Scenario(
        f"{scenario.name}@{factor:g}",
        members=max(1, round(scenario.members * factor)) if scenario.members else 0,
        roas=max(1, round(scenario.roas * factor)),
        asns=scenario.asns if scenario.members else max(1, round(scenario.asns * factor)),
        aspas=max(1, round(scenario.aspas * factor)) if scenario.aspas else 0,
    )


def _v4(base: ipaddress.IPv4Network, index: int, length: int) -> ipaddress.IPv4Network:
    size = 1 << (32 - length)
    return ipaddress.IPv4Network((int(base.network_address) + index * size, length))


def _v6(base: ipaddress.IPv6Network, index: int, length: int) -> ipaddress.IPv6Network:
    size = 1 << (128 - length)
    return ipaddress.IPv6Network((int(base.network_address) + index * size, length))


def _entries(
    rng: random.Random, count: int, asns: list[int], v4: ipaddress.IPv4Network, v6: ipaddress.IPv6Network
) -> Iterator[str]:
    """``count`` ROA entries, two thirds IPv4 /24s, a third IPv6 /48s, over ``asns`` (a few ASNs
    originate most prefixes, as in real networks)."""
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(asns))]
    origins = rng.choices(asns, weights=weights, k=count)
    for index, asn in enumerate(origins):
        if index % 3 == 2:
            prefix = str(_v6(v6, index // 3, 48))
            yield f'  - {{asn: AS{asn}, prefix: "{prefix}"}}\n'
        else:
            prefix = str(_v4(v4, index - index // 3, 24))
            yield f"  - {{asn: AS{asn}, prefix: {prefix}}}\n"


#: The ASPAs' customer ASes, a range the operator's CA holds besides its origins: 1,000 numbers from here.
CUSTOMERS = 4_200_100_000
#: The provider a one-ASPA change adds: no generated ASPA lists it, so each change finds a fresh one.
ADDED_PROVIDER = 4_200_099_999


def _aspas(rng: random.Random, count: int) -> Iterator[str]:
    """``count`` ASPAs, one per customer AS from :data:`CUSTOMERS`, each with 1 to 4 providers out of 60
    transit ASes (a few carry most customers), in the order an operator might write them (not sorted)."""
    transits = [64_512 + rank for rank in range(60)]
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(transits))]
    for index in range(count):
        providers: list[int] = []
        wanted = rng.randint(1, 4)
        while len(providers) < wanted:
            provider = rng.choices(transits, weights=weights)[0]
            if provider not in providers:
                providers.append(provider)
        provider_list = ", ".join(f"AS{p}" for p in providers)
        yield f"  - {{customer: AS{CUSTOMERS + index}, providers: [{provider_list}]}}\n"


def _ca(
    name: str,
    parent: str,
    asns: list[int],
    v4: str,
    v6: str,
    *,
    entries: list[str],
    aspas: list[str] | None = None,
) -> str:
    customers = [f'"{CUSTOMERS}-{CUSTOMERS + len(aspas) - 1}"'] if aspas else []
    asn_list = ", ".join([f"AS{a}" for a in asns] + customers)
    head = (
        f'name: {name}\nparent: {parent}\nresources:\n  asn: [{asn_list}]\n  ipv4: [{v4}]\n  ipv6: ["{v6}"]\n'
    )
    roas = "roas:\n" + "".join(entries) if entries else ""
    return head + roas + ("aspas:\n" + "".join(aspas) if aspas else "")


def write(scenario: Scenario, root: Path, *, seed: int = 7) -> Path:
    """Write the scenario's desired-state directory under ``root``; return it. Keys and the publication
    go beside it, as in the bundled example."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets: the same data every run
    repo = root / "state"
    cas = repo / "cas"
    (cas / "members").mkdir(parents=True)
    (repo / "rpki.yaml").write_text(SETTINGS.format(published=root / "published", keys=root / "keys"))
    (cas / "ta.yaml").write_text(TRUST_ANCHOR)
    if scenario.members == 0:
        asns = [64_496 + i if i < 16 else 4_200_000_000 + i for i in range(scenario.asns)]
        v4, v6 = ipaddress.IPv4Network("10.0.0.0/8"), ipaddress.IPv6Network("2001:db8::/32")
        entries = list(_entries(rng, scenario.roas, asns, v4, v6))
        aspas = list(_aspas(rng, scenario.aspas))  # after the ROAs: the same ROAs with ASPAs as without
        (cas / "operator.yaml").write_text(
            _ca("operator", "ta", asns, str(v4), str(v6), entries=entries, aspas=aspas)
        )
        return repo
    # The registry: an online CA holding 32.0.0.0/3 and 2400::/6; each member a /20 and a /32.
    (cas / "online.yaml").write_text(
        'name: online\nparent: ta\nresources:\n  asn: ["4200000000-4294967295"]\n'
        '  ipv4: ["32.0.0.0/3"]\n  ipv6: ["2400::/6"]\n'
    )
    v4_block, v6_block = ipaddress.IPv4Network("32.0.0.0/3"), ipaddress.IPv6Network("2400::/6")
    per_member = [scenario.roas // scenario.members] * scenario.members
    for index in range(scenario.roas % scenario.members):
        per_member[index] += 1
    for index, count in enumerate(per_member):
        v4, v6 = _v4(v4_block, index, 20), _v6(v6_block, index, 32)
        asns = [4_200_000_000 + index * 2, 4_200_000_000 + index * 2 + 1][: max(1, scenario.asns)]
        # at most 16 /24s fit a /20: beyond that, the /20 itself and its /21s..., kept simple by /24s
        entries = list(_entries(rng, count, asns, v4, _v6(v6, 0, 40)))
        (cas / "members" / f"m{index:05d}.yaml").write_text(
            _ca(f"m{index:05d}", "online", asns, str(v4), str(v6), entries=entries)
        )
    return repo


def change_one_roa(repo: Path) -> str:
    """Edit one ROA entry (its max length) in the busiest CA file, as an operator's pull request would;
    return a description."""
    files = sorted((repo / "cas").rglob("*.yaml"), key=lambda p: p.stat().st_size)
    target = files[-1]
    lines = target.read_text().splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("  - {asn:") and "max_length" not in line and "/24" in line:
            lines[index] = line.replace("}", ", max_length: 25}")
            target.write_text("".join(lines))
            return f"{target.name}: {line.strip()} -> max_length 25"
    raise ValueError(f"no IPv4 /24 entry to change in {target}")


def change_one_aspa(repo: Path) -> str:
    """Add a provider (:data:`ADDED_PROVIDER`) to one ASPA in the busiest CA file, the first that does not
    list it yet, as an operator's pull request would when a customer takes on a new transit; return a
    description."""
    files = sorted((repo / "cas").rglob("*.yaml"), key=lambda p: p.stat().st_size)
    target = files[-1]
    lines = target.read_text().splitlines(keepends=True)
    added = f"AS{ADDED_PROVIDER}"
    for index, line in enumerate(lines):
        if line.startswith("  - {customer:") and added not in line:
            lines[index] = line.replace("]}", f", {added}]}}")
            target.write_text("".join(lines))
            return f"{target.name}: {line.strip()} -> provider {added} added"
    raise ValueError(f"no ASPA without {added} to change in {target}")
