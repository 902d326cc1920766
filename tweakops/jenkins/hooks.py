"""`tweakops hook`: a post-receive hook that hands every push to Jenkins, or runs it locally.

`install_hook` writes two files into a bare repository:

- `hooks/post-receive`, a small POSIX sh script. For each pushed branch (not tags, not
  deletions) it runs `python -m tweakops hook received --bare=... --ref=BRANCH --sha=NEWREV`
  with git's own variables (GIT_DIR, GIT_QUARANTINE_PATH, ...) unset, so that tweakops
  pulls from the bare repository like any other client. Pushed values travel as quoted
  arguments, never as shell text.
- `tweakops-hook.json`, the settings: Jenkins job and URL, run store, Python interpreter,
  branch filter. Never credentials: the hook process reads JENKINS_USER / JENKINS_API_TOKEN
  from the git server's environment or the Jenkins client's config file.

An existing post-receive hook that tweakops did not write is kept: `install` refuses
unless forced, and when forced renames it to `post-receive.pre-tweakops` and the new hook
runs it first, with the same input and git's environment.

`handle_push` (the `received` command) never fails a push, which has happened already: it
returns one line for the pusher, and errors become that line. Without Jenkins it starts
`tweakops run BARE --ref SHA` detached (log in HOME/hook-logs); runs of one repository take
a lock and go one after another, since they share that repository's clone in the store.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shlex
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import git

from tweakops.errors import ConfigError, RepoError, TweakopsError
from tweakops.files import atomic_write, fsync_dir
from tweakops.jenkins.hook_local import printable, start_local_run
from tweakops.store import default_home

if TYPE_CHECKING:  # python-jenkins is an optional dependency: imported when a push needs it
    from tweakops.jenkins.client import JenkinsConnection

HOOK_NAME = "post-receive"
SETTINGS_FILE = "tweakops-hook.json"
CHAINED_SUFFIX = ".pre-tweakops"
DEFAULT_JOB = "job1-pull"  # with jobs/settings.yaml's prefix: what a push triggers by default
JENKINS_TIMEOUT = 10.0  # seconds per request: the pusher waits for the hook
MARKER = "# tweakops post-receive hook"
PREFIX = "tweakops: "
_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_ZERO_RE = re.compile(r"^0+$")
_JOB_RE = re.compile(r"^[^\x00-\x1f\x7f]+$")

_HOOK_TEMPLATE = """\
#!/bin/sh
{marker}: written by `tweakops hook install`; run that again to change it.
# Settings: {settings} in this repository. No credentials: JENKINS_USER and
# JENKINS_API_TOKEN come from the git server's environment or
# ~/.config/tweakops/jenkins.yaml. A push never fails because of this hook.
python={python}
bare={bare}
input=$(cat)
chained="$bare/hooks/{hook}{chained}"
if [ -x "$chained" ]; then
    printf '%s\\n' "$input" | "$chained" "$@"
fi
# git's variables (GIT_DIR, GIT_QUARANTINE_PATH, ...) would point tweakops at this repo
for name in $(env | sed -n 's/^\\(GIT_[A-Za-z0-9_]*\\)=.*/\\1/p'); do
    unset "$name"
