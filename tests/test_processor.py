"""The processor driven by octoDNS's own Manager and commands over zones/."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import dns.zone
import pytest
import yaml
from octodns.manager import Manager
from octodns.record import Record

from octodns_mailauth.dkim.statefile import load_state
from octodns_mailauth.errors import MailAuthProcessorError
from octodns_mailauth.processor import MailAuthProcessor

CONFIG = "zones/config.yaml"
BIN = Path(sys.executable).parent


def sync(doit: bool = True) -> int:
    return Manager(CONFIG).sync(dry_run=not doit)


def served(zone: str) -> dict[tuple[str, str], list[str]]:
    """The zone file the local target wrote, as {(name, type): [text]}; TXT
    strings joined the way resolvers join them (RFC 7208 §3.3)."""
    z = dns.zone.from_file(f"zones/output/{zone}.zone", zone, relativize=False, check_origin=False)
    out: dict[tuple[str, str], list[str]] = {}
    for name, _ttl, rdata in z.iterate_rdatas():
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        if rtype == "SOA":
            continue  # the serial is the time of writing; not a record of ours
        if rtype == "TXT":
            text = b"".join(rdata.strings).decode()
        else:
            text = rdata.to_text()
        out.setdefault((name.to_text().rstrip("."), rtype), []).append(text)
    return out


def edit_yaml(path: str, change) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(Path(path).read_text())
    change(data)
    if "/config/" in path:  # the YamlProvider enforces sorted names
        data = dict(sorted(data.items()))
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def add_reporting_zones(count: int, sender: str) -> list[str]:
    """`count` more zones in the example's zone data, each with a policy whose one
    sender is `sender` (a flow mapping) and whose DMARC reports go to example.com,
    so each places a report authorization in another zone.  Returns their names."""
    extra = [f"z{i:02d}.example" for i in range(count)]
    for zone in extra:
        Path(f"zones/config/{zone}.yaml").write_text("---\n'':\n  type: A\n  value: 192.0.2.7\n")
        Path(f"zones/mail/{zone}.yaml").write_text(
            f"senders:\n  - {sender}\ndmarc: {{policy: reject, rua: [mailto:dmarc@example.com]}}\n"
        )
    return extra


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120
    )


def validate_fails() -> str:
    """What `octodns-validate` runs (octodns/cmds/validate.py), in this process: it must
    stop at the processor's error; its text, as octoDNS prints it last."""
    with pytest.raises(MailAuthProcessorError) as raised:
        Manager(CONFIG).validate_configs()
    return str(raised.value)


def test_sync_publishes_and_second_run_plans_nothing(example: Path) -> None:
    assert sync() == 50
    com = served("example.com")
    spf = com[("example.com", "TXT")]
    assert (
        "v=spf1 ip4:203.0.113.5 ip4:198.51.100.0/28 ip6:2001:db8:25::/64 "
        "include:spf.protection.outlook.com include:sendgrid.net -all" in spf
    )
    # The zone's own TXT values at the apex are kept beside ours.
    assert any(v.startswith("google-site-verification=") for v in spf)
    assert "MS=ms12345678" in spf
    assert com[("_dmarc.example.com", "TXT")] == [
        "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com"
    ]
    assert com[("selector1._domainkey.example.com", "CNAME")] == [
        "selector1-example-com._domainkey.contoso.n-v1.dkim.mail.microsoft."
    ]
    assert com[("relay2026a._domainkey.example.com", "TXT")][0].startswith(
        "v=DKIM1; k=ed25519; p="
    )
    # The records the policy does not own are all still there.
    assert com[("www.example.com", "CNAME")] == ["example.com."]
    assert com[("example.com", "MX")] == ["0 example-com.mail.protection.outlook.com."]
    # example.net reports to example.com: the authorization is in example.com's zone.
    assert com[("example.net._report._dmarc.example.com", "TXT")] == ["v=DMARC1"]
    net = served("example.net")
    assert net[("bounce.example.net", "MX")] == ["10 feedback-smtp.eu-west-1.amazonses.com."]
    assert net[("_dmarc.example.net", "TXT")] == ["v=DMARC1; p=none; rua=mailto:dmarc@example.com"]
    # The committed rotation (zones/dkim-state.yaml): the active pair and the pair
    # published ahead of it, with the state's public keys (no private key here).
    state = load_state("zones/dkim-state.yaml", "zones/mail")
    assert len(state.keys) == 4
    for key in state.keys:
        (value,) = net[(f"{key.selector}._domainkey.example.net", "TXT")]
        assert value == f"v=DKIM1; k={key.algorithm}; p={key.p}"
    assert not Path("zones/.dkim/example.net").exists()
    assert sync() == 0


