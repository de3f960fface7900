"""XML from strangers, parsed safely.

Reports arrive from anyone who can send mail.  The stdlib parser resolves
internal entities, so a document with a DTD can expand to gigabytes ("billion
laughs"), and an external entity could name a local file.  DMARC reports never
need a DTD, so, as `defusedxml` does with `forbid_dtd=True`, any DOCTYPE or
entity declaration is refused before the parser acts on it; external entities
are never fetched.  That is a few lines over the stdlib's expat, so no extra
dependency.  Size is bounded by the caller (decompression) and here.
"""

from __future__ import annotations

import codecs
import re
from xml.etree.ElementTree import Element, ParseError, XMLParser, XMLPullParser
from xml.parsers import expat


class XmlRefused(ValueError):
    """The text is the one-line reason."""


class _Forbidden(Exception):
    pass


# Encodings expat decodes itself; others (windows-1252 ...) are decoded first.
_EXPAT_ENCODINGS = {"utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "us-ascii"}
_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>")


def parse_xml(data: bytes, max_bytes: int) -> tuple[Element, str]:
    """The tree with local tag names, and the root element's namespace ("" if none).

    ElementTree's C parser builds the tree.  A document that could declare a DTD
    or entity is first read by expat alone with only the declaration handlers set,
    which refuses it before anything is expanded; Python callbacks per element
    would cost several times more.
    """
    if len(data) > max_bytes:
        raise XmlRefused(f"XML of {len(data)} bytes: larger than the {max_bytes} allowed")
    data = _recode(data)
    if _may_declare(data):
        _check_declarations(data)
    parser = XMLParser()
    try:
        parser.feed(data)
        root = parser.close()
    except ParseError as e:
        line, column = e.position
        raise XmlRefused(
            f"not well-formed XML: {str(e).split(':', 1)[0]} at line {line}, column {column + 1}"
        ) from None
    ns = ""
    if root.tag[:1] == "{":
        ns = root.tag[1:].partition("}")[0]
        _strip_namespaces(root)
    return root, ns


def _strip_namespaces(root: Element) -> None:
    # Reports use one vocabulary, namespaced (RFC 9990) or not: local names only.
    # A dict of the names seen: a third of the time of splitting each tag.
    local = _LOCAL
    for el in root.iter():
        tag = el.tag
        try:
            el.tag = local[tag]
        except KeyError:
            if len(local) > _LOCAL_MAX:  # hostile documents with ever new names
                local.clear()
            el.tag = local[tag] = tag.rpartition("}")[2]


_LOCAL: dict[str, str] = {}  # "{namespace}name" (or "name") -> "name"
_LOCAL_MAX = 4096


def parse_head(data: bytes, max_bytes: int, name: str) -> Element | None:
    """The first element called `name` (local name, namespaces stripped), parsed from
    the start of the document only as far as its end; None if the document might
    declare a DTD or entity, breaks before it, or has none (the caller parses it in
    full then, which refuses it with the reason).  For a report's header."""
    if len(data) > max_bytes:
        return None
    try:
        data = _recode(data)
    except XmlRefused:
        return None
    if _may_declare(data):
        return None
    parser = XMLPullParser(events=("end",))
    try:
        for at in range(0, len(data), _HEAD_CHUNK):
            parser.feed(data[at : at + _HEAD_CHUNK])
            for _, el in parser.read_events():
                if el.tag.rpartition("}")[2] == name:  # type: ignore[union-attr]
                    _strip_namespaces(el)  # type: ignore[arg-type]
                    return el  # type: ignore[return-value]
    except ParseError:
        return None
    return None


_HEAD_CHUNK = 2048  # a report's header ends within its first kilobyte or two


def _may_declare(data: bytes) -> bool:
    """Whether the document could hold a DTD or an entity declaration.  In an
    ASCII-compatible encoding (all that _recode leaves) a declaration is spelled
    `<!DOCTYPE` or `<!ENTITY`; a UTF-16/32 document is always checked."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        return True
    return b"<!DOCTYPE" in data or b"<!ENTITY" in data


def _check_declarations(data: bytes) -> None:
    """expat alone, with only the declaration handlers: refuse before anything expands."""
    check = expat.ParserCreate()

    def forbid(*_: object) -> None:
        raise _Forbidden

    check.StartDoctypeDeclHandler = forbid
    check.EntityDeclHandler = forbid
    check.UnparsedEntityDeclHandler = forbid
    check.ExternalEntityRefHandler = forbid
    check.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        check.Parse(data, True)
    except _Forbidden:
        raise XmlRefused(
            "XML with a DOCTYPE or entity declaration: refused (reports never need one, "
            "and entities can expand without bound)"
        ) from None
    except expat.ExpatError as e:
        raise XmlRefused(
            f"not well-formed XML: {expat.ErrorString(e.code)} at line {e.lineno}, "
            f"column {e.offset + 1}"
        ) from None


def _recode(data: bytes) -> bytes:
    """Decode an encoding expat does not know (windows-1252 is common in reports)
    with Python's codec, and hand expat UTF-8 with the declaration removed."""
    m = _DECL.match(data)
    if not m:
        return data
    name = m.group(1).decode("ascii").lower()
    if name in _EXPAT_ENCODINGS:
        return data
    try:
        codecs.lookup(name)
        text = data[m.end() :].decode(name)
    except (LookupError, UnicodeDecodeError) as e:
        raise XmlRefused(f"XML declares encoding {name!r}, which cannot decode it: {e}") from None
    return text.encode("utf-8")
