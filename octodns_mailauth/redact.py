"""Keep what users paste out of what we print.

Error messages quote the offending value so the user can find it, but a value
may be a pasted private key (a PEM block, or its bare base64 body), and
messages end up in CI logs.  Every message that echoes policy input goes
through `redact` (and quoted values through `shown`).
"""

from __future__ import annotations

import re

MAX_SHOWN = 60

# A PEM block, closed or cut off (a paste may lose its END line).
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*-----.*?(?:-----END [A-Z0-9 ]*-----|$)", re.DOTALL | re.IGNORECASE
)
# A long base64 run: a key body pasted without its BEGIN/END lines.  DKIM p=
# values are public, but we cannot tell them from a private key body here.
_B64_MIN = 60  # a PEM line is 64
_B64_RUN = re.compile(rf"[A-Za-z0-9+/]{{{_B64_MIN},}}={{0,2}}")


def looks_secret(text: str) -> bool:
    """True for text that carries (or may carry) private key material."""
    return "PRIVATE KEY" in text.upper() or bool(_PEM.search(text))


def redact(text: str) -> str:
    """`text` with PEM blocks and long base64 runs replaced by placeholders."""
    # Each pattern only where it can match (a PEM block starts with dashes, a run has
    # no white space): most messages have neither, and the run's pattern is tried at
    # every character (every finding the processor logs is redacted).
    if "-----" in text:
        text = _PEM.sub("<PEM block, not shown>", text)
    if max(map(len, text.split()), default=0) >= _B64_MIN:
        text = _B64_RUN.sub(lambda m: f"{m.group(0)[:8]}...<{len(m.group(0))} characters>", text)
    return text


def shown(value: object) -> str:
    """A value as a message quotes it: repr, redacted, cut to MAX_SHOWN characters."""
    if isinstance(value, str) and looks_secret(value):
        return "<a PEM block or private key, not shown>"
    text = redact(repr(value))
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 3] + "..." + f" ({len(text)} characters)"
    return text
