"""The octoDNS integration: what octodns-validate, octodns-sync and every
`octodns-mailauth --config` command read, and what each zone gets, under threads
and dynamic zones."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, octodns_threads_joined
from example_rotation import replay_example_rotation
from octodns.manager import Manager
from octodns.zone.exception import ValidationError
from test_processor import add_reporting_zones, run, served
from test_processor import edit_yaml as edit

from octodns_mailauth.cli import main
from octodns_mailauth.errors import MailAuthProcessorError

CONFIG = "zones/config.yaml"


@pytest.fixture
def fast_switching():  # type: ignore[no-untyped-def]
    """Threads switch every microsecond, so races show on every run."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_dynamic_zones_with_many_workers_each_get_their_records(
    example: Path, fast_switching: None
) -> None:
    # 24 more zones, each with a policy sending its DMARC reports to example.com:
    # each such policy places a report authorization in the zone example.com.
    extra = add_reporting_zones(24, "{name: relay, ip4: [192.0.2.7]}")

    def dynamic(d):  # type: ignore[no-untyped-def]
        d["manager"]["max_workers"] = 32
        d["zones"] = {
            "*": {"sources": ["config"], "processors": ["mailauth"], "targets": ["local"]}
        }

    edit(CONFIG, dynamic)
    assert Manager(CONFIG).sync(dry_run=False) > 0
    zones = extra + ["example.com", "example.net", "shop.example"]
    checked = 0
    for zone in zones:
        records = served(zone)
        assert any(v.startswith("v=spf1") for v in records[(zone, "TXT")]), zone
        assert any(v.startswith("v=DMARC1") for v in records[(f"_dmarc.{zone}", "TXT")]), zone
        checked += 1
    assert checked == len(zones) == 27
    hub = served("example.com")
    for zone in extra:
        assert hub[(f"{zone}._report._dmarc.example.com", "TXT")] == ["v=DMARC1"], zone
    # And the second run, with the same threads, changes nothing.
    assert Manager(CONFIG).sync(dry_run=False) == 0


def _include_and_env_config(monkeypatch: pytest.MonkeyPatch) -> str:
    """The example config with the processor in an `!include`d file and its
    policy folder named by an env/ secret, both as octoDNS reads them."""
    shutil.move("zones/mail", "zones/policies-elsewhere")
    monkeypatch.setenv("MAILAUTH_POLICIES", "./zones/policies-elsewhere")
    data = yaml.safe_load(Path(CONFIG).read_text())
    processor = dict(data.pop("processors")["mailauth"], policies="env/MAILAUTH_POLICIES")
    Path("zones/processors.yaml").write_text(yaml.safe_dump({"mailauth": processor}))
    text = yaml.safe_dump(data, sort_keys=False) + "processors: !include processors.yaml\n"
    Path("zones/included.yaml").write_text(text)
    return "zones/included.yaml"


