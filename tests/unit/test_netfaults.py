"""`level: net` faults as packet rules (coordinator/netfaults.py) and their nft text
(coordinator/engine/netns.py's `render_rules`): pure, no namespace is made."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from coordinator.engine.netns import Network, render_rules
from coordinator.faultspec import parse_fault, to_packet_rules
from coordinator.netfaults import PacketRule, nft_comment

KNOWN = ["coordinator", "node-1", "node-2", "node-3"]


def rules(body: dict[str, object]) -> list[PacketRule]:
    return to_packet_rules(parse_fault(body), "f", KNOWN)


def test_a_black_hole_cuts_both_halves_of_the_callers_connection() -> None:
    got = rules({"link": {"action": "blackhole", "from": "node-1", "to": "node-2", "level": "net"}})
    assert got == [
        PacketRule("f", "node-1", "node-2", "drop", "dst"),
        PacketRule("f", "node-2", "node-1", "drop", "src"),
    ]


def test_disconnect_resets_and_drop_request_cuts_the_requests_only() -> None:
    reset = rules({"link": {"action": "disconnect", "to": "node-2", "level": "net"}})
    assert {r.verdict for r in reset} == {"reset"}
    assert {(r.src, r.dst) for r in reset if r.port == "dst"} == {
        ("coordinator", "node-2"),
        ("node-1", "node-2"),
        ("node-3", "node-2"),
    }
    lost = rules(
        {"link": {"action": "drop_request", "from": "node-1", "to": "node-2", "level": "net"}}
    )
    assert lost == [PacketRule("f", "node-1", "node-2", "drop", "dst")]


def test_loss_and_one_way_partitions() -> None:
    loss = rules(
        {"link": {"action": "loss", "p": 0.25, "to": "node-3", "both_ways": True, "level": "net"}}
    )
    assert {r.p for r in loss} == {0.25}
    assert ("node-3", "node-1", "dst") in {(r.src, r.dst, r.port) for r in loss}  # both ways
    one_way = rules({"partition": {"groups": [["node-1"]], "direction": "one-way", "level": "net"}})
    assert {(r.src, r.dst) for r in one_way} == {
        ("node-1", "coordinator"),
        ("node-1", "node-2"),
        ("node-1", "node-3"),
    }
    assert {r.port for r in one_way} == {None}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"link": {"action": "drop_response", "level": "net"}}, "handshake"),
        ({"link": {"action": "delay", "latency": "1s", "level": "net"}}, "netem"),
        ({"link": {"action": "blackhole", "methods": "ListTasks", "level": "net"}}, "one TCP"),
        ({"slow": {"node": "node-1", "latency": "1s", "level": "net"}}, "netem"),
        (
            {"partition": {"groups": [["node-1"]], "methods": "ListTasks", "level": "net"}},
            "one TCP",
        ),
        ({"link": {"action": "blackhole", "level": "ip"}}, "transport"),
    ],
)
def test_what_packets_cannot_say_is_refused(body: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        parse_fault(body)


def test_rules_land_where_the_packets_arrive_and_never_in_the_machines_namespace() -> None:
    net = Network("abc123", ipaddress.IPv4Network("10.213.7.0/24"), ["node-1", "node-2"])
    ports = {"coordinator": 40000, "node-1": 9300, "node-2": 9300}
    got = render_rules(
        [
            PacketRule("a", "coordinator", "node-1", "drop", "dst"),
            PacketRule("a", "node-1", "coordinator", "drop", "src"),
            PacketRule("b b", "node-2", "node-1", "reset", None, 0.5),
        ],
        net,
        "coordinator",
        ports,
    )
    assert got == {
        "tsim-abc123-n1": [
            "add rule inet tasksim input ip saddr 10.213.7.1 ip daddr 10.213.7.2 tcp dport 9300 "
            'counter drop comment "tasksim:a"',
            "add rule inet tasksim output ip saddr 10.213.7.2 ip daddr 10.213.7.1 tcp sport 9300 "
            'counter drop comment "tasksim:a"',
            "add rule inet tasksim input ip saddr 10.213.7.3 ip daddr 10.213.7.2 numgen random "
            "mod 1000 < 500 counter meta l4proto tcp tcp flags & rst == 0 reject with tcp reset "
            f"comment {nft_comment('b b')}",
        ],
        "tsim-abc123-n2": [],
    }
    # The answers to the coordinating node are cut where they leave node-1 (its output): the
    # machine's own namespace never gets a rule.
    assert nft_comment("b b").startswith('"tasksim:') and " " not in nft_comment("b b")[1:-1]
    assert net.control_address_of("node-1") == "10.213.7.130"  # no rule names it


def test_the_history_names_what_a_net_fault_cuts_as_the_checkers_read_it() -> None:
    from coordinator.history.checkers import _involved

    got = rules({"link": {"action": "blackhole", "from": "node-1", "to": "node-2", "level": "net"}})
    event = {"type": "fault_start", "fault": "f", "rules": [r.to_json() for r in got]}
    assert _involved(event) == ["node-1", "node-2"]
    assert got[0].to_json() == {
        "id": "f",
        "action": "drop",
        "from": ["node-1"],
        "to": ["node-2"],
        "packets": "to node-2's transport port",
    }


def test_without_root_or_capabilities_netns_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from coordinator.engine import netns

    monkeypatch.setattr(netns.shutil, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(netns, "effective_capabilities", lambda: 0)
    assert netns.netns_problem() == (
        "--hosts netns needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces"
    )
    both = (1 << netns.CAP_NET_ADMIN) | (1 << netns.CAP_SYS_ADMIN)
    monkeypatch.setattr(netns, "effective_capabilities", lambda: both)
    assert netns.netns_problem() is None  # not root, but allowed
    monkeypatch.setattr(netns.shutil, "which", lambda tool: None if tool == "nft" else tool)
    assert (
        netns.netns_problem() == "--hosts netns needs the 'nft' command (Debian package nftables)"
    )


def test_sixty_four_nodes_fit_the_names_and_the_subnet() -> None:
    names = [f"node-{i}" for i in range(1, 65)]
    net = Network("abcdef", ipaddress.IPv4Network("10.213.9.0/24"), names)
    addresses = [net.address(0)] + [net.address_of(n) for n in names]
    addresses += [net.control_address_of(n) for n in names]
    assert len(set(addresses)) == 1 + 2 * 64
    assert all(ipaddress.ip_address(a) in net.subnet for a in addresses)
    assert "10.213.9.255" not in addresses and "10.213.9.0" not in addresses
    assert max(len(n) for n in [*net.namespaces, net.uplink]) <= 15  # a link name's limit
