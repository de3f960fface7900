"""BIMI: the `<selector>._bimi` record, the DMARC enforcement it needs, the
decline form, and the SVG Tiny PS checks on a local logo file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from checkdmarc.bimi import check_svg_requirements, get_svg_metadata

from octodns_mailauth.bimi import svg_problems
from octodns_mailauth.catalog import load_catalog
from octodns_mailauth.compile import compile_policy
from octodns_mailauth.context import CompileResult
from octodns_mailauth.errors import PolicyError
from octodns_mailauth.findings import Severity
from octodns_mailauth.policy.dkim import DkimKey
from octodns_mailauth.policy.loader import load_policy_file, parse_policy

DATA = Path(__file__).resolve().parent / "data" / "bimi"
LOGO = "https://example.com/bimi/logo.svg"
VMC = "https://example.com/bimi/vmc.pem"
ENFORCED = "dmarc: {policy: reject}\n"


class NoKeys:
    def public_key(self, domain: str, key: DkimKey) -> str:
        raise AssertionError("no DKIM keys in these policies")


def compile_file(folder: Path, text: str) -> CompileResult:
    """Compile a policy written to `folder`, so logo_file resolves beside it."""
    path = folder / "example.com.yaml"
    path.write_text(text)
    return compile_policy(load_policy_file(path), load_catalog(), NoKeys())


def bimi_records(result: CompileResult) -> dict[str, tuple[str, ...]]:
    return {r.name: r.values for r in result.records if r.kind == "bimi"}


def test_record_with_logo_and_authority(tmp_path: Path) -> None:
    result = compile_file(tmp_path, f"{ENFORCED}bimi: {{logo: '{LOGO}', authority: '{VMC}'}}\n")
    assert result.errors == []
    assert bimi_records(result) == {"default._bimi.example.com": (f"v=BIMI1; l={LOGO}; a={VMC}",)}
    assert "bimi-no-authority" not in [f.code for f in result.findings]


def test_selector_and_missing_authority_note(tmp_path: Path) -> None:
    text = f"{ENFORCED}bimi: {{selector: Brand2, logo: '{LOGO}'}}\n"
    result = compile_file(tmp_path, text)
    assert bimi_records(result) == {"brand2._bimi.example.com": (f"v=BIMI1; l={LOGO}",)}
    assert "bimi-no-authority" in [f.code for f in result.findings if f.severity is Severity.INFO]


def test_decline_form_needs_no_dmarc(tmp_path: Path) -> None:
    result = compile_file(tmp_path, "bimi: {decline: true}\n")
    assert result.errors == []
    assert bimi_records(result) == {"default._bimi.example.com": ("v=BIMI1; l=; a=;",)}


@pytest.mark.parametrize(
    "dmarc, line, key",
    [
        ("", 1, "bimi"),  # no DMARC at all
        ("dmarc: {policy: none}\n", 1, "dmarc.policy"),
        ("dmarc:\n  policy: reject\n  subdomain_policy: none\n", 3, "dmarc.subdomain_policy"),
        ("dmarc:\n  stage: monitor\n", 2, "dmarc.stage"),
        ("dmarc:\n  policy: quarantine\n  testing: true\n", 3, "dmarc.testing"),
    ],
)
def test_refused_unless_dmarc_is_at_enforcement(
    tmp_path: Path, dmarc: str, line: int, key: str
) -> None:
    result = compile_file(tmp_path, f"{dmarc}bimi: {{logo: '{LOGO}'}}\n")
    (error,) = result.errors
    assert error.code == "bimi-dmarc-not-enforced"
    assert error.location is not None
    assert (error.location.line, error.location.key_path) == (line, key)
    assert "quarantine" in str(error.hint)
    # The hint names the setting to change: t=y when p= is already quarantine.
    assert ("remove testing: true" in str(error.hint)) == (key == "dmarc.testing")
    assert bimi_records(result) == {}


@pytest.mark.parametrize(
    "dmarc",
    [
        "dmarc: {policy: quarantine}\n",
        "dmarc: {policy: reject, subdomain_policy: quarantine}\n",
        "dmarc: {policy: quarantine, subdomain_policy: reject}\n",
        "dmarc: {policy: reject, testing: true}\n",  # t=y applies reject as quarantine
    ],
)
def test_quarantine_or_reject_is_enforcement(tmp_path: Path, dmarc: str) -> None:
    result = compile_file(tmp_path, f"{dmarc}bimi: {{logo: '{LOGO}'}}\n")
    assert result.errors == [] and bimi_records(result)


def test_good_logo_file_passes_our_check_and_checkdmarcs(tmp_path: Path) -> None:
    data = (DATA / "logo.svg").read_bytes()
    assert svg_problems(data) == []
    assert check_svg_requirements(get_svg_metadata(data)) == []
    shutil.copy(DATA / "logo.svg", tmp_path / "logo.svg")
    result = compile_file(tmp_path, f"{ENFORCED}bimi: {{logo: '{LOGO}', logo_file: logo.svg}}\n")
    assert result.errors == [] and bimi_records(result)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("script.svg", ["<script>: scripts", "event handler onclick="]),
        ("external.svg", ["https://cdn.example.net/shapes.svg#star", "style= refers outside"]),
        ("raster.svg", ["<image>: raster"]),
        ("doctype.svg", ["DOCTYPE or ENTITY"]),
        ("plain.svg", ['version="1.2"', 'baseProfile="tiny-ps"', "<title>", "x= attribute"]),
    ],
)
def test_bad_logo_files_are_refused(tmp_path: Path, name: str, expected: list[str]) -> None:
    problems = svg_problems((DATA / name).read_bytes())
    for part in expected:
        assert any(part in p for p in problems), (part, problems)
    # The file's internal reference (fill="url(#g)") is not flagged.
    assert not any("url(#g)" in p or "fill=" in p for p in problems)
    shutil.copy(DATA / name, tmp_path / name)
    text = f"{ENFORCED}bimi:\n  logo: '{LOGO}'\n  logo_file: {name}\n"
    result = compile_file(tmp_path, text)
    assert result.errors and {e.code for e in result.errors} == {"bimi-logo-invalid"}
    assert all(e.location and e.location.line == 4 for e in result.errors)
    assert all(e.location and e.location.key_path == "bimi.logo_file" for e in result.errors)
    assert bimi_records(result) == {}


def test_checkdmarc_also_rejects_the_plain_svg() -> None:
    # Independent check that the fixture really breaks the profile.
    problems = check_svg_requirements(get_svg_metadata((DATA / "plain.svg").read_bytes()))
    assert any("1.2" in p for p in problems) and any("title" in p for p in problems)


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"<svg", "not well-formed XML"),
        (b'<svg version="1.2" baseProfile="tiny-ps"><title>x</title></svg>', "SVG namespace"),
        (
            b'<?xml-stylesheet href="https://x.example/s.css"?>'
            b'<svg xmlns="http://www.w3.org/2000/svg"/>',
            "external stylesheet",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps">'
            b"<title>x</title><animate attributeName='x'/><foreignObject/></svg>",
            "animation",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps">'
            b"<title>x</title><style>rect { fill: url('http://x.example/a') }</style></svg>",
            "<style> refers outside",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" version="1.2" baseProfile="tiny-ps">'
            b"<title>  </title></svg>",
            "needs a <title>",
        ),
    ],
)
def test_svg_edge_cases(data: bytes, expected: str) -> None:
    assert any(expected in p for p in svg_problems(data)), svg_problems(data)


def test_large_or_missing_logo_file(tmp_path: Path) -> None:
    big = (DATA / "logo.svg").read_text().replace("</svg>", "<!-- " + "x" * 33000 + " -->\n</svg>")
    (tmp_path / "big.svg").write_text(big)
    result = compile_file(tmp_path, f"{ENFORCED}bimi: {{logo: '{LOGO}', logo_file: big.svg}}\n")
    # Refused, not warned about: receivers do not show a logo over 32 KiB.
    assert [e.code for e in result.errors] == ["bimi-logo-large"]
    assert not bimi_records(result)
    result = compile_file(tmp_path, f"{ENFORCED}bimi: {{logo: '{LOGO}', logo_file: gone.svg}}\n")
    assert [e.code for e in result.errors] == ["bimi-logo-unreadable"]
    assert "gone.svg" in result.errors[0].message


def test_parked_domain_with_bimi_is_refused(tmp_path: Path) -> None:
    result = compile_file(tmp_path, f"parked: true\nbimi: {{logo: '{LOGO}'}}\n")
    assert "bimi-parked" in {e.code for e in result.errors}


@pytest.mark.parametrize(
    "bimi, expected",
    [
        ("{logo: 'http://example.com/l.svg'}", "must be an https:// URL"),
        ("{}", "or decline: true"),
        (f"{{decline: true, logo: '{LOGO}'}}", "remove logo"),
        (f"{{selector: 'a b', logo: '{LOGO}'}}", "not a valid BIMI selector"),
        (f"{{logo: '{LOGO}', authority: 'ftp://x.example/vmc.pem'}}", "https://"),
    ],
)
def test_bad_bimi_settings(bimi: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(f"{ENFORCED}bimi: {bimi}\n", "mail/example.com.yaml", "example.com")
    assert expected in str(info.value) and "example.com.yaml:2" in str(info.value)