def test_plan_marks_records_as_coming_from_the_processor(example: Path) -> None:
    result = run("octodns-sync", "--config-file", CONFIG)
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if "Create <" in ln]
    spf = [ln for ln in lines if "v=spf1" in ln]
    assert spf and all(ln.endswith("(mailauth)") for ln in spf)
    assert any("_dmarc.example.com" in ln and ln.endswith("(mailauth)") for ln in lines)
    assert any("www.example.com" in ln and ln.endswith("(config)") for ln in lines)


def test_long_dkim_value_is_split_into_255_octet_strings(example: Path) -> None:
    sync()
    text = Path("zones/output/example.com.zone").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("relay2026r._domainkey"))
    strings = line.split(" TXT ", 1)[1].strip().split('" "')
    assert len(strings) == 2 and all(len(s.strip('"')) <= 255 for s in strings)
    value = served("example.com")[("relay2026r._domainkey.example.com", "TXT")][0]
    assert len(value) > 255 and value.startswith("v=DKIM1; k=rsa; p=MIIB")


def test_keys_are_private_and_never_overwritten(example: Path) -> None:
    sync()
    store = Path("zones/.dkim")
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    keys = sorted(store.glob("*/*.pem"))
    assert [k.name for k in keys] == [
        "relay2026a.pem",
        "relay2026r.pem",
        "mx2026.pem",
        "mx2026r.pem",
    ]
    before = {k: (k.read_bytes(), k.stat().st_mtime_ns) for k in keys}
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    Path("zones/output/example.com.zone").unlink()
    sync()
    assert {k: (k.read_bytes(), k.stat().st_mtime_ns) for k in keys} == before


def test_private_keys_appear_nowhere(example: Path) -> None:
    result = run("octodns-sync", "--config-file", CONFIG, "--doit", "--debug")
    assert result.returncode == 0, result.stderr
    secrets = []
    for pem in Path("zones/.dkim").glob("*/*.pem"):
        body = "".join(pem.read_text().splitlines()[1:-1])
        secrets += [body, body[:40], body[-40:]]
    assert secrets  # keys were generated, so there is something to look for
    haystacks = [result.stdout, result.stderr]
    haystacks += [p.read_text() for p in Path("zones/output").iterdir()]
    proc = Manager(CONFIG).processors["mailauth"]
    haystacks += [repr(proc), repr(proc.keys), str(vars(proc))]
    for secret in secrets:
        for hay in haystacks:
            assert secret not in hay
    assert "PRIVATE KEY" not in "".join(haystacks)


def test_hand_written_spf_is_an_error_naming_both_origins(example: Path) -> None:
    def add_spf(data):  # type: ignore[no-untyped-def]
        data[""][2]["values"].append("v=spf1 include:old.example.net ~all")

    edit_yaml("zones/config/example.com.yaml", add_spf)
    with pytest.raises(MailAuthProcessorError) as info:
        sync()
    text = str(info.value)
    assert "zones/mail/example.com.yaml" in text
    assert "zones/config/example.com.yaml" in text  # where the hand-written one lives
    assert "v=spf1 include:old.example.net ~all" in text
    assert "takeover: true" in text
    assert not Path("zones/output").exists()

    edit_yaml("zones/mail/example.com.yaml", lambda d: d["spf"].update(takeover=True))
    sync()
    spf = served("example.com")[("example.com", "TXT")]
    assert not any("old.example.net" in v for v in spf)
    assert sum(v.startswith("v=spf1") for v in spf) == 1
    assert any(v.startswith("google-site-verification=") for v in spf)


def test_hand_written_dmarc_is_an_error(example: Path) -> None:
    edit_yaml(
        "zones/config/example.com.yaml",
        lambda d: d.update({"_dmarc": {"type": "TXT", "value": "v=DMARC1\\; p=none"}}),
    )
    with pytest.raises(
        MailAuthProcessorError, match="hand-written dmarc value 'v=DMARC1; p=none'"
    ):
        sync()


