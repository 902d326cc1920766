"""What Jenkins hands back, read without a server: job XML compared with ours (changed, or
only Jenkins's defaults added) and the parameters in a job's or a build's api/json."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from typing import Any


def xml_digest(text: str) -> str:
    """md5 of canonical XML (JJB's "only push what changed"): whitespace, declaration, attribute
    order and plugin versions do not count; unparsable text is hashed as is."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return hashlib.md5(text.encode()).hexdigest()
    for element in root.iter():
        element.attrib.pop("plugin", None)
        if element.text is not None and not element.text.strip():
            element.text = None
        if element.tail is not None and not element.tail.strip():
            element.tail = None
    canonical = ET.canonicalize(ET.tostring(root, encoding="unicode"))
    return hashlib.md5(canonical.encode()).hexdigest()


def keeps(theirs: str, ours: str) -> bool:
    """Whether the server's XML holds all of ours: every element of ours, with its text and
    attributes (plugin versions aside), is there as many times, and what the server has
    besides is only fields (elements without children) inside elements of ours at paths ours
    never has: the defaults Jenkins fills in when it loads or saves a job. A changed value, a
    removed field, one more step or a trigger we no longer have is a difference."""
    try:
        mine, server = _elements(ET.fromstring(ours)), _elements(ET.fromstring(theirs))
    except ET.ParseError:
        return False
    paths = {path for path, _, _ in mine}
    extra = server - mine
    return not (mine - server) and all(
        leaf and path not in paths and path.rpartition("/")[0] in paths for path, _, leaf in extra
    )


def _elements(root: ET.Element, prefix: str = "") -> Counter[tuple[str, str, bool]]:
    """(path, attributes and text, whether it is a leaf) of every element of the tree."""
    path = f"{prefix}/{root.tag}"
    attrs = sorted((k, v) for k, v in root.attrib.items() if k != "plugin")
    leaf = len(root) == 0
    text = (root.text or "").strip() if leaf else ""
    found: Counter[tuple[str, str, bool]] = Counter({(path, f"{attrs}{text}", leaf): 1})
    for child in root:
        found += _elements(child, path)
    return found


def root_tag(text: str) -> str:
    try:
        return ET.fromstring(text).tag
    except ET.ParseError:
        return ""


def job_parameters(info: Mapping[str, Any]) -> dict[str, str | None] | None:
    """{name: default} of a parameterised job's job/api/json, or None when it takes none."""
    for prop in info.get("property") or []:
        definitions = (prop or {}).get("parameterDefinitions")
        if definitions is not None:
            return {
                str(d["name"]): _text((d.get("defaultParameterValue") or {}).get("value"))
                for d in definitions
            }
    return None


def build_parameters(build: Mapping[str, Any]) -> dict[str, str]:
    """The parameters a build ran with (its ParametersAction)."""
    found: dict[str, str] = {}
    for action in build.get("actions") or []:
        for param in (action or {}).get("parameters") or []:
            value = _text(param.get("value"))
            if value is not None:
                found[str(param["name"])] = value
    return found


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)
