"""Every `hosts: netns` scenario (scenarios/netns/) runs against its own cluster of node processes in
network namespaces, with `level: net` faults, passes, and leaves nothing of its network behind: no
address, route or namespace of its subnet (nftables tables live in the node namespaces and go with
them). Skipped without root or nftables, as every netns test (conftest.py)."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from pathlib import Path

import pytest
import trio

from coordinator.scenario.runner import run_scenario
from coordinator.scenario.schema import collect, load_scenario

ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIOS = collect([ROOT / "scenarios" / "netns"])


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_netns_scenario_passes_and_leaves_nothing_behind(path: Path, tmp_path: Path) -> None:
    scenario = load_scenario(path)
    result = trio.run(lambda: run_scenario(scenario, path, log_dir=tmp_path))
    report = "\n".join(
        [result.error or "", *result.failures, f"repro: {result.repro}"]
        + [f"{s.status:>7} {s.label} {s.detail}" for s in result.steps]
    )
    assert result.status == "passed", report
    assert result.heal is not None and result.heal["acknowledged"], result.heal
    assert result.faults["active"] == []
    assert result.checks["history"]["task_lifecycle"]["status"] == "passed"
    assert result.pids and not any(_alive(pid) for pid in result.pids)
    subnets = {
        ipaddress.ip_network(f"{address.rsplit(':', 1)[0]}/24", strict=False)
        for address in result.addresses.values()
    }
    assert len(subnets) == 1 and not any(s.is_loopback for s in subnets), result.addresses
    assert leftovers(subnets.pop()) == []
    if scenario.name == "netns-blackholed-node-noticed":
        # Noticed by the list's own deadline first, by the follower checks later: an ordering
        # that a loaded machine keeps (both stretch), where exact times would not hold.
        took = {s.label: _elapsed(s.detail) for s in result.steps if "HTTP 200 in" in s.detail}
        with_timeout = took["4. request GET /_tasks?timeout=1s"]
        without = took["3. request [no-timeout] GET /_tasks"]
        assert 0.95 <= with_timeout < without, took


def _elapsed(detail: str) -> float:
    match = re.search(r"HTTP 200 in ([0-9.]+)s", detail)
    assert match is not None, detail
    return float(match.group(1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False).stdout


def leftovers(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """What still holds an address of the cluster's subnet: a link or a route in this namespace,
    or a namespace (its links and nftables tables go with it)."""
    found = [
        f"address {line}" for line in _ip("-o", "addr", "show", "to", str(subnet)).splitlines()
    ]
    found += [f"route {line}" for line in _ip("route", "show", "root", str(subnet)).splitlines()]
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if name and _ip("-n", name, "-o", "addr", "show", "to", str(subnet)).strip():
            found.append(f"namespace {name}")
    return found