def test_cname_where_the_zone_has_other_data_is_an_error(example: Path) -> None:
    edit_yaml(
        "zones/config/example.com.yaml",
        lambda d: d.update({"selector1._domainkey": {"type": "TXT", "value": "v=DKIM1\\; p=abc"}}),
    )
    with pytest.raises(MailAuthProcessorError) as info:
        sync()
    text = str(info.value)
    assert "CNAME" in text and "selector1._domainkey.example.com" in text
    assert "sender office (microsoft365)" in text
    # What to do about it: the old key record gives way to the provider's CNAME.
    assert "hint: remove the TXT record at selector1._domainkey from the zone" in text


def test_zone_cname_where_we_need_txt_is_an_error(example: Path) -> None:
    edit_yaml(
        "zones/config/example.com.yaml",
        lambda d: d.update({"_dmarc": {"type": "CNAME", "value": "dmarc.example.org."}}),
    )
    with pytest.raises(MailAuthProcessorError, match="a CNAME must stand alone"):
        sync()


def test_records_the_policy_does_not_manage_are_untouched(example: Path) -> None:
    sync()
    before = served("example.com")
    edit_yaml(
        "zones/mail/example.com.yaml",
        lambda d: d.update(
            senders=[s for s in d["senders"] if s["name"] != "newsletters"],
            # Dropping a sender deletes its DKIM delegations: the plan guard wants it said.
            acknowledge=["dkim-delete s1._domainkey", "dkim-delete s2._domainkey"],
        ),
    )
    assert sync() == 3  # SPF update, two SendGrid CNAMEs deleted
    after = served("example.com")
    gone = set(before) - set(after)
    assert gone == {
        ("s1._domainkey.example.com", "CNAME"),
        ("s2._domainkey.example.com", "CNAME"),
    }
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed == {("example.com", "TXT")}
    assert "include:sendgrid.net" not in " ".join(after[("example.com", "TXT")])


def add_policyless_zone(records: str) -> None:
    """example.org. with `records` (zone-file YAML), running the processor, no policy."""
    Path("zones/config/example.org.yaml").write_text("---\n" + records)
    edit_yaml(
        CONFIG,
        lambda d: d["zones"].update(
            {
                "example.org.": {
                    "sources": ["config"],
                    "processors": ["mailauth"],
                    "targets": ["local"],
                }
            }
        ),
    )


