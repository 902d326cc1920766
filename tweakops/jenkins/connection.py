"""Where the Jenkins server is and who we are on it: from the environment or a YAML file.

The API token never appears in a message or a repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml

from tweakops.errors import JenkinsError

NO_JENKINS = (
    "no Jenkins configured: set JENKINS_URL (and JENKINS_USER, JENKINS_API_TOKEN) "
    "or write ~/.config/tweakops/jenkins.yaml"
)


@dataclass(frozen=True)
class JenkinsConnection:
    url: str
    user: str | None = None
    token: str | None = field(default=None, repr=False)


def connection_from_env(
    env: Mapping[str, str] = os.environ, config_file: Path | None = None
) -> JenkinsConnection:
    """JENKINS_URL/JENKINS_USER/JENKINS_API_TOKEN, else the YAML file (url, user, token)."""
    if env.get("JENKINS_URL"):
        token = env.get("JENKINS_API_TOKEN") or env.get("JENKINS_TOKEN")
        return _connection(env["JENKINS_URL"], env.get("JENKINS_USER"), token, "JENKINS_USER")
    named = config_file or (
        Path(env["TWEAKOPS_JENKINS_CONFIG"]) if env.get("TWEAKOPS_JENKINS_CONFIG") else None
    )
    path = named or Path(env.get("HOME") or Path.home()) / ".config/tweakops/jenkins.yaml"
    if not path.is_file():
        if named:
            raise JenkinsError(f"Jenkins config file {path} does not exist: {NO_JENKINS}")
        raise JenkinsError(NO_JENKINS)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise JenkinsError(f"cannot read {path} ({type(exc).__name__}): fix its YAML") from None
    unknown = sorted(set(data) - {"url", "user", "token"}) if isinstance(data, dict) else ["?"]
    if unknown or not isinstance(data.get("url"), str):
        raise JenkinsError(f"{path} must be a mapping with url (and user, token), got {unknown}")
    user, token = data.get("user"), data.get("token")
    return _connection(data["url"], user and str(user), token and str(token), f"user in {path}")


def _connection(url: str, user: str | None, token: str | None, where: str) -> JenkinsConnection:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JenkinsError(f"Jenkins URL must be http(s)://host[:port][/path], got {safe_url(url)}")
    if parts.username and not user:  # credentials in the URL move out of it
        user, token = unquote(parts.username), unquote(parts.password or "") or token
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if bool(user) != bool(token):
        raise JenkinsError(
            f"{where} and the API token go together: set both (JENKINS_USER, "
            "JENKINS_API_TOKEN) or neither for anonymous access"
        )
    clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return JenkinsConnection(clean, user or None, token or None)


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
