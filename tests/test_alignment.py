"""DMARC alignment per sender, its findings, the stage report and the tables."""

from __future__ import annotations

from pathlib import Path

from vendor_keys import VendorKeys

from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.cli.report import alignment_markdown, alignment_table
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.findings import Finding, Severity
from octodns_mailauth.keysource import placeholder_public_key
from octodns_mailauth.outcome import AlignmentRow, StageReport, Verdict
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import parse_policy

CATALOG_DIR = Path(__file__).resolve().parent.parent / "octodns_mailauth" / "catalog"

NEWSLETTERS = """\
senders:
  - name: office
    provider: microsoft365
    tenant: contoso
    dkim_targets: legacy
  - name: newsletters
    provider: sendgrid
"""


class Keys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        return placeholder_public_key(key.algorithm, key.bits)


def compile_text(
    text: str, domain: str = "example.com", extra_catalog: list[Path] | None = None
) -> CompileResult:
    lp = parse_policy(text, f"mail/{domain}.yaml", domain)
    return compile_policy(lp, load_catalog(extra_catalog or []), Keys(), VendorKeys())


def rows(result: CompileResult) -> dict[str, AlignmentRow]:
    return {r.sender: r for r in result.details.alignment}


def only(result: CompileResult, code: str) -> Finding:
    found = [f for f in result.findings if f.code == code]
    assert len(found) == 1, result.findings
    return found[0]


def test_unaligned_sender_blocks_reject_naming_sender_and_fixes() -> None:
    result = compile_text(NEWSLETTERS + "dmarc: {stage: reject, rua: mailto:d@example.com}\n")
    row = rows(result)["newsletters"]
    assert (row.mail_from, row.spf_aligned, row.dkim_domains, row.verdict) == (
        "sendgrid.net",
        False,
        (),
        Verdict.NONE,
    )
    error = only(result, "align-none")
    assert error.severity is Severity.ERROR
    assert "'newsletters' (Twilio SendGrid)" in error.message
    assert "p=reject" in error.message and "rejected" in error.message
    assert error.location is not None and error.location.line == 6
    assert error.location.key_path == "senders[1]"
    hint = error.hint or ""
    # Both fixes, with where to find the values.
    assert "custom DKIM: give account, link" in hint
    # Where to find the values is said once, by the finding about the missing DKIM.
    assert "Sender Authentication" not in hint
    assert "Sender Authentication" in (only(result, "provider-no-dkim").hint or "")
    assert "custom return-path (bounce domain): give account, link, return_path_label" in hint
    assert "unaligned_ok" in hint
    assert error.rfc == "RFC 9989 §4.4"
    # The office sender aligns and raises nothing.
    assert rows(result)["office"].verdict is Verdict.DKIM
    stage = result.details.dmarc_stage
    assert isinstance(stage, StageReport) and stage.next is None


def test_fixing_the_sender_clears_the_error() -> None:
    fixed = NEWSLETTERS + "    account: u1234567\n    link: wl123\n"
    result = compile_text(fixed + "dmarc: {stage: reject, rua: mailto:d@example.com}\n")
    assert not result.errors
    assert rows(result)["newsletters"].verdict is Verdict.DKIM
    both = fixed + "    return_path_label: em1234\n"
    row = rows(compile_text(both + "dmarc: {stage: reject}\n"))["newsletters"]
    assert row.mail_from == "em1234.example.com" and row.spf_aligned and row.dkim_aligned


def test_acknowledged_sender_does_not_block() -> None:
    text = NEWSLETTERS + "    unaligned_ok: legacy list, retired in March\n"
    result = compile_text(text + "dmarc: {stage: reject, rua: mailto:d@example.com}\n")
    assert not result.errors
    info = only(result, "align-acknowledged")
    assert info.severity is Severity.INFO and "retired in March" in info.message
    assert "(acknowledged)" in alignment_table(list(rows(result).values()))


def test_unaligned_sender_at_monitor_is_a_warning_and_blocks_the_next_stage() -> None:
    result = compile_text(NEWSLETTERS + "dmarc: {stage: monitor, rua: mailto:d@example.com}\n")
    warning = only(result, "align-none")
    assert warning.severity is Severity.WARNING and "blocks quarantine" in warning.message
    stage = result.details.dmarc_stage
    assert isinstance(stage, StageReport)
    assert (stage.stage, stage.next) == ("monitor", "quarantine")
    assert any("newsletters" in b for b in stage.blockers)
    assert "before quarantine, fix: sender newsletters" in only(result, "dmarc-stage").message


def test_testing_mode_softens_one_step() -> None:
    # t=y: quarantine is applied as none, so an unaligned sender is not yet lost.
    text = NEWSLETTERS + "dmarc: {stage: quarantine, testing: true, rua: mailto:d@example.com}\n"
    result = compile_text(text)
    assert only(result, "align-none").severity is Severity.WARNING
    stage = result.details.dmarc_stage
    assert isinstance(stage, StageReport) and stage.next == "testing off (t=y removed)"
    # t=y on reject still quarantines: an error.
    text = NEWSLETTERS + "dmarc: {stage: reject, testing: true}\n"
    error = only(compile_text(text), "align-none")
    assert error.severity is Severity.ERROR and "p=quarantine" in error.message


