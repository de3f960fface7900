"""End to end through PowerDNS: delegated DKIM selectors whose target holds a
key (Microsoft 365's post-2025 `...dkim.mail.microsoft` targets, served here
with a key this test made) are verified and pass; one whose target does not
exist (a Mailchimp sender added to the example, its vendor never enabled
signing) is a warning and "unverified", in `validate`, `explain` and `check`.

The vendors' names are served by the same loopback server (a zone per TLD,
from the example's lock, as tests/test_e2e_pdns.py does); `spf refresh`
records what it finds there into the lock, and dkimpy verifies a message
signed with the vendor's key through our CNAME."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cli_run import cli
from dkimpy_key import dkimpy_private_key
from pdns_fixture import pdns_of_the_module  # noqa: F401  (`pdns`: a server of its own)
from spf_realworld import serve_rrsets
from test_e2e_pdns import answer, octodns_sync, published, serve_third_parties  # noqa: F401

from octodns_mailauth.dkim.keys import generate_private_key, public_key_b64
from octodns_mailauth.dns.lockfile import SpfLock
from octodns_mailauth.records.dkim import dkim_txt_value

pytestmark = pytest.mark.pdns

CONFIG = "zones/config.yaml"
LOCK = "zones/mail/spf-lock.json"
MS1 = "selector1-example-com._domainkey.contoso.n-v1.dkim.mail.microsoft"
MAILCHIMP = ("dkim2.mcsv.net", "dkim3.mcsv.net")  # the catalog's default targets


def signed(selector: str, domain: str, key: Any) -> bytes:
    import dkim

    msg = EmailMessage()
    msg["From"] = f"someone@{domain}"
    msg["To"] = "someone@example.org"
    msg["Subject"] = "sent through Microsoft 365"
    msg.set_content("Hello\n")
    raw = msg.as_bytes().replace(b"\n", b"\r\n")
    sig = dkim.sign(
        raw, selector.encode(), domain.encode(), dkimpy_private_key(key), linesep=b"\r\n"
    )
    return sig + raw


def row_of(explain: str, sender: str) -> str:
    table = explain.split("DMARC alignment")[1].split("DMARC stage")[0]
    (line,) = [ln for ln in table.splitlines() if ln.strip().startswith(sender)]
    return line


def test_a_target_that_exists_passes_and_one_that_does_not_is_unverified(
    published: Any,  # noqa: F811
) -> None:
    import dkim

    pdns = published
    ns = f"{pdns.host}:{pdns.dns_port}"
    # "Microsoft" publishes the key for selector1 at the target it showed us.
    vendor_key = generate_private_key("rsa", 2048)
    serve_rrsets(pdns, {(MS1, "TXT"): [dkim_txt_value("rsa", public_key_b64(vendor_key))]})
    # A Mailchimp sender whose vendor never enabled DKIM: its targets do not exist.
    net = Path("zones/mail/example.net.yaml")
    net.write_text(
        net.read_text().replace(
            "spf:\n", "  - name: campaigns\n    provider: mailchimp\nspf:\n", 1
        )
    )
    assert octodns_sync(pdns, "--doit").returncode == 0
    resolver = pdns.resolver()
    for target in MAILCHIMP:
        assert answer(resolver, target, "TXT") == []  # NXDOMAIN on the server

    # The lock refresh resolves every delegated target through the server.
    refresh = cli("spf", "refresh", "--config", CONFIG, "--nameserver", ns)
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    lock = SpfLock.load(LOCK)
    assert lock.entries[MS1].answers["TXT"] == [dkim_txt_value("rsa", public_key_b64(vendor_key))]
    assert all(lock.entries[t].nxdomain for t in MAILCHIMP)

    # validate: a warning per missing key, naming the target and NXDOMAIN; no error.
    validate = cli("validate", "--config", CONFIG)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    out = validate.stdout + validate.stderr
    for target in MAILCHIMP:
        assert f"points at {target}, which has no DKIM key (NXDOMAIN)" in out, out
    assert MS1 not in out  # verified: nothing to say

    # explain: "pass via DKIM" for the verified target, "unverified" for the other.
    com = cli("explain", "example.com", "--config", CONFIG)
    assert row_of(com.stdout, "office").rstrip().endswith("pass via DKIM"), com.stdout
    net_explain = cli("explain", "example.net", "--config", CONFIG)
    line = row_of(net_explain.stdout, "campaigns")
    assert line.rstrip().endswith("unverified") and "pass via DKIM" not in line

    # check: the same, against live DNS.
    live = cli("check", "example.com", "--config", CONFIG, "--nameserver", ns)
    assert f"  verified   selector1._domainkey.example.com CNAME {MS1}" in live.stdout, live.stdout
    live_net = cli("check", "example.net", "--config", CONFIG, "--nameserver", ns)
    for target in MAILCHIMP:
        assert f"CNAME {target} (sender campaigns): NXDOMAIN" in live_net.stdout
    assert "  unverified k2._domainkey.example.net" in live_net.stdout
    assert "delegated DKIM target(s) have no key" in live_net.stderr

    # And what "verified" promises: mail Microsoft signs as example.com with that
    # key verifies through our CNAME on the server; a tampered copy does not.
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        values = answer(resolver, name.decode().rstrip("."), "TXT")
        return values[0].encode() if values else None

    message = signed("selector1", "example.com", vendor_key)
    assert dkim.verify(message, dnsfunc=lookup)
    assert not dkim.verify(message.replace(b"Hello", b"Hullo"), dnsfunc=lookup)
    # Signed for the Mailchimp selector, nothing verifies: no key behind the CNAME.
    assert not dkim.verify(signed("k2", "example.net", vendor_key), dnsfunc=lookup)