def test_include_and_env_secret_are_read_alike_by_every_command(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    replay_example_rotation()  # `dkim rotate` and `export` need example.net's rotating keys
    config = _include_and_env_config(monkeypatch)
    Manager(config).validate_configs()
    assert Manager(config).sync(dry_run=False) > 0  # octodns-sync
    assert any(v.startswith("v=spf1") for v in served("example.com")[("example.com", "TXT")])
    capsys.readouterr()
    commands = [
        ["validate"],
        ["records", "example.com"],
        ["explain", "example.com"],
        ["dkim", "keygen"],
        ["dkim", "rotate", "--dry-run", "--assume-published"],  # never the system resolver
        ["dkim", "export"],
        ["mta-sts", "policy", "shop.example"],
    ]
    ran = 0
    for command in commands:
        rc = main([*command, "--config", config])
        out, err = capsys.readouterr()
        assert rc == 0, (command, out, err)
        ran += 1
    assert ran == len(commands)
    main(["records", "example.com", "--config", config])
    assert "v=spf1" in capsys.readouterr().out
    # The commands that need live DNS read the config the same way before they
    # ask anything: their error is about DNS (exit 2), never about the config.
    for command in (["check", "example.com"], ["spf", "refresh"]):
        rc = main([*command, "--config", config, "--nameserver", "127.0.0.1:9", "--timeout", "1"])
        err = capsys.readouterr().err
        assert "included.yaml" not in err and "processors" not in err, err
        assert "Traceback" not in err


def test_octodns_validate_reports_every_zone_conflict_in_one_run(example: Path) -> None:
    def conflicts(d):  # type: ignore[no-untyped-def]
        apex = d[""]
        apex.append({"type": "TXT", "value": "v=spf1 include:old.example -all"})
        mx = next(r for r in apex if r["type"] == "MX")
        mx["values"].append({"exchange": "mx.elsewhere.example.", "preference": 30})
        d["_dmarc"] = {"type": "TXT", "value": "v=DMARC1\\; p=none"}
        d["mx2026._domainkey"] = {"type": "CNAME", "value": "keys.elsewhere.example."}

    edit("zones/config/shop.example.yaml", conflicts)
    with pytest.raises(Exception) as info:
        Manager(CONFIG).validate_configs()
    text = str(info.value)
    assert "hand-written spf value 'v=spf1 include:old.example -all'" in text
    assert "hand-written dmarc value 'v=DMARC1; p=none'" in text
    assert "MX host mx.elsewhere.example is not covered by any MTA-STS mx pattern" in text
    assert "a CNAME (a CNAME must stand alone)" in text
    assert "zones/mail/shop.example.yaml" in text  # the policy's file and line


# One conflict in each of three zones, and each error's text.
SPF_CONFLICT = "hand-written spf value 'v=spf1 include:old.example -all'"
DMARC_CONFLICT = "hand-written dmarc value 'v=DMARC1; p=none'"
MX_CONFLICT = "MX host mx.elsewhere.example is not covered by any MTA-STS mx pattern"
CNAME_CONFLICT = "at mta-sts.shop.example, but the zone already has a CNAME (a CNAME must stand"


def _conflicts_in_three_zones() -> None:
    def spf(d):  # type: ignore[no-untyped-def]
        txt = next(r for r in d[""] if r["type"] == "TXT")
        txt["values"].append("v=spf1 include:old.example -all")

    def mx_and_cname(d):  # type: ignore[no-untyped-def]
        mx = next(r for r in d[""] if r["type"] == "MX")
        mx["values"].append({"exchange": "mx.elsewhere.example.", "preference": 30})
        d["mta-sts"] = {"type": "CNAME", "value": "sts.elsewhere.example."}

    edit("zones/config/example.com.yaml", spf)
    dmarc = {"_dmarc": {"type": "TXT", "value": "v=DMARC1\\; p=none"}}
    edit("zones/config/example.net.yaml", lambda d: d.update(dmarc))
    edit("zones/config/shop.example.yaml", mx_and_cname)


def _dynamic(d):  # type: ignore[no-untyped-def]
    d["zones"] = {"*": {"sources": ["config"], "processors": ["mailauth"], "targets": ["local"]}}


@pytest.mark.parametrize("zones", ["named", "dynamic"])
def test_octodns_validate_reports_the_conflicts_of_every_zone_in_one_run(
    example: Path, zones: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if zones == "dynamic":  # octoDNS validates these in no fixed order
        edit(CONFIG, _dynamic)
    Manager(CONFIG).validate_configs()  # clean: passes
    _conflicts_in_three_zones()
    with pytest.raises(ValidationError) as info:
        Manager(CONFIG).validate_configs()
    # octoDNS stops at the first zone that fails; its error carries the others',
    # each naming its zone, and each conflict once.
    first = info.value.zone_name.rstrip(".")
    reasons = [str(r) for r in info.value.reasons]
    by_zone = {"example.com": SPF_CONFLICT, "example.net": DMARC_CONFLICT}
    by_zone |= {"shop.example": MX_CONFLICT}
    if zones == "named":
        assert first == "example.com"
    for zone, conflict in by_zone.items():
        said = [r for r in reasons if conflict in r]
        assert len(said) == 1, (conflict, reasons)
        assert said[0].startswith("zones/mail/" if zone == first else f"zone {zone}.: "), said
    assert sum(CNAME_CONFLICT in r for r in reasons) == 1, reasons
    assert len(reasons) == 4, reasons
    # octodns-mailauth validate --config shows them all too.
    assert main(["validate", "--config", CONFIG]) == 1
    out = capsys.readouterr().out
    for conflict in [*by_zone.values(), CNAME_CONFLICT]:
        assert out.count(conflict) == 1, (conflict, out)
    # octodns-sync refuses as before: at one zone, with that zone's errors only.
    with pytest.raises(MailAuthProcessorError) as refused:
        Manager(CONFIG).sync(dry_run=True)
    assert sum(c in str(refused.value) for c in by_zone.values()) == 1, refused.value
    assert "zone example." not in str(refused.value) and "zone shop." not in str(refused.value)


def test_octodns_validate_entry_point_names_every_zone_and_fails(example: Path) -> None:
    _conflicts_in_three_zones()
    result = run("octodns-validate", "--config-file", CONFIG)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-5:]  # the error octoDNS raised
    assert last[0].startswith('octodns.zone.exception.ValidationError: Invalid zone "example.com')
    for line, conflict, prefix in zip(
        last[1:],
        [SPF_CONFLICT, DMARC_CONFLICT, MX_CONFLICT, CNAME_CONFLICT],
        ["", "zone example.net.: ", "zone shop.example.: ", "zone shop.example.: "],
        strict=True,
    ):
        assert line.startswith(f"  - {prefix}zones/mail/") and conflict in line, last
    # --all (octoDNS's lenient run) goes on after a failing zone: the first carries
    # the rest, and each is said once.
    result = run("octodns-validate", "--config-file", CONFIG, "--all")
    assert result.returncode == 1
    for conflict in [SPF_CONFLICT, DMARC_CONFLICT, MX_CONFLICT, CNAME_CONFLICT]:
        assert result.stderr.count(conflict) == 1, (conflict, result.stderr)


@pytest.mark.parametrize("zones", ["named", "dynamic"])
def test_validate_all_reports_each_conflict_once(
    example: Path, zones: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`octodns-validate --all` (a lenient run) validates every zone: the first
    failing zone carries the others' conflicts, and a zone whose conflicts were
    said does not say them again."""
    import logging

    if zones == "dynamic":
        edit(CONFIG, _dynamic)
    _conflicts_in_three_zones()
    manager = Manager(CONFIG)
    for _ in range(2):  # and a second run of the same Manager says them all again
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            manager.validate_configs(lenient=True)
        said = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("Zone"))
        for conflict in [SPF_CONFLICT, DMARC_CONFLICT, MX_CONFLICT, CNAME_CONFLICT]:
            assert said.count(conflict) == 1, (conflict, said)


def test_other_zones_are_read_as_octodns_validate_reads_them(example: Path) -> None:
    """Lenient zones and zones that turn the check off are not carried; a zone
    whose records octoDNS cannot read is, with octoDNS's reason."""
    _conflicts_in_three_zones()

    def config(d):  # type: ignore[no-untyped-def]
        d["zones"]["example.net."]["lenient"] = True
        off = {"zone": {"disable_validators": ["mailauth-mailauth"]}}
        d["zones"]["shop.example."]["validators"] = off

    edit(CONFIG, config)
    edit("zones/config/parked.example.yaml", lambda d: d.update(bad={"type": "A", "value": "x"}))
    with pytest.raises(ValidationError) as info:
        Manager(CONFIG).validate_configs()
    reasons = [str(r) for r in info.value.reasons]
    assert len(reasons) == 2 and SPF_CONFLICT in reasons[0], reasons
    assert reasons[1].startswith("zone parked.example.: zones/config.yaml: source 'config'")
    assert 'invalid IPv4 address "x"' in reasons[1], reasons


def test_different_policies_compile_in_parallel_and_each_once_per_view() -> None:
    import threading

    from octodns_mailauth.context import CompileResult
    from octodns_mailauth.integration.run import PolicyRun
    from octodns_mailauth.zoneview import ZoneReads

    both = threading.Barrier(2, timeout=10)  # broken if one compile waits for the other
    calls: list[str] = []

    def compiler(lp, view):  # type: ignore[no-untyped-def]
        calls.append(lp.domain)
        both.wait()
        reads = ZoneReads(view)
        reads.get(("x", "A"))  # what a step would read of the zone
        return CompileResult(lp.domain, zone_reads=reads)

    class Lp:
        def __init__(self, domain: str) -> None:
            self.domain = domain

    run = PolicyRun({d: Lp(d) for d in ("a.example", "b.example")}, compiler)  # type: ignore[misc]
    threads = [
        threading.Thread(target=run.compile, args=(lp, {("x", "A"): ("1",)}))
        for lp in run.policies.values()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not both.broken and sorted(calls) == ["a.example", "b.example"]
    # The same policy and view again: cached, not compiled twice.
    both = threading.Barrier(1)
    run.compile(run.policies["a.example"], {("x", "A"): ("1",)})
    assert len(calls) == 2
    # Another view that agrees on what the compile read: the same result.
    run.compile(run.policies["a.example"], {("x", "A"): ("1",), ("y", "A"): ("2",)})
    assert len(calls) == 2
    run.compile(run.policies["a.example"], {("x", "A"): ("2",)})  # what it read differs
    assert len(calls) == 3
    run.compile(run.policies["a.example"], {})  # what it read is missing
    assert len(calls) == 4


def test_sync_compiles_each_policy_once_plus_the_dry_run(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import octodns_mailauth.integration.inputs as compile_module

    calls: list[str] = []
    real = compile_module.compile_policy

    def counting(lp, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(lp.domain)
        return real(lp, *args, **kwargs)

    monkeypatch.setattr(compile_module, "compile_policy", counting)
    edit(CONFIG, lambda d: d["zones"].update({"example.info.": {"alias": "example.com."}}))
    assert Manager(CONFIG).sync(dry_run=False) > 0
    # (example.net's DMARC report authorization in example.com's zone costs no compile)
    assert sorted(calls) == sorted(POLICIES * 2), calls


POLICIES = ["example.com", "example.net", "parked.example", "shop.example"]


def test_a_failed_syncs_leftover_work_ends_before_the_next_run(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the count above once saw 11 compiles, not 8: octoDNS's sync raises at the
    first zone that fails and leaves the other zones' work running in its threads,
    so a test that ends there left compiles running into the next test.  Every test
    now ends its octoDNS threads (conftest.py), as this one does within it."""
    import threading

    import octodns_mailauth.integration.inputs as compile_module

    calls: list[str] = []
    real = compile_module.compile_policy
    held, release = threading.Event(), threading.Event()

    def counting(lp, *args, **kwargs):  # type: ignore[no-untyped-def]
        if lp.domain == "parked.example" and not release.is_set():
            held.set()  # the failed sync's last zone: held until it has raised
            assert release.wait(60)
        calls.append(lp.domain)
        return real(lp, *args, **kwargs)

    _conflicts_in_three_zones()
    with octodns_threads_joined():
        failed = Manager(CONFIG)
        monkeypatch.setattr(compile_module, "compile_policy", counting)
        with pytest.raises(MailAuthProcessorError, match="include:old.example"):
            failed.sync(dry_run=True)
        assert held.wait(60)  # parked.example's zone is still being processed
        threading.Timer(0.5, release.set).start()
    assert "parked.example" in calls  # it was held, and it is done
    for zone in ["example.com", "example.net", "shop.example"]:
        shutil.copy(ROOT / f"zones/config/{zone}.yaml", f"zones/config/{zone}.yaml")
    calls.clear()
    assert Manager(CONFIG).sync(dry_run=False) > 0
    assert sorted(calls) == sorted(POLICIES * 2), calls


def test_generated_keys_and_skipped_zones_are_logged_by_the_processor(
    example: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    Path("zones/config/example.org.yaml").write_text("---\n'':\n  type: A\n  value: 192.0.2.9\n")
    edit(
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
    with caplog.at_level(logging.INFO, logger="MailAuthProcessor[mailauth]"):
        Manager(CONFIG).sync(dry_run=True)
    mine = [r.getMessage() for r in caplog.records if r.name == "MailAuthProcessor[mailauth]"]
    # Planning keeps a new key in memory only (issue 17), and says so; the warning
    # for output written without a plan (octodns-dump) is not said here.
    assert any(
        "relay2026a._domainkey.example.com" in m and "only when this plan is applied" in m
        for m in mine
    ), mine
    assert not [m for m in mine if "nobody holds" in m], mine
    assert "process_source_zone: no mail policy for example.org, zone left as is" in mine
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="MailAuthProcessor[mailauth]"):
        Manager(CONFIG).sync(dry_run=False)
    mine = [r.getMessage() for r in caplog.records if r.name == "MailAuthProcessor[mailauth]"]
    # Applying writes it, after the plan guard, and logs the write.
    assert "apply: wrote DKIM key relay2026a of example.com to the keystore" in mine, mine


def test_octodns_dump_says_a_key_it_publishes_is_not_stored(
    example: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """octodns-dump runs processors without a plan (no `process_plan`): a key
    generated for it is in the dump but never in the keystore, and the run says so."""
    import logging

    with caplog.at_level(logging.WARNING, logger="MailAuthProcessor[mailauth]"):
        Manager(CONFIG).dump(zone="example.com.", output_dir="dumped", sources=["config"])
    dumped = Path("dumped/example.com.yaml").read_text()
    assert "relay2026a._domainkey" in dumped and not Path("zones/.dkim/example.com").exists()
    (said,) = [r.getMessage() for r in caplog.records if "nobody holds" in r.getMessage()]
    assert "new DKIM key(s) relay2026a of example.com, relay2026r of example.com, " in said
    assert "`octodns-dump`" in said and "`octodns-mailauth dkim keygen` first" in said
    # After `dkim keygen` the dump publishes stored keys, and says nothing.
    assert main(["dkim", "keygen", "--config", CONFIG]) == 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="MailAuthProcessor[mailauth]"):
        Manager(CONFIG).dump(zone="example.com.", output_dir="dumped", sources=["config"])
    assert not [r for r in caplog.records if "nobody holds" in r.getMessage()]


def test_lenient_keeps_the_zones_own_record_and_warns(
    example: Path, caplog: pytest.LogCaptureFixture
) -> None:

    edit(
        "zones/config/example.com.yaml",
        lambda d: d.update({"_dmarc": {"type": "TXT", "value": "v=DMARC1\\; p=none"}}),
    )
    with pytest.raises(MailAuthProcessorError, match="hand-written dmarc value"):
        Manager(CONFIG).sync(dry_run=True)
    with pytest.raises(ValidationError, match="hand-written dmarc value"):
        Manager(CONFIG).validate_configs()
    edit(CONFIG, lambda d: d["processors"]["mailauth"].update(lenient=True))
    caplog.clear()
    Manager(CONFIG).validate_configs()  # octodns-validate agrees with sync: a warning
    assert "hand-written dmarc value 'v=DMARC1; p=none'" in caplog.text
    assert Manager(CONFIG).sync(dry_run=False) > 0
    assert served("example.com")[("_dmarc.example.com", "TXT")] == ["v=DMARC1; p=none"]
    assert any(v.startswith("v=spf1") for v in served("example.com")[("example.com", "TXT")])
    assert "hand-written dmarc value 'v=DMARC1; p=none'" in caplog.text
    edit(CONFIG, lambda d: d["processors"]["mailauth"].update(lenient="yes"))
    with pytest.raises(Exception, match="lenient must be true or false, not 'yes'"):
        Manager(CONFIG)


def test_config_file_naming_another_config_is_an_error(example: Path) -> None:

    config = yaml.safe_load(Path(CONFIG).read_text())
    config["zones"]["example.org."] = {
        "sources": ["config"],
        "processors": ["mailauth"],
        "targets": ["local"],
    }
    Path("zones/config/example.org.yaml").write_text("---\n'':\n  type: A\n  value: 192.0.2.9\n")
    Path("zones/other.yaml").write_text(yaml.safe_dump(config))  # config_file: zones/config.yaml
    with pytest.raises(MailAuthProcessorError, match="zone example.org. runs this processor but"):
        Manager("zones/other.yaml").sync(dry_run=True)


def test_the_docstring_example_is_a_working_config(example: Path) -> None:
    from octodns_mailauth.integration.config import ProcessorSettings
    from octodns_mailauth.processor import MailAuthProcessor

    doc = MailAuthProcessor.__doc__ or ""
    block = doc.split("Example usage::\n\n", 1)[1].split("\n\n", 1)[0]
    example_config = yaml.safe_load(textwrap.dedent(block))
    settings = dict(example_config["processors"]["mailauth"])
    assert settings.pop("class") == "octodns_mailauth.MailAuthProcessor"
    checked = ProcessorSettings.check("doc", "mailauth", settings)
    assert checked.config_file is not None and checked.policies == Path("./mail")
    assert "mailauth" in example_config["zones"]["example.com."]["processors"]


def test_an_unknown_processor_setting_is_an_error_everywhere(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(CONFIG, lambda d: d["processors"]["mailauth"].update(generate_key=True))
    with pytest.raises(Exception, match="unknown setting\\(s\\) generate_key; known: policies"):
        Manager(CONFIG)
    assert main(["validate", "--config", CONFIG]) == 2
    assert "unknown setting(s) generate_key" in capsys.readouterr().err


def test_a_policy_compiles_once_where_its_zone_agrees_with_the_dry_compile(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dry compile of __init__ is the zone's own result wherever the zone's
    records do not change what the policy read of them; where they do (a TXT at
    the apex beside our SPF), the policy compiles again against them."""
    import octodns_mailauth.integration.inputs as compile_module

    Path("zones/config/plain.example.yaml").write_text("---\n'':\n  type: A\n  value: 192.0.2.8\n")
    Path("zones/mail/plain.example.yaml").write_text(
        "senders:\n  - {name: relay, ip4: [192.0.2.8]}\ndmarc: {policy: reject}\n"
    )
    edit(
        CONFIG,
        lambda d: d["zones"].update({"plain.example.": dict(d["zones"]["example.com."])}),
    )
    calls: list[str] = []
    real = compile_module.compile_policy

    def counting(lp, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(lp.domain)
        return real(lp, *args, **kwargs)

    monkeypatch.setattr(compile_module, "compile_policy", counting)
    assert Manager(CONFIG).sync(dry_run=False) > 0
    assert calls.count("plain.example") == 1, calls
    assert calls.count("example.com") == 2, calls  # its zone has TXT records at the apex
    records = served("plain.example")
    assert records[("plain.example", "TXT")] == ["v=spf1 ip4:192.0.2.8 -all"], records
    assert any(v.startswith("v=DMARC1") for v in records[("_dmarc.plain.example", "TXT")])