def test_spf_only_sender_is_warned_about_forwarding() -> None:
    text = (
        "senders:\n  - name: relay\n    ip4: [192.0.2.1]\n"
        "dmarc: {stage: quarantine, rua: mailto:d@example.com}\n"
    )
    result = compile_text(text)
    row = rows(result)["relay"]
    assert (row.spf_aligned, row.dkim_aligned, row.verdict) == (True, False, Verdict.SPF_ONLY)
    warning = only(result, "align-spf-only")
    assert warning.severity is Severity.WARNING
    assert "forwarded mail fails SPF" in warning.message and "'relay'" in warning.message
    assert "dkim: {selector" in (warning.hint or "")
    assert not result.errors
    stage = result.details.dmarc_stage
    assert isinstance(stage, StageReport)
    assert stage.blockers == ["sender relay passes by SPF only: forwarded mail would be rejected"]
    # With its own key it passes via DKIM and the warning goes.
    text = text.replace(
        "ip4: [192.0.2.1]", "ip4: [192.0.2.1]\n    dkim: {selector: s1, algorithm: ed25519}"
    )
    signed = compile_text(text)
    assert rows(signed)["relay"].verdict is Verdict.DKIM
    assert not [f for f in signed.findings if f.code == "align-spf-only"]


def test_microsoft_365_default_signing_domain_is_named() -> None:
    result = compile_text(
        NEWSLETTERS.split("  - name: newsletters")[0] + "dmarc: {stage: reject}\n"
    )
    note = only(result, "align-dkim-pending")
    assert "contoso.onmicrosoft.com" in note.message and note.severity is Severity.INFO


def test_microsoft_365_needs_its_targets_as_shown_or_legacy() -> None:
    # The targets cannot be derived (post-May-2025 domains have a partition
    # Microsoft assigns): a sender with neither the targets nor `legacy` is an error.
    text = "senders:\n  - {name: office, provider: microsoft365, tenant: contoso}\n"
    result = compile_text(text)
    errors = [f for f in result.errors if f.code == "provider-param"]
    assert {f.location.key_path for f in errors if f.location} == {
        "senders[0].selector1_target",
        "senders[0].selector2_target",
    }
    message = next(f.format() for f in errors if "selector1_target" in f.message)
    assert "Get-DkimSigningConfig" in message and "dkim.mail.microsoft" in message
    assert "dkim_targets: legacy" in message
    # Targets as Microsoft shows them are published as given, and verified.
    target = "selector1-example-com._domainkey.contoso.n-v1.dkim.mail.microsoft"
    shown = (
        "senders:\n  - name: office\n    provider: microsoft365\n    tenant: contoso\n"
        f"    selector1_target: {target}\n"
        f"    selector2_target: {target.replace('selector1', 'selector2')}\n"
    )
    result = compile_text(shown)
    assert not result.errors, result.errors
    cnames = {r.name: r.values[0] for r in result.records if r.type == "CNAME"}
    assert cnames["selector1._domainkey.example.com"] == target + "."
    assert rows(result)["office"].verdict is Verdict.DKIM
    # Both at once is ambiguous.
    both = compile_text(
        shown.replace("tenant: contoso\n", "tenant: contoso\n    dkim_targets: legacy\n")
    )
    assert any("give either selector1_target or dkim_targets" in f.message for f in both.errors)


def test_strict_spf_alignment_needs_the_exact_name() -> None:
    ses = (
        "senders:\n  - name: shop\n    provider: amazonses\n    region: eu-west-1\n"
        "    mail_from: bounce\n"
    )
    relaxed = rows(compile_text(ses + "dmarc: {stage: reject}\n"))["shop"]
    assert relaxed.mail_from == "bounce.example.com" and relaxed.spf_aligned
    strict = rows(compile_text(ses + "dmarc: {stage: reject, spf_alignment: strict}\n"))["shop"]
    assert not strict.spf_aligned
    assert strict.dkim_domains == ("amazonses.com",)  # no Easy DKIM tokens given
    assert strict.verdict is Verdict.NONE


def test_declared_organizational_domain_narrows_relaxed_alignment() -> None:
    text = (
        "senders:\n  - {name: app, ip4: [192.0.2.1], return_path: bounce.example.com}\n"
        "dmarc: {stage: monitor, rua: mailto:d@example.com, public_suffix_domain: %s}\n"
    )
    psl = rows(compile_text(text % "null", "a.example.com"))["app"]
    assert psl.spf_aligned  # both under example.com by the PSL
    own = rows(compile_text(text % "false", "a.example.com"))["app"]
    assert not own.spf_aligned  # psd=n: a.example.com is its own organization


def test_tables_render_every_row() -> None:
    result = compile_text(NEWSLETTERS + "dmarc: {stage: monitor, rua: mailto:d@example.com}\n")
    table = alignment_table(list(rows(result).values()))
    lines = table.splitlines()
    assert lines[0].split() == [
        "sender",
        "MAIL",
        "FROM",
        "SPF",
        "aligned",
        "DKIM",
        "d=",
        "DKIM",
        "aligned",
        "verdict",
    ]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split()[:3] == ["office", "(microsoft365)", "example.com"]
    assert lines[3].endswith("cannot align") and "sendgrid.net" in lines[3]
    md = alignment_markdown(list(rows(result).values())).splitlines()
    assert md[0].startswith("| sender | MAIL FROM |") and md[1].startswith("|---|")
    assert len(md) == 4 and md[3].endswith("| cannot align |")


def test_no_dmarc_still_has_a_table_and_a_stage() -> None:
    result = compile_text(NEWSLETTERS)
    assert len(rows(result)) == 2
    stage = result.details.dmarc_stage
    assert isinstance(stage, StageReport) and (stage.stage, stage.next) == ("none", "monitor")
    assert not result.errors


def test_parked_domain_has_nothing_to_align() -> None:
    result = compile_text("parked: true\n", "parked.example")
    stage = result.details.dmarc_stage
    assert isinstance(stage, StageReport) and (stage.stage, stage.next) == ("parked", None)
    dmarc = [r for r in result.records if r.name == "_dmarc.parked.example"]
    assert [r.owner for r in dmarc] == ["parked"]
