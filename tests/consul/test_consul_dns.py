"""Consul's DNS interface answers SRV queries with the passing instances only.

The instances of one service from the inputs are registered with a TTL check in place of
their own (whose targets do not exist here), so the test decides each instance's health
through the agent's API; Consul's DNS must follow, with each instance's address, port and
passing weight.
"""

from __future__ import annotations

import copy
import ipaddress
from collections import Counter

import dns.message
import dns.query
import dns.rdatatype
from consul_agent import LOOPBACK, ConsulAgent
from consul_inputs import ConsulInputs, JsonObject, register_through_api, wait_for

# (address, port, SRV weight) of one instance as DNS reports it
Instance = tuple[str, int, int]


def _with_ttl_check(definition: JsonObject) -> JsonObject:
    changed = copy.deepcopy(definition)
    changed.pop("Check", None)
    changed["Checks"] = [
        {"CheckID": _check_id(definition), "Name": "health set by the test", "TTL": "10m"}
    ]
    return changed


def _check_id(definition: JsonObject) -> str:
    return f"ttl-{definition['ID']}"


def _expected(definition: JsonObject) -> Instance:
    address = str(ipaddress.ip_address(definition["Address"]))
    return address, definition["Port"], definition.get("Weights", {}).get("Passing", 1)


def srv_instances(agent: ConsulAgent, service: str) -> set[Instance]:
    """What Consul's DNS answers for ``<service>.service.consul`` SRV, targets resolved."""
    query = dns.message.make_query(f"{service}.service.consul.", dns.rdatatype.SRV)
    response = dns.query.tcp(query, LOOPBACK, port=agent.ports.dns, timeout=2.0)
    addresses = {
        rrset.name: str(ipaddress.ip_address(record.address))
        for rrset in response.additional
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
        for record in rrset
    }
    return {
        (addresses.get(record.target, f"unresolved {record.target}"), record.port, record.weight)
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.SRV
        for record in rrset
    }


def _services_with_several_instances(inputs: ConsulInputs) -> list[list[JsonObject]]:
    counts = Counter(d["Name"] for d in inputs.definitions())
    several = [
        [d for d in inputs.definitions() if d["Name"] == n] for n, c in counts.items() if c > 1
    ]
    assert several, f"{inputs.label}: no service with two instances to tell apart"
    return several


def test_dns_srv_lists_passing_instances_only(
    consul_agent: ConsulAgent, consul_inputs: ConsulInputs
) -> None:
    for instances in _services_with_several_instances(consul_inputs):
        _check_srv_follows_health(consul_agent, instances)


def _check_srv_follows_health(consul_agent: ConsulAgent, instances: list[JsonObject]) -> None:
    name = instances[0]["Name"]
    client = consul_agent.client
    for definition in instances:
        register_through_api(client, _with_ttl_check(definition))

    def settle(
        passing: list[JsonObject], critical: list[JsonObject], warning: list[JsonObject]
    ) -> None:
        for d in passing:
            client.agent.check.ttl_pass(_check_id(d))
        for d in critical:
            client.agent.check.ttl_fail(_check_id(d))
        for d in warning:
            client.agent.check.ttl_warn(_check_id(d))
        expected = {_expected(d) for d in passing}
        wait_for(lambda: srv_instances(consul_agent, name) == expected, timeout=10.0)
        assert srv_instances(consul_agent, name) == expected, f"{name}: SRV answer"

    first, second, *rest = instances
    # Warning counts as not passing: the fixture's agent sets dns_config.only_passing.
    settle(passing=[first], critical=[second], warning=rest)
    settle(passing=[second], critical=[first, *rest], warning=[])
    settle(passing=instances, critical=[], warning=[])
    settle(passing=[], critical=instances, warning=[])
