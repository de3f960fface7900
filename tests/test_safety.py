"""The plan guard and key safety, driven by octoDNS's own Manager into a
YamlProvider target (and PowerDNS, in test_safety_pdns below): each
destructive situation is refused with a message naming the record and how to
acknowledge it, and the acknowledged version is applied."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from octodns.manager import Manager

from octodns_mailauth.acknowledge import ACK_ENV, AckError, env_acks, parse_ack
from octodns_mailauth.dkim.rotation import KeyStatus, RotatedKey, RotationState
from octodns_mailauth.errors import MailAuthProcessorError
from octodns_mailauth.integration.guard import PlanChange, review

CONFIG = "zones/config-yaml.yaml"
ED_P = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
ED_P2 = "GkW3ehXuC4QqZ1Uu+dEW9sgzXwp4pObVYV42z38qvks="


@pytest.fixture
def yaml_target(example: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example with a YamlProvider as the target (zones/published)."""
    config = yaml.safe_load(Path("zones/config.yaml").read_text())
    config["providers"]["published"] = {
        "class": "octodns.provider.yaml.YamlProvider",
        "directory": "./zones/published",
        "default_ttl": 3600,
        "enforce_order": False,
    }
    for zone in config["zones"].values():
        zone["targets"] = ["published"]
    Path(CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.delenv(ACK_ENV, raising=False)
    return example


def sync(doit: bool = True) -> int:
    return Manager(CONFIG).sync(dry_run=not doit)


def published(zone: str) -> dict[str, Any]:
    path = Path(f"zones/published/{zone}.yaml")
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def txt(zone: str, name: str) -> list[str]:
    entry = published(zone).get(name)
    entries = entry if isinstance(entry, list) else [entry] if entry else []
    out = []
    for e in entries:
        if e["type"] == "TXT":
            out += e.get("values") or [e["value"]]
    return [v.replace("\\;", ";") for v in out]


def edit(path: str, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(Path(path).read_text()) or {}
    change(data)
    if "/config/" in path:  # the YamlProvider source enforces sorted names
        data = dict(sorted(data.items()))
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def refused(match: str) -> str:
    with pytest.raises(MailAuthProcessorError) as info:
        sync()
    text = str(info.value)
    assert match in text, text
    assert "nothing was applied" in text
    return text


def keyfiles() -> list[str]:
    root = Path("zones/.dkim")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.pem")) if root.exists() else []


# --- DKIM -----------------------------------------------------------------------------------


def test_deleting_a_published_selector_is_refused_then_acknowledged(yaml_target: Path) -> None:
    sync()
    assert txt("example.com", "relay2026a._domainkey")

    def drop(d: dict) -> None:  # type: ignore[type-arg]
        relay = next(s for s in d["senders"] if s["name"] == "relay")
        relay["dkim"] = [k for k in relay["dkim"] if k["selector"] != "relay2026a"]

    edit("zones/mail/example.com.yaml", drop)
    text = refused("relay2026a._domainkey.example.com TXT: deletes DKIM selector relay2026a")
    assert '"dkim-delete relay2026a._domainkey"' in text  # what to write in the policy
    assert f'{ACK_ENV}="dkim-delete relay2026a._domainkey.example.com"' in text
    assert txt("example.com", "relay2026a._domainkey")  # nothing applied
    edit(
        "zones/mail/example.com.yaml",
        lambda d: d.update(acknowledge=["dkim-delete relay2026a._domainkey"]),
    )
    assert sync() == 1  # the selector goes
    assert not txt("example.com", "relay2026a._domainkey")
    assert sync() == 0


def test_fresh_clone_never_replaces_a_served_key(
    yaml_target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keystore is git-ignored: a new clone has none.  The first sync must not
    silently publish a new key for a selector the zone serves, nor write keys."""
    sync()
    served = txt("example.com", "relay2026a._domainkey")
    old = sorted(keyfiles())
    for pem in Path("zones/.dkim").rglob("*.pem"):
        pem.unlink()
    # Planning only: refused, and no private key written.
    with pytest.raises(MailAuthProcessorError) as info:
        sync(doit=False)
    text = str(info.value)
    assert "relay2026a._domainkey.example.com TXT: DKIM selector relay2026a is already" in text
    assert "restore the keystore from backup" in text
    assert "or move to a new selector" in text
    assert keyfiles() == []
    refused("restore the keystore from backup")
    assert keyfiles() == [] and txt("example.com", "relay2026a._domainkey") == served
    # Deliberately replacing the keys (the old ones are truly lost): one run's acknowledgement.
    names = [f"{s}._domainkey.example.com" for s in ("relay2026a", "relay2026r")]
    names += ["mx2026._domainkey.shop.example", "mx2026r._domainkey.shop.example"]
    monkeypatch.setenv(ACK_ENV, ",".join(f"dkim-key-change {n}" for n in names))
    assert sync() == 4  # example.net's keys rotate: published from the state, not the keystore
    assert keyfiles() == old  # written by the applying run, same selectors
    assert txt("example.com", "relay2026a._domainkey") != served
    monkeypatch.delenv(ACK_ENV)
    assert sync() == 0


def test_a_plan_writes_no_private_key_and_the_applying_run_does(yaml_target: Path) -> None:
    assert sync(doit=False) == 0  # dry run: nothing applied...
    assert keyfiles() == []  # ...and no key written
    sync()
    files = keyfiles()
    assert files == ["example.com/relay2026a.pem", "example.com/relay2026r.pem"] + [
        f for f in files if f.startswith(("example.net", "shop"))
    ]
    from octodns_mailauth.dkim.keys import public_key_b64
    from octodns_mailauth.dkim.keystore import Keystore

    key = Keystore("zones/.dkim").load("example.com", "relay2026a")
    assert f"p={public_key_b64(key)}" in txt("example.com", "relay2026a._domainkey")[0]


def test_keys_are_written_only_for_plans_octodns_applies(yaml_target: Path) -> None:
    from octodns.manager import ManagerException

    # A checksum that does not match: octoDNS applies nothing, so no key is written.
    edit(CONFIG, lambda d: d["manager"].update({"enable_checksum": True}))
    with pytest.raises(ManagerException, match="does not match"):
        Manager(CONFIG).sync(dry_run=False, checksum="0" * 64)
    assert keyfiles() == []

    # An always-dry-run zone is planned but never applied: its keys stay unwritten,
    # while the zones octoDNS applies get theirs.
    def always_dry_run(d: dict) -> None:  # type: ignore[type-arg]
        d["manager"]["enable_checksum"] = False
        d["zones"]["example.com."]["always-dry-run"] = True

    edit(CONFIG, always_dry_run)
    assert sync() > 0
    files = keyfiles()
    assert files and not [f for f in files if f.startswith("example.com/")], files
    assert published("example.com") == {}


def test_unscheduled_revocation_is_refused_and_a_scheduled_one_passes() -> None:
    name = "relay-20260101-ed._domainkey.example.com"
    change = PlanChange(
        name, "TXT", (f"v=DKIM1; k=ed25519; p={ED_P}",), ("v=DKIM1; k=ed25519; p=",)
    )
    [refusal] = review([change])
    assert refusal.change == "dkim-revoke" and "does not revoke" in refusal.why
    state = RotationState(
        "dkim-state.yaml",
        (
            RotatedKey(
                "example.com",
                "relay",
                "relay-20260101-ed",
                "ed25519",
                KeyStatus.REVOKED,
                ED_P,
                __import__("datetime").datetime(2026, 1, 1),
            ),
        ),
    )
    assert review([change], state) == []
    # Deleting a revoked selector (the end of a rotation) strands nobody.
    assert review([PlanChange(name, "TXT", ("v=DKIM1; k=ed25519; p=",), None)]) == []
    # A new key at a published selector, whatever the source.
    other = PlanChange(name, "TXT", (f"k=ed25519; p={ED_P}",), (f"v=DKIM1; k=ed25519; p={ED_P2}",))
    assert [r.change for r in review([other])] == ["dkim-key-change"]
    # Same key, other tags (t=y, h=): not destructive.
    same = PlanChange(
        name, "TXT", (f"v=DKIM1; k=ed25519; p={ED_P}",), (f"v=DKIM1; k=ed25519; t=y; p={ED_P}",)
    )
    assert review([same]) == []


def test_hand_written_dkim_key_revoked_in_the_source_is_refused(yaml_target: Path) -> None:
    record = {"type": "TXT", "value": f"v=DKIM1\\; k=ed25519\\; p={ED_P}"}
    edit("zones/config/example.com.yaml", lambda d: d.update({"old._domainkey": record}))
    sync()
    revoked = {"type": "TXT", "value": "v=DKIM1\\; k=ed25519\\; p="}
    edit("zones/config/example.com.yaml", lambda d: d.update({"old._domainkey": revoked}))
    refused("old._domainkey.example.com TXT: empties p= at DKIM selector old")
    edit(
        "zones/mail/example.com.yaml",
        lambda d: d.update(acknowledge=["dkim-revoke old._domainkey"]),
    )
    assert sync() == 1
    assert txt("example.com", "old._domainkey") == ["v=DKIM1; k=ed25519; p="]


# --- DMARC ----------------------------------------------------------------------------------


def test_deleting_dmarc_is_refused_then_acknowledged(yaml_target: Path) -> None:
    sync()
    edit("zones/mail/example.com.yaml", lambda d: d.pop("dmarc"))
    refused(
        "_dmarc.example.com TXT: deletes the DMARC record: receivers stop applying p=quarantine"
    )
    edit("zones/mail/example.com.yaml", lambda d: d.update(acknowledge=["dmarc-delete _dmarc"]))
    sync()
    assert txt("example.com", "_dmarc") == []


def test_lowering_dmarc_enforcement_is_refused_then_acknowledged(yaml_target: Path) -> None:
    sync()
    edit("zones/mail/example.com.yaml", lambda d: d["dmarc"].update(policy="none"))
    text = refused("lowers DMARC enforcement: p quarantine -> none, sp quarantine -> none")
    assert '"dmarc-weaken _dmarc"' in text
    edit("zones/mail/example.com.yaml", lambda d: d.update(acknowledge=["dmarc-weaken _dmarc"]))
    sync()
    assert txt("example.com", "_dmarc")[0].startswith("v=DMARC1; p=none")


@pytest.mark.parametrize(
    ("old", "new", "lowered"),
    [
        ("p=reject", "p=quarantine", "p reject -> quarantine"),
        ("p=reject; sp=reject", "p=reject; sp=none", "sp reject -> none"),
        ("p=reject; np=reject", "p=reject", None),  # np defaults to sp, to p: still reject
        (
            "p=reject; sp=quarantine; np=reject",
            "p=reject; sp=quarantine",
            "np reject -> quarantine",
        ),
        ("p=reject; pct=100", "p=reject; pct=10", "pct 100 -> 10"),
        ("p=reject", "p=reject; t=y", "t=y"),
        ("p=none", "p=quarantine", None),
        ("p=quarantine; pct=50", "p=quarantine", None),
    ],
)
def test_dmarc_enforcement_order(old: str, new: str, lowered: str | None) -> None:
    change = PlanChange("_dmarc.example.com", "TXT", (f"v=DMARC1; {old}",), (f"v=DMARC1; {new}",))
    found = review([change])
    if lowered is None:
        assert found == []
    else:
        assert [r.change for r in found] == ["dmarc-weaken"] and lowered in found[0].why


# --- SPF ------------------------------------------------------------------------------------


ALL_V4_SPLITS = [
    " ".join(f"ip4:{i}.0.0.0/8" for i in range(256)),
    "ip4:0.0.0.0/1 ip4:128.0.0.0/1",
    "ip4:0.0.0.0/0",
    "a/0",
    "+all",
]


@pytest.mark.parametrize("terms", ALL_V4_SPLITS, ids=["256x/8", "2x/1", "/0", "a/0", "+all"])
def test_spf_letting_everyone_pass_is_refused_in_any_split(terms: str) -> None:
    change = PlanChange("bounce.example.com", "TXT", None, (f"v=spf1 {terms} -all",))
    [refusal] = review([change])
    assert refusal.change == "spf-pass-all" and "every host" in refusal.why


def test_spf_everyone_through_an_include_is_refused() -> None:
    from static_resolver import StaticResolver

    lock = StaticResolver({("wide.example.net", "TXT"): ["v=spf1 ip6:::/1 ip6:8000::/1 -all"]})
    change = PlanChange("example.com", "TXT", None, ("v=spf1 include:wide.example.net -all",))
    assert [r.change for r in review([change], resolver=lock)] == ["spf-pass-all"]
    assert "all of IPv6 (2 ranges in all)" in review([change], resolver=lock)[0].why


def test_hand_written_pass_all_spf_is_refused_then_acknowledged(yaml_target: Path) -> None:
    sync()
    halves = {"type": "TXT", "value": "v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 -all"}
    edit("zones/config/example.com.yaml", lambda d: d.update({"legacy": halves}))
    refused("legacy.example.com TXT: publishes SPF that lets every host pass")
    edit("zones/mail/example.com.yaml", lambda d: d.update(acknowledge=["spf-pass-all legacy"]))
    assert sync() == 1


def test_emptied_policy_is_refused_at_the_plan(yaml_target: Path) -> None:
    """The parse side refuses an empty file; a policy removed (or reduced to
    nothing) reaches the plan, which must not delete DKIM and DMARC."""
    sync()
    os.remove("zones/mail/example.net.yaml")
    text = refused("refusing the plan for example.net.")
    assert "_dmarc.example.net TXT: deletes the DMARC record" in text
    assert "._domainkey.example.net TXT: deletes DKIM selector" in text
    assert "example.net TXT: deletes the SPF record, which authorised senders" in text
    assert published("example.net")  # untouched


def test_acknowledgements_are_checked_words() -> None:
    assert parse_ack("dkim-delete old._domainkey", "example.com") == (
        "dkim-delete",
        "old._domainkey.example.com",
    )
    assert parse_ack("dmarc-weaken @", "example.com") == ("dmarc-weaken", "example.com")
    assert parse_ack("dmarc-weaken _dmarc.example.com", "example.com")[1] == "_dmarc.example.com"
    for bad in ("dkim-delete", "dkim-destroy x", "dkim-delete a b", "dkim-delete bad..name"):
        with pytest.raises(AckError):
            parse_ack(bad, "example.com")
    with pytest.raises(AckError, match=ACK_ENV):
        env_acks({ACK_ENV: "dkim-delete @"})
    assert env_acks({ACK_ENV: "dkim-delete a.example.com,\n spf-remove example.com"}) == [
        ("dkim-delete", "a.example.com"),
        ("spf-remove", "example.com"),
    ]


def test_bad_acknowledgement_in_a_policy_is_a_load_error(yaml_target: Path) -> None:
    edit("zones/mail/example.com.yaml", lambda d: d.update(acknowledge=["dkim-remove old"]))
    with pytest.raises(MailAuthProcessorError, match="unknown change 'dkim-remove'"):
        Manager(CONFIG)


# --- PowerDNS -------------------------------------------------------------------------------


@pytest.mark.pdns
def test_guard_against_powerdns(example: Path, pdns: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same guard with octoDNS's PowerDNS provider as the target, checked over DNS."""
    config = yaml.safe_load(Path("zones/config.yaml").read_text())
    config["providers"]["pdns"] = {
        "class": "octodns_powerdns.PowerDnsProvider",
        **pdns.octodns_provider_config(),
    }
    config["zones"] = {"example.com.": {**config["zones"]["example.com."], "targets": ["pdns"]}}
    for other in ("example.net", "shop.example", "parked.example"):
        os.remove(f"zones/mail/{other}.yaml")
    Path(CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.delenv(ACK_ENV, raising=False)
    if "example.com." in pdns.zone_names():
        pdns.delete_zone("example.com")
    pdns.create_zone("example.com")
    resolver = pdns.resolver()

    def dns_txt(name: str) -> list[str]:
        try:
            return [b"".join(r.strings).decode() for r in resolver.resolve(name, "TXT")]
        except Exception:  # NXDOMAIN / NoAnswer
            return []

    sync()
    assert dns_txt("_dmarc.example.com") == [
        "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"
    ]
    key = dns_txt("relay2026a._domainkey.example.com")
    assert key and "p=" in key[0]

    edit("zones/mail/example.com.yaml", lambda d: d["dmarc"].update(policy="none"))

    def drop(d: dict) -> None:  # type: ignore[type-arg]
        relay = next(s for s in d["senders"] if s["name"] == "relay")
        relay["dkim"] = [k for k in relay["dkim"] if k["selector"] != "relay2026a"]

    edit("zones/mail/example.com.yaml", drop)
    text = refused("_dmarc.example.com TXT: lowers DMARC enforcement: p quarantine -> none")
    assert "relay2026a._domainkey.example.com TXT: deletes DKIM selector relay2026a" in text
    assert dns_txt("_dmarc.example.com")[0].startswith("v=DMARC1; p=quarantine")
    assert dns_txt("relay2026a._domainkey.example.com") == key
    # One of the two acknowledged: still refused, naming only the other.
    monkeypatch.setenv(ACK_ENV, "dmarc-weaken _dmarc.example.com")
    text = refused("relay2026a._domainkey.example.com")
    assert "_dmarc" not in text.split("\n", 1)[1]
    monkeypatch.setenv(
        ACK_ENV, "dmarc-weaken _dmarc.example.com,dkim-delete relay2026a._domainkey.example.com"
    )
    assert sync() == 2
    assert dns_txt("_dmarc.example.com")[0].startswith("v=DMARC1; p=none")
    assert dns_txt("relay2026a._domainkey.example.com") == []
    monkeypatch.delenv(ACK_ENV)
    assert sync() == 0


# --- SPF address space at compile time ------------------------------------------------------


def _compile(text: str, third_party: dict[str, str] | None = None) -> Any:
    from datetime import datetime, timezone

    from octodns_mailauth.catalog import load_catalog
    from octodns_mailauth.compile import compile_policy
    from octodns_mailauth.dns.lockfile import LockEntry, LockResolver, SpfLock
    from octodns_mailauth.policy.loader import parse_policy

    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    lock = SpfLock(Path("spf-lock.json"), refreshed=now)
    for name, answer in (third_party or {}).items():
        lock.entries[name] = LockEntry(now, answers={"TXT": [answer]})
    lp = parse_policy(text, "mail/example.com.yaml", "example.com")
    return compile_policy(lp, load_catalog([]), None, LockResolver(lock), now=now)  # type: ignore[arg-type]


def _pass_all_errors(result: Any) -> list[str]:
    return [f.message for f in result.errors if f.code == "spf-pass-all"]


def test_all_of_ipv4_as_256_slash8_ranges_is_refused() -> None:
    ranges = ", ".join(f"{i}.0.0.0/8" for i in range(256))
    result = _compile(f"senders:\n  - {{name: world, ip4: [{ranges}]}}\n")
    [message] = _pass_all_errors(result)
    assert "lets every host pass: its pass terms cover all of IPv4 (256 ranges in all)" in message
    assert not [r for r in result.records if r.kind == "spf"] or result.errors


def test_flattened_vendor_answer_of_two_halves_is_refused_not_published_as_slash0() -> None:
    vendor = {"halves.example": "v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 -all"}
    result = _compile(
        "senders:\n  - {name: esp, include: [halves.example], flatten: true}\n", vendor
    )
    [message] = _pass_all_errors(result)
    assert (
        "all of IPv4" in message
        and "keep its include" in [f.hint for f in result.errors if f.code == "spf-pass-all"][0]
    )
    # Without flattening the include is kept, and still refused: what it lets pass counts.
    result = _compile("senders:\n  - {name: esp, include: [halves.example]}\n", vendor)
    assert _pass_all_errors(result)


def test_address_ceiling_warns_and_is_configurable() -> None:
    wide = "senders:\n  - {name: cloud, ip4: [10.0.0.0/8, 11.0.0.0/8]}\n"
    result = _compile(wide)
    [warning] = [f for f in result.findings if f.code == "spf-address-ceiling"]
    assert "lets 33,554,432 IPv4 addresses pass" in warning.message and "/8" in warning.message
    assert not result.errors
    result = _compile(wide + "spf: {address_ceiling: {ip4: 7}}\n")
    assert not [f for f in result.findings if f.code == "spf-address-ceiling"]
    narrow = "senders:\n  - {name: relay, ip4: [192.0.2.0/24]}\n"
    assert not [f for f in _compile(narrow).findings if f.code == "spf-address-ceiling"]


def test_an_acknowledgement_left_behind_is_a_warning(
    yaml_target: Path, caplog: pytest.LogCaptureFixture
) -> None:
    edit("zones/mail/example.com.yaml", lambda d: d.update(acknowledge=["dmarc-delete _dmarc"]))
    sync()
    assert txt("example.com", "_dmarc")  # acknowledging is not asking: nothing deleted
    stale = [r.getMessage() for r in caplog.records if "matches no change" in r.getMessage()]
    assert stale == [
        "process_plan: the acknowledgement `dmarc-delete _dmarc.example.com` matches no change "
        "in this plan: remove it"
    ]