done
cd / || exit 0
printf '%s\\n' "$input" | while read -r old new ref; do
    case $ref in refs/heads/*) ;; *) continue ;; esac
    case $new in *[!0]*) ;; *) continue ;; esac
    "$python" -m tweakops hook received "--bare=$bare" "--ref=${{ref#refs/heads/}}" \\
        "--sha=$new" </dev/null
done
exit 0
"""


@dataclass(frozen=True)
class HookSettings:
    """What the installed hook does with a push; stored as tweakops-hook.json."""

    python: str
    home: str
    jenkins_job: str | None = None
    jenkins_url: str | None = None
    branches: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "home": self.home,
            "jenkins_job": self.jenkins_job,
            "jenkins_url": self.jenkins_url,
            "branches": list(self.branches),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HookSettings:
        return cls(
            python=str(data.get("python") or sys.executable),
            home=str(data.get("home") or default_home()),
            jenkins_job=data.get("jenkins_job") or None,
            jenkins_url=data.get("jenkins_url") or None,
            branches=tuple(data.get("branches") or ()),
        )

    def watches(self, branch: str) -> bool:
        """True when BRANCH matches the filter (names or fnmatch patterns; none = all)."""
        return not self.branches or any(fnmatch.fnmatchcase(branch, p) for p in self.branches)


def install_hook(
    bare_repo: Path,
    jenkins_job: str | None = None,
    jenkins_url: str | None = None,
    tweakops_home: Path | None = None,
    branches: tuple[str, ...] = (),
    *,
    force: bool = False,
) -> Path:
    """Write BARE_REPO/hooks/post-receive (0755) and its settings; return the hook's path."""
    bare = _bare_repo(bare_repo)
    settings = HookSettings(
        python=sys.executable,
        home=str((tweakops_home or default_home()).expanduser().resolve()),
        jenkins_job=_check_job(jenkins_job),
        jenkins_url=_check_url(jenkins_url),
        branches=tuple(_check_branch(b) for b in branches),
    )
    hooks = bare / "hooks"
    hook = hooks / HOOK_NAME
    _keep_existing(hook, force)
    atomic_write(bare / SETTINGS_FILE, json.dumps(settings.to_dict(), indent=2) + "\n")
    text = _HOOK_TEMPLATE.format(
        marker=MARKER,
        settings=SETTINGS_FILE,
        python=shlex.quote(settings.python),
        bare=shlex.quote(str(bare)),
        hook=HOOK_NAME,
        chained=CHAINED_SUFFIX,
    )
    _write_executable(hook, text)
    return hook


def load_settings(bare_repo: Path) -> HookSettings:
    """The installed settings, or the defaults when the hook was set up by hand."""
    path = bare_repo / SETTINGS_FILE
    if not path.exists():
        return HookSettings.from_dict({})
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return HookSettings.from_dict(data)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc}; run `tweakops hook install {bare_repo}` again"
        ) from None


def handle_push(bare_repo: Path, branch: str, sha: str) -> str:
    """Trigger Jenkins or start the local pipeline for one pushed branch; one line, no raise."""
    try:
        return _handle_push(bare_repo, branch, sha)
    except Exception as exc:  # the push happened: report, never fail it
        return f"{PREFIX}hook failed: {_one_line(exc)}"


def _handle_push(bare_repo: Path, branch: str, sha: str) -> str:
    branch = branch.removeprefix("refs/heads/")
    shown = printable(branch)
    if _ZERO_RE.match(sha):
        return f"{PREFIX}{shown} was deleted; nothing to do"
    if not _SHA_RE.match(sha):
        return f"{PREFIX}ignoring {shown}: {printable(sha)!r} is not a full commit id"
    try:
        settings = load_settings(bare_repo)
    except ConfigError as exc:
        return f"{PREFIX}{exc}"
    if not settings.watches(branch):
        return f"{PREFIX}ignoring {shown}: the hook watches {', '.join(settings.branches)}"
    job = settings.jenkins_job or (default_job() if os.environ.get("JENKINS_URL") else None)
    if job:
        try:
            return trigger_jenkins(job, settings.jenkins_url, sha, branch)
        except ImportError as exc:
            return (
                f"{PREFIX}could not trigger Jenkins: {exc.name or exc} is not installed for "
                f"{sys.executable}: pip install 'tweakops[jenkins]'"
            )
        except Exception as exc:
            return f"{PREFIX}could not trigger Jenkins: {_one_line(exc)}"
    try:
        log = start_local_run(settings, bare_repo, branch, sha)
    except Exception as exc:
        return f"{PREFIX}could not start the local pipeline: {_one_line(exc)}"
    return f"{PREFIX}running the pipeline locally for {shown}@{sha[:12]}; log: {log}"


def trigger_jenkins(job: str, url: str | None, sha: str, branch: str) -> str:
    """Start JOB with REF=SHA and BRANCH=<the pushed branch> (those of them the job takes);
    the line to show the pusher."""
    from tweakops.jenkins.client import JenkinsClient

    client = JenkinsClient(jenkins_connection(url), timeout=JENKINS_TIMEOUT)
    queued = client.trigger(job, optional={"REF": sha, "BRANCH": branch})
    pushed = f"{printable(branch)}@{sha[:12]}"
    line = f"{PREFIX}triggered {job} for {pushed} (queue item {queued.queue_id})"
    if "REF" not in queued.params:  # a Pipeline job has its parameters after its first build
        line += f"; {job} takes no REF parameter (yet): it builds its own branch"
    return line


def jenkins_connection(url: str | None, env: Mapping[str, str] | None = None) -> JenkinsConnection:
    """The client's connection, at the installed URL when there is one.

    Credentials come from JENKINS_USER / JENKINS_API_TOKEN, else from the client's config
    file, but that file's token only goes to the server the file names.
    """
    from tweakops.errors import JenkinsError
    from tweakops.jenkins.client import connection_from_env

    env = os.environ if env is None else env
    if not url:
        return connection_from_env(env)
    if any(env.get(k) for k in ("JENKINS_USER", "JENKINS_API_TOKEN", "JENKINS_TOKEN")):
        return connection_from_env({**env, "JENKINS_URL": url})
    installed = connection_from_env({"JENKINS_URL": url})  # anonymous unless the file matches
    try:
        saved = connection_from_env({k: v for k, v in env.items() if k != "JENKINS_URL"})
    except JenkinsError:
        return installed
    return saved if saved.url == installed.url else installed


def _bare_repo(path: Path) -> Path:
    path = path.expanduser()
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise RepoError(f"{path} {state}: give the bare repository that receives the pushes")
    try:
        repo = git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepoError(
            f"{path} is not a git repository: give the bare repository that receives the "
            "pushes (`git init --bare NAME.git`)"
        ) from None
    if not repo.bare:
        raise RepoError(
            f"{path} is a work tree, not a bare repository: pushes land in a bare one "
            "(`git clone --bare` it and push there)"
        )
    hooks_path = ""
    with contextlib.suppress(Exception), repo.config_reader() as config:
        hooks_path = str(config.get_value("core", "hooksPath", ""))
    if hooks_path:
        raise RepoError(
            f"core.hooksPath is {hooks_path}, so git ignores {path}/hooks: "
            f"unset it (`git -C {path} config --unset core.hooksPath`)"
        )
    return Path(repo.git_dir).resolve()


def _keep_existing(hook: Path, force: bool) -> None:
    if not hook.exists() and not hook.is_symlink():
        return
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if MARKER in hook.read_text(encoding="utf-8"):
            return  # ours: rewrite it
    kept = hook.with_name(HOOK_NAME + CHAINED_SUFFIX)
    if not force:
        raise RepoError(
            f"{hook} exists and tweakops did not write it: give --force to keep it as "
            f"{kept.name} and run it before tweakops"
        )
    if kept.exists() or kept.is_symlink():
        raise RepoError(f"{kept} exists too: merge the two hooks by hand, then install again")
    os.replace(hook, kept)


def _write_executable(path: Path, text: str) -> None:
    """Atomic write that is executable before it appears under its name."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_dir(path.parent)


def default_job() -> str:
    """job1 as `tweakops jenkins sync` names it: jobs/settings.yaml's prefix + job1-pull."""
    from tweakops.jenkins.jobs import load_settings

    try:
        return f"{load_settings().prefix}{DEFAULT_JOB}"
    except TweakopsError:
        return DEFAULT_JOB


def _check_job(job: str | None) -> str | None:
    if job is not None and not (_JOB_RE.match(job) and job.strip() == job and job):
        raise ConfigError(f"Jenkins job {job!r}: give the job's name, e.g. {DEFAULT_JOB}")
    return job


def _check_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Jenkins URL {url!r}: give http(s)://host[:port][/path]")
    if parts.username or parts.password:
        raise ConfigError(
            "Jenkins URL contains a user or password: give the URL alone; the hook reads "
            "JENKINS_USER and JENKINS_API_TOKEN from the git server's environment or "
            "~/.config/tweakops/jenkins.yaml"
        )
    return url.rstrip("/")


def _check_branch(branch: str) -> str:
    name = branch.removeprefix("refs/heads/")
    if not name or any(ord(c) < 32 or c in " \x7f" for c in name):
        raise ConfigError(f"--branch {branch!r}: give a branch name or a pattern like release/*")
    return name


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]
