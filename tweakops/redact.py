"""One redaction for everything a person or a file sees: errors, the console, the run store,
`status`, `runs`, the report and the email.

A URL's password (`https://user:pw@host`), a lone token in an http(s) URL's user part
(`https://ghp_xxx@host`) and secret query parameters (`?token=…`, `&password=…`) are shown
as ***; an ssh user name (`git@host`) is kept. Settings are secret by name (PASSWORD, TOKEN,
SECRET, API_KEY...): their values are never shown, and never handed to a trial.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<info>[^/@\s]+)@", re.I)
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|token|access_token|api_key|apikey|secret|key)=)"
    r"(?P<value>[^&#\s]+)",
    re.I,
)
_SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|TOKEN|SECRET|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL"
    r"|AUTH|COOKIE|SESSION|^PGPASS|_PAT$|^AWS_|^AZURE_|^GOOGLE_APPLICATION|^GCP_|^KUBECONFIG",
    re.I,
)


def redact(text: str) -> str:
    """`text` with every URL password, token and secret query value shown as ***."""
    return _SECRET_QUERY.sub(rf"\g<key>{MASK}", _URL_USERINFO.sub(_hide_userinfo, text))


def is_secret_name(name: str) -> bool:
    """A setting or environment variable whose value is a secret by its name."""
    return bool(_SECRET_NAME.search(name))


def redact_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping fit to show: secret-named values masked, URLs in the others redacted."""
    return {
        key: MASK if is_secret_name(key) else redact(v) if isinstance(v, str) else v
        for key, v in values.items()
    }


def redact_deep(value: Any) -> Any:
    """A JSON-like value with every string in it redacted (what the run store keeps)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_deep(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_deep(item) for item in value]
    return value


def _hide_userinfo(match: re.Match[str]) -> str:
    user, colon, _secret = match["info"].partition(":")
    if colon:
        return f"{match['scheme']}{user}:{MASK}@"
    web = match["scheme"].lower().startswith("http")
    return f"{match['scheme']}{MASK if web else user}@"