def test_zone_without_policy_is_left_as_is(example: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    add_policyless_zone("'':\n  type: A\n  value: 192.0.2.9\n")
    with caplog.at_level(logging.INFO):
        sync()
    assert "no mail policy for example.org, zone left as is" in caplog.text
    assert ("example.org", "TXT") not in served("example.org")
    assert "has MX records" not in caplog.text  # no MX: no warning


def test_zone_with_mx_and_no_policy_is_a_warning(example: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    add_policyless_zone("'':\n  type: MX\n  value: {exchange: mx.example.org., preference: 10}\n")
    with caplog.at_level(logging.INFO):
        sync()
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "example.org has MX records" in r.getMessage()
    ]
    assert len(warned) == 1
    assert "octodns-mailauth init example.org" in warned[0]


def test_policy_for_a_zone_not_in_the_config_fails_validate(example: Path) -> None:
    Path("zones/mail/example.org.yaml").write_text(
        "dmarc: {policy: none, rua: [mailto:a@example.org]}\n"
    )
    error = validate_fails()
    assert "policy for example.org but no zone in the octoDNS config contains it" in error
    assert "zones/mail/example.org.yaml:1" in error


@pytest.mark.parametrize(
    "policy, expected",
    [
        (
            "senders:\n  - name: a\n    ip4: [1.2.3.999]\n",
            "example.com.yaml:3: error: '1.2.3.999'",
        ),
        ("senders:\n  - name: a\n    provider: sendgird\n", "unknown provider 'sendgird'"),
        ("senders:\n  - {name: a, provider: microsoft365}\n", "needs parameter 'tenant'"),
        (
            "senders:\n  - {name: a, provider: microsoft365, tenant: x, tennant: y}\n",
            "unknown key 'tennant'",
        ),
        ("dmarc: {policy: strict}\n", "'strict' is not allowed"),
        ("senders: [\n", "YAML syntax error"),
        (
            "senders:\n  - name: a\n    dkim: {selector: 'x y', algorithm: ed25519}\n",
            "not a valid DKIM selector",
        ),
    ],
)
def test_bad_policy_fails_sync_and_validate_writing_nothing(
    example: Path, policy: str, expected: str
) -> None:
    """In this process, as each command runs it (the installed commands: below)."""
    Path("zones/mail/example.com.yaml").write_text(policy)
    assert expected in validate_fails()
    with pytest.raises(MailAuthProcessorError) as raised:
        sync(doit=True)
    assert expected in str(raised.value)
    assert not Path("zones/output").exists()
    assert not Path("zones/.dkim").exists()


def test_bad_policy_fails_the_installed_commands(example: Path) -> None:
    Path("zones/mail/example.com.yaml").write_text(
        "senders:\n  - name: a\n    provider: sendgird\n"
    )
    for cmd in ("octodns-validate", "octodns-sync"):
        args = [cmd, "--config-file", CONFIG] + (["--doit"] if cmd == "octodns-sync" else [])
        result = run(*args)
        assert result.returncode != 0, cmd
        assert "unknown provider 'sendgird'" in result.stderr, result.stderr
        assert "MailAuthProcessorError" in result.stderr  # octoDNS prints the class
    assert not Path("zones/output").exists()
    assert not Path("zones/.dkim").exists()


def test_missing_keystore_parent_is_a_clear_error(example: Path) -> None:
    edit_yaml(CONFIG, lambda d: d["processors"]["mailauth"].update(keys="./nowhere/.dkim"))
    assert (
        "DKIM keystore nowhere/.dkim cannot be created: its parent folder nowhere does not exist"
        in validate_fails()
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_keystore_is_a_clear_error(example: Path) -> None:
    store = Path("zones/.dkim")
    store.mkdir(mode=0o700)
    store.chmod(0)
    try:
        result = run("octodns-validate", "--config-file", CONFIG)
    finally:
        store.chmod(0o700)
    assert result.returncode != 0 and "keystore" in result.stderr


def test_wide_keystore_permissions_are_refused(example: Path) -> None:
    store = Path("zones/.dkim")
    store.mkdir()
    store.chmod(0o755)
    error = validate_fails()
    assert "chmod 700" in error or "0700" in error


def test_policy_for_a_zone_without_the_processor_is_an_error(example: Path) -> None:
    Path("zones/config/example.org.yaml").write_text("---\n'':\n  type: A\n  value: 192.0.2.9\n")
    Path("zones/mail/example.org.yaml").write_text("dmarc: {policy: reject}\n")
    edit_yaml(
        CONFIG,
        lambda d: d["zones"].update(
            {"example.org.": {"sources": ["config"], "targets": ["local"]}}
        ),
    )
    error = validate_fails()
    assert "its zone example.org. does not run the processor 'mailauth'" in error
    assert "processors: [mailauth]" in error


def test_two_policies_wanting_one_record_is_an_error(example: Path) -> None:
    # example.com publishes SPF at bounce.example.com for its relay; a policy
    # for bounce.example.com wants its own SPF record there.
    edit_yaml(
        "zones/mail/example.com.yaml", lambda d: d["spf"].update(names={"bounce": ["relay"]})
    )
    Path("zones/mail/bounce.example.com.yaml").write_text(
        "senders:\n  - {name: c, ip4: [192.0.2.3]}\n"
        "dmarc: {policy: none, rua: [mailto:dmarc@example.com]}\n"
    )
    with pytest.raises(MailAuthProcessorError) as info:
        sync()
    text = str(info.value)
    assert "bounce.example.com" in text and "also publishes" in text
    assert "zones/mail/example.com.yaml" in text


def test_foreign_values_and_ttls_are_kept_verbatim(tmp_path: Path) -> None:
    from octodns.zone import Zone

    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "t.example.yaml").write_text(
        "null_mx: true\nsenders:\n  - {name: a, ip4: [192.0.2.1]}\n"
        "dmarc: {policy: reject, rua: [mailto:d@t.example]}\n"
    )
    zone = Zone("t.example.", [])
    theirs = [
        Record.new(zone, "", {"type": "TXT", "ttl": 120, "values": ["caf\\195\\169"]}),
        Record.new(
            zone, "", {"type": "MX", "ttl": 300, "value": {"preference": 0, "exchange": "."}}
        ),
    ]
    for record in theirs:
        zone.add_record(record)
    proc = MailAuthProcessor("mailauth", policies=str(tmp_path / "mail"))
    proc.process_source_zone(zone, sources=[])
    after = {(r.name, r._type): r for r in zone.records}
    txt = after[("", "TXT")]
    assert "caf\\195\\169" in txt.values  # an RFC 1035 escape we do not own, unchanged
    assert any(v.startswith("v=spf1") for v in txt.values)
    assert txt.ttl == 120
    # The same null MX was already there: its TTL is not ours to change.
    assert after[("", "MX")].ttl == 300


def test_alias_zone_and_threads(example: Path) -> None:
    edit_yaml(
        CONFIG,
        lambda d: (
            d["manager"].update(max_workers=4),
            d["zones"].update({"example.info.": {"alias": "example.com."}}),
        ),
    )
    Path("zones/output").mkdir()
    # Processors rerun for alias zones; the records come along unchanged.
    assert sync() > 0
    assert sync() == 0
    keys = list(Path("zones/.dkim").glob("*/*.pem"))
    assert len(keys) == 4  # the fixed selectors' (example.net's rotate: their keys are elsewhere)


def test_processor_repr_and_direct_construction(example: Path) -> None:
    # Without generate_keys, a missing key is an error when octoDNS builds us.
    with pytest.raises(MailAuthProcessorError, match="no DKIM key for selector relay2026a"):
        MailAuthProcessor("mail", policies="zones/mail", keys="zones/.dkim")
    assert not Path("zones/.dkim").exists()
    proc = MailAuthProcessor("mail", policies="zones/mail", keys="zones/.dkim", generate_keys=True)
    assert repr(proc) == (
        "MailAuthProcessor(id='mail', policies=['example.com', 'example.net', "
        "'parked.example', 'shop.example'])"
    )
    with pytest.raises(MailAuthProcessorError, match="policy folder .* does not exist"):
        MailAuthProcessor("mail", policies="zones/missing")


def test_no_lock_file_is_said_once_per_run_per_domain_facts_per_domain(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without an SPF lock, every include and delegated DKIM key would warn the same
    run-wide condition for every domain: one line says it, with what it affects;
    what is true of one domain (its alignment) is still said for that domain."""
    from octodns.zone import Zone

    mail = tmp_path / "mail"
    mail.mkdir()
    office = "{name: office, provider: microsoft365, tenant: t%d, dkim_targets: legacy}"
    domains = [f"d{i}.example" for i in range(4)]
    for i, domain in enumerate(domains[:3]):
        (mail / f"{domain}.yaml").write_text(f"senders:\n  - {office % i}\n")
    # Its own servers only: nothing of it depends on the lock.
    (mail / "d3.example.yaml").write_text("senders:\n  - {name: relay, ip4: [192.0.2.1]}\n")
    for run in range(2):  # each run (each processor octoDNS builds) says it once
        caplog.clear()
        proc = MailAuthProcessor("mailauth", policies=str(mail))
        with caplog.at_level(logging.WARNING):
            for domain in domains:
                proc.process_source_zone(Zone(f"{domain}.", []), sources=[])
        lines = [r.getMessage() for r in caplog.records if r.name == "MailAuthProcessor[mailauth]"]
        (once,) = [ln for ln in lines if "lock file" in ln]
        assert once.startswith(f"warning: no SPF lock file ({mail / 'spf-lock.json'}): ")
        assert (
            "not followed" in once and "(3 policies: d0.example, d1.example, d2.example)" in once
        )
        assert "6 delegated DKIM key(s)" in once and "lock refresh" in once
        assert "d3.example" not in once
        aligned = [ln for ln in lines if "its DKIM alignment is unverified" in ln]
        assert [ln.split(".yaml")[0].rsplit("/", 1)[1] for ln in aligned] == domains[:3], run
