"""Stage 1, pull: clone or fast-forward the user's repository at a ref, with gitpython."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tarfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import git

from tweakops.errors import RepoError

ALLOWED_SOURCES = "a local git folder, or a file://, https://, http://, ssh:// or git@host:path URL"
_URL_RE = re.compile(r"^(?:https?|ssh|file)://(?P<authority>[^/]*)", re.IGNORECASE)
_SCP_RE = re.compile(r"^[A-Za-z0-9._~-]+@(?P<host>[A-Za-z0-9.-]+):(?!//)")
_HELPER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_OPTION_RE = re.compile(r"(?:^|\s)-+[A-Za-z]")
_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]*$")
_SHA_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")
_GIT_NOISE = ("Cloning into", "Please make sure", "and the repository exists", "hint:")
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}  # fail instead of waiting for a password nobody types


@dataclass(frozen=True)
class PullResult:
    """What stage 1 pulled: the commit, where it came from and what changed since last time."""

    source: str
    url: str
    subdir: str
    ref: str | None
    sha: str
    branch: str | None
    clone_dir: str
    previous_sha: str | None
    changed_files: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PullResult:
        """Inverse of to_dict; unknown keys are ignored."""
        values = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        values |= {k: tuple(values.get(k, ())) for k in ("changed_files", "warnings")}
        return cls(**values)


@dataclass(frozen=True)
class _Origin:
    source: str
    url: str
    subdir: str = ""
    head_sha: str | None = None  # the local work tree's HEAD: the default ref for local folders
    head_branch: str | None = None
    warnings: tuple[str, ...] = ()


def check_source(source: str) -> None:
    """Raise RepoError when SOURCE is an option, a command-running transport or a bad URL."""
    url, scp = _URL_RE.match(source), _SCP_RE.match(source)
    hosts = re.split(r"[@:]", url["authority"]) if url else [scp["host"]] if scp else []
    problems = {
        "it is empty": not source.strip(),
        "it contains control characters": any(ord(c) < 32 or ord(c) == 127 for c in source),
        "remote-helper transports (ext::, fd::, ...) run commands": _HELPER_RE.match(source),
        "it contains a git option (-x, --upload-pack, --config, ...)": _OPTION_RE.search(source),
        "its URL scheme is not allowed": "://" in source and url is None,
        "a user or host may not start with '-'": any(h.startswith("-") for h in hosts),
    }
    problem = next((text for text, bad in problems.items() if bad), None)
    if problem:
        raise RepoError(f"refusing source {source!r}: {problem}; give {ALLOWED_SOURCES}")


def check_ref(ref: str) -> None:
    """Raise RepoError when REF could be read as an option or a revision expression."""
    bad = not _REF_RE.match(ref) or ".." in ref or "//" in ref
    if bad or ref.endswith(("/", ".", ".lock")):
        raise RepoError(
            f"refusing ref {ref!r}: give a branch, tag or commit sha "
            "(letters, digits and . _ / + - ; not starting with -)"
        )


def pull(source: str, repos_dir: Path, ref: str | None = None) -> PullResult:
    """Clone SOURCE (or fetch into our existing clone) and check out REF detached."""
    check_source(source)
    if ref is not None:
        check_ref(ref)
    _check_environment()
    origin = _locate(source)
    clone_dir = _clone_dir(repos_dir, origin.url)
    repo, previous = _open_or_clone(origin.url, clone_dir)
    sha, branch = _resolve(repo, ref, origin)
    if origin.subdir and not repo.git.ls_tree("-d", sha, "--", origin.subdir):
        raise RepoError(
            f"{origin.subdir} is not in commit {sha[:12]} ({ref or 'HEAD'}) of {origin.url}: "
            "commit that folder, or give a ref that has it"
        )
    repo.git.checkout("--force", "--detach", sha)
    repo.git.clean("-ffdxq")
    changed = _changed_files(repo, previous, sha, origin.subdir)
    return PullResult(
        origin.source, origin.url, origin.subdir, ref, sha, branch,
        str(clone_dir), previous, changed, origin.warnings,
    )  # fmt: skip


def export_tree(clone_dir: Path, sha: str, subdir: str, dest: Path) -> None:
    """Write the files of commit SHA under SUBDIR into DEST as a plain folder without .git."""
    repo = _open(clone_dir)
    treeish = f"{sha}:{subdir}" if subdir else sha
    dest.mkdir(parents=True, exist_ok=True)
    proc: Any = repo.git.archive("--format=tar", treeish, as_process=True)
    tar_error: Exception | None = None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            extract_safely(tar, dest)
    except (tarfile.TarError, OSError) as exc:
        tar_error = exc
        proc.stdout.close()  # unblock git if it is still writing
    try:
        proc.wait()
    except git.GitCommandError as exc:
        if tar_error is None or isinstance(tar_error, tarfile.ReadError):  # git wrote no tar
            message = f"{_git_message(exc)}; check the commit and folder, or pull again"
            raise RepoError(f"cannot export {treeish} from {clone_dir}: {message}") from None
    if tar_error:
        links = isinstance(tar_error, UnsafeMember | getattr(tarfile, "FilterError", UnsafeMember))
        hint = "keep links inside the repository" if links else f"check that {dest} is writable"
        raise RepoError(f"cannot export {treeish} to {dest}: {tar_error}; {hint}")


class UnsafeMember(tarfile.TarError):
    """A member that would land outside the folder, or is not a file, folder or inner link."""


def extract_safely(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract with the "data" filter (Python 3.11.4+), or, on older 3.11 (Debian 12 has
    3.11.2), member by member after the same checks: no absolute or `..` path, no link that
    leads outside `dest`, no device or FIFO."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar:
        check_member(member, root)
        tar.extract(member, dest, set_attrs=False)


def check_member(member: tarfile.TarInfo, root: Path) -> None:
    """UnsafeMember unless `member` stays inside `root` as a file, a folder or an inner link."""
    target = (root / member.name).resolve()
    if member.name.startswith("/") or not target.is_relative_to(root):
        raise UnsafeMember(f"{member.name!r} would be written outside {root}")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeMember(f"{member.name!r} is a device or a FIFO")
    if member.issym() or member.islnk():
        base = target.parent if member.issym() else root
        link = (base / member.linkname).resolve()
        if member.linkname.startswith("/") or not link.is_relative_to(root):
            raise UnsafeMember(f"{member.name!r} links outside {root} ({member.linkname!r})")


def _check_environment() -> None:
    if found := [name for name in _REPO_ENV if os.environ.get(name)]:
        raise RepoError(f"{found[0]} is set (as in a git hook): unset it, or git uses that repo")


def _locate(source: str) -> _Origin:
    if "://" in source or _SCP_RE.match(source):
        return _Origin(source=source, url=source)
    path = Path(source).resolve()
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise RepoError(f"{source} {state}: give {ALLOWED_SOURCES}")
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepoError(
            f"{path} is not a git repository: run `git init && git add -A && "
            "git commit -m init` there, or give a clone URL"
        ) from None
    if repo.bare or repo.working_tree_dir is None:
        return _Origin(source=str(path), url=str(Path(repo.git_dir).resolve()))
    root = Path(str(repo.working_tree_dir)).resolve()
    subdir = "" if path == root else path.relative_to(root).as_posix()
    try:
        head = repo.head.commit.hexsha
    except ValueError:
        raise RepoError(f"{root} has no commits yet: commit your files there, then pull") from None
    branch = None if repo.head.is_detached else repo.active_branch.name
    warnings = _uncommitted(repo, subdir or str(root), subdir)
    return _Origin(str(path), str(root), subdir, head, branch, warnings)


# What tweakops itself writes into a Jenkins workspace that is also the ML repository's checkout
# (the Jenkinsfile from SCM): the run store and a build's outputs are not the user's changes.
OWN_OUTPUTS = (
    ".tweakops/",
    "tweakops-artifacts/",
    "tweakops-junit.xml",
    "tweakops-run.properties",
    "tweakops-resumed/",
)


def _uncommitted(repo: git.Repo, label: str, subdir: str) -> tuple[str, ...]:
    repo.git.update_environment(GIT_OPTIONAL_LOCKS="0")  # read-only: do not touch their index
    out = repo.git.status("--porcelain", "-z", "--no-renames", "--", subdir or ".")
    paths = [
        entry[3:]
        for entry in out.split("\0")
        if len(entry) > 3 and not entry[3:].startswith(OWN_OUTPUTS)
    ]
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    warning = f"uncommitted changes in {label} ({shown}) are not used: commit them to train them"
    return (warning,) if paths else ()


def _clone_dir(repos_dir: Path, url: str) -> Path:
    last = re.split(r"[/:]", url.rstrip("/"))[-1].removesuffix(".git")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", last).strip(".-") or "repo"
    digest = hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:10]
    return repos_dir.resolve() / f"{slug}-{digest}"


def _open(clone_dir: Path) -> git.Repo:
    _check_environment()
    try:
        repo = git.Repo(clone_dir)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepoError(f"{clone_dir} is not a git clone of ours: delete it, then pull") from None
    repo.git.update_environment(**_GIT_ENV)
    return repo


def _open_or_clone(url: str, clone_dir: Path) -> tuple[git.Repo, str | None]:
    if (clone_dir / ".git").is_dir():
        repo = _open(clone_dir)
        try:
            repo.git.fetch("--tags", "--prune", "--force", "origin")
        except git.GitCommandError as exc:
            raise RepoError(
                f"cannot fetch {url}: {_git_message(exc)}; check the URL and your access, "
                f"or delete {clone_dir} to clone afresh"
            ) from None
        with contextlib.suppress(git.GitCommandError):  # an empty remote has no HEAD
            repo.git.remote("set-head", "origin", "--auto")  # follow a changed default branch
        return repo, repo.head.commit.hexsha if repo.head.is_detached else None
    shutil.rmtree(clone_dir, ignore_errors=True)  # a broken clone of ours: start again
    return _clone(url, clone_dir), None


def _clone(url: str, clone_dir: Path) -> git.Repo:
    tmp = clone_dir.with_name(f".{clone_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    clone_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        git.Repo.clone_from(url, tmp, env=_GIT_ENV, no_checkout=True)
    except git.GitCommandError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RepoError(
            f"cannot clone {url}: {_git_message(exc)}; check that the repository exists "
            "and that you have access (ssh key or credentials)"
        ) from None
    with contextlib.suppress(OSError):  # when another pull finished first, use its clone
        os.replace(tmp, clone_dir)  # a half-made clone is never seen under its real name
    shutil.rmtree(tmp, ignore_errors=True)
    return _open(clone_dir)


def _resolve(repo: git.Repo, ref: str | None, origin: _Origin) -> tuple[str, str | None]:
    if ref is None or ref == "HEAD":
        return _default_commit(repo, origin)
    if sha := _rev(repo, f"refs/remotes/origin/{ref}"):
        return sha, ref
    sha = _rev(repo, f"refs/tags/{ref}") or (_SHA_RE.match(ref) and _rev(repo, ref, fetch=True))
    if not sha:
        raise RepoError(
            f"ref {ref!r} not found in {origin.url}: give a branch, tag or commit sha "
            f"(branches: {_branch_list(repo)})"
        )
    return sha, None


def _default_commit(repo: git.Repo, origin: _Origin) -> tuple[str, str | None]:
    if origin.head_sha:  # a local work tree: train what is checked out there
        if _rev(repo, origin.head_sha, fetch=True):
            return origin.head_sha, origin.head_branch
        raise RepoError(
            f"commit {origin.head_sha[:12]} checked out in {origin.url} cannot be fetched: "
            "commit on a branch, or give --ref"
        )
    with contextlib.suppress(git.GitCommandError):
        head = repo.git.symbolic_ref("--quiet", "refs/remotes/origin/HEAD")
        if sha := _rev(repo, head):
            return sha, head.removeprefix("refs/remotes/origin/")
    if _branch_list(repo) == "none":
        raise RepoError(f"{origin.url} has no commits yet: push a commit, then pull again")
    raise RepoError(f"{origin.url} has no default branch: give --ref, one of {_branch_list(repo)}")


def _rev(repo: git.Repo, name: str, fetch: bool = False) -> str | None:
    with contextlib.suppress(git.GitCommandError):
        return str(repo.git.rev_parse("--verify", "--quiet", f"{name}^{{commit}}"))
    if fetch and len(name) in (40, 64):  # only full shas can be fetched by id
        with contextlib.suppress(git.GitCommandError):
            repo.git.fetch("origin", name)
            return _rev(repo, name)
    return None


def _branch_list(repo: git.Repo, limit: int = 8) -> str:
    out = repo.git.for_each_ref("--format=%(refname:lstrip=3)", "refs/remotes/origin")
    names = [name for name in out.splitlines() if name and name != "HEAD"]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return (", ".join(names[:limit]) + more) or "none"


def _changed_files(repo: git.Repo, previous: str | None, sha: str, subdir: str) -> tuple[str, ...]:
    if previous == sha:
        return ()
    if previous is None or _rev(repo, previous) is None:
        out = repo.git.ls_tree("-r", "--name-only", "-z", f"{sha}:{subdir}" if subdir else sha)
    else:
        relative = [f"--relative={subdir}"] if subdir else []
        out = repo.git.diff("--name-only", "-z", "--no-renames", *relative, previous, sha)
    return tuple(path for path in out.split("\0") if path)


def _git_message(exc: git.GitCommandError) -> str:
    text = str(exc.stderr or exc).strip().removeprefix("stderr:").strip().strip("'")
    lines = (line.strip() for line in text.splitlines())
    return next((line for line in lines if line and not line.startswith(_GIT_NOISE)), "git failed")
