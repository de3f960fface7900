"""redact() skips a pattern where it cannot match; what it returns is what both
patterns applied in full give, for any text."""

from __future__ import annotations

import random

from octodns_mailauth import redact as redact_module
from octodns_mailauth.redact import redact

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
PIECES = [
    " ",
    "\t",
    "\n",
    "\u2003",  # an em space: str.split() splits there, the run's pattern stops there
    "\u00e9",
    "=",
    "-----BEGIN PRIVATE KEY-----",
    "-----end rsa private key-----",
    "-----begin ec private key-----",
    "-----",
    "(at senders[0]) [RFC 6376 §6.1.2]; hint: ",
    "selector1-d7-example._domainkey.tenant7.onmicrosoft.com",
]


def _in_full(text: str) -> str:
    text = redact_module._PEM.sub("<PEM block, not shown>", text)
    return redact_module._B64_RUN.sub(
        lambda m: f"{m.group(0)[:8]}...<{len(m.group(0))} characters>", text
    )


def _text(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(0, 12)):
        if rng.random() < 0.5:
            out.append("".join(rng.choice(B64) for _ in range(rng.choice((1, 8, 59, 60, 61, 90)))))
        else:
            out.append(rng.choice(PIECES))
    return "".join(out)


def test_redact_gives_what_both_patterns_in_full_give() -> None:
    rng = random.Random(1025)
    texts = [_text(rng) for _ in range(3000)]
    changed = 0
    for text in texts:
        assert redact(text) == _in_full(text), text
        changed += redact(text) != text
    # Both ways taken many times: texts with runs and PEM blocks, and without.
    assert 500 < changed < 2500, changed
