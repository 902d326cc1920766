"""Stage 1 against real git repositories: a bare remote, a work clone, commits and pushes."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tweakops.errors import RepoError
from tweakops.pull.git import PullResult, check_source, export_tree, pull


def git(cwd: Path, *args: str) -> str:
    """Run git in CWD and return its stripped stdout."""
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@dataclass(frozen=True)
class Remote:
    """A bare repository and a work clone that pushes to it."""

    bare: Path
    work: Path

    def commit(self, files: dict[str, str | None], push: bool = True) -> str:
        """Write (or delete, for None) FILES, commit them, push, and return the new sha."""
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", f"change {', '.join(files)}")
        if push:
            git(self.work, "push", "-q", "origin", "HEAD")
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A remote with one commit on main: train.py, README.md, data/a.csv."""
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "config", "user.name", "Test User")
    git(work, "config", "user.email", "test@example.com")
    git(work, "config", "commit.gpgsign", "false")
    made = Remote(bare, work)
    made.commit({"train.py": "print('v1')\n", "README.md": "hi\n", "data/a.csv": "1,2\n"})
    return made


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    """Where pull keeps its clones."""
    return tmp_path / "repos"


def test_first_pull_clones_and_records_sha_and_every_file(remote: Remote, repos: Path) -> None:
    result = pull(str(remote.bare), repos)
    assert result.sha == git(remote.work, "rev-parse", "HEAD")
    assert (result.branch, result.previous_sha, result.subdir) == ("main", None, "")
    assert set(result.changed_files) == {"train.py", "README.md", "data/a.csv"}
    assert result.url == str(remote.bare.resolve())
    assert (Path(result.clone_dir) / "train.py").read_text() == "print('v1')\n"
    assert Path(result.clone_dir).parent == repos.resolve()


def test_second_pull_fast_forwards_and_lists_only_changed_files(
    remote: Remote, repos: Path
) -> None:
    first = pull(str(remote.bare), repos)
    sha = remote.commit({"train.py": "print('v2')\n", "new.py": "", "README.md": None})
    second = pull(str(remote.bare), repos)
    assert (second.sha, second.previous_sha) == (sha, first.sha)
    assert set(second.changed_files) == {"train.py", "new.py", "README.md"}
    assert second.clone_dir == first.clone_dir
    assert (Path(second.clone_dir) / "train.py").read_text() == "print('v2')\n"
    assert not (Path(second.clone_dir) / "README.md").exists()
    third = pull(str(remote.bare), repos)
    assert (third.sha, third.previous_sha, third.changed_files) == (sha, sha, ())


def test_pull_follows_a_force_pushed_history(remote: Remote, repos: Path) -> None:
    pull(str(remote.bare), repos)
    git(remote.work, "commit", "-q", "--amend", "-m", "rewritten")
    git(remote.work, "push", "-q", "--force", "origin", "HEAD")
    result = pull(str(remote.bare), repos)
    assert result.sha == git(remote.work, "rev-parse", "HEAD")
    assert result.changed_files == ()  # same tree, new commit


def test_ref_branch_checks_out_that_branch(remote: Remote, repos: Path) -> None:
    git(remote.work, "checkout", "-q", "-b", "dev")
    sha = remote.commit({"train.py": "print('dev')\n"})
    result = pull(str(remote.bare), repos, ref="dev")
    assert (result.sha, result.branch, result.ref) == (sha, "dev", "dev")
    assert (Path(result.clone_dir) / "train.py").read_text() == "print('dev')\n"


def test_ref_tag_checks_out_the_tagged_commit(remote: Remote, repos: Path) -> None:
    tagged = git(remote.work, "rev-parse", "HEAD")
    git(remote.work, "tag", "-a", "v1.0", "-m", "release")
    git(remote.work, "push", "-q", "origin", "v1.0")
    remote.commit({"train.py": "print('v2')\n"})
    result = pull(str(remote.bare), repos, ref="v1.0")
    assert (result.sha, result.branch) == (tagged, None)


@pytest.mark.parametrize("length", [7, 40])
def test_ref_sha_full_or_abbreviated(remote: Remote, repos: Path, length: int) -> None:
    old = git(remote.work, "rev-parse", "HEAD")
    remote.commit({"train.py": "print('v2')\n"})
    result = pull(str(remote.bare), repos, ref=old[:length])
    assert (result.sha, result.branch) == (old, None)
    assert (Path(result.clone_dir) / "train.py").read_text() == "print('v1')\n"


def test_unknown_ref_names_it_and_lists_branches(remote: Remote, repos: Path) -> None:
    git(remote.work, "push", "-q", "origin", "HEAD:refs/heads/feature-x")
    with pytest.raises(RepoError, match=r"ref 'nope' not found in .*branches: feature-x, main"):
        pull(str(remote.bare), repos, ref="nope")


@pytest.mark.parametrize(
    "template",
    [
        "ext::sh -c touch% {marker}",
        "--upload-pack=touch {marker}",
        "-u touch {marker}",
        "-oProxyCommand=touch {marker}",
        "--config=core.sshCommand=touch {marker}",
        "ssh://-oProxyCommand=touch%20{marker}/repo",
        "git@-oProxy.example:repo",
        "fd::17",
        "ftp://example.com/repo.git",
        "",
    ],
)
def test_unsafe_source_is_refused_before_git_runs(tmp_path: Path, template: str) -> None:
    marker, repos = tmp_path / "pwned", tmp_path / "repos"
    source = template.format(marker=marker)
    with pytest.raises(RepoError, match=r"refusing source .*: .*; give a local git folder"):
        pull(source, repos)
    assert not marker.exists()
    assert not repos.exists()


def test_ext_transport_is_named_as_the_reason(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match=r"remote-helper transports \(ext::, fd::, ...\) run"):
        check_source(f"ext::sh -c touch% {tmp_path / 'pwned'}")


@pytest.mark.parametrize("ref", ["--exec=x", "-b", "main..dev", "a b", "HEAD@{1}", "x;id", "v1/"])
def test_unsafe_ref_is_refused_before_git_runs(remote: Remote, repos: Path, ref: str) -> None:
    with pytest.raises(RepoError, match=r"refusing ref .*: give a branch, tag or commit sha"):
        pull(str(remote.bare), repos, ref=ref)
    assert not repos.exists()


@pytest.mark.parametrize(
    "source", ["https://github.com/o/r.git", "ssh://git@host:22/r", "git@github.com:o/r.git"]
)
def test_clone_urls_pass_the_source_check(source: str) -> None:
    check_source(source)


def test_file_url_is_cloned(remote: Remote, repos: Path) -> None:
    url = remote.bare.as_uri()
    result = pull(url, repos)
    assert (result.url, result.source) == (url, url)
    assert result.sha == git(remote.work, "rev-parse", "HEAD")


def test_subfolder_of_a_work_tree_pulls_its_committed_head(remote: Remote, repos: Path) -> None:
    sha = remote.commit({"examples/cnn/train.py": "print('cnn')\n"}, push=False)
    result = pull(str(remote.work / "examples" / "cnn"), repos)
    assert (result.subdir, result.url, result.sha) == ("examples/cnn", str(remote.work), sha)
    assert (result.branch, result.changed_files, result.warnings) == ("main", ("train.py",), ())


def test_relative_subfolder_is_made_absolute(
    remote: Remote, repos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote.commit({"examples/cnn/train.py": "print('cnn')\n"})
    monkeypatch.chdir(remote.work)
    result = pull("examples/cnn", repos)
    assert result.source == str(remote.work / "examples" / "cnn")


def test_second_pull_of_subfolder_lists_only_its_changes(remote: Remote, repos: Path) -> None:
    remote.commit({"examples/cnn/train.py": "print('cnn')\n", "examples/cnn/x.py": ""})
    first = pull(str(remote.work / "examples" / "cnn"), repos)
    remote.commit({"examples/cnn/x.py": "x = 1\n", "README.md": "changed\n"})
    second = pull(str(remote.work / "examples" / "cnn"), repos)
    assert second.previous_sha == first.sha
    assert second.changed_files == ("x.py",)


def test_uncommitted_change_gives_a_warning_and_is_not_used(
    remote: Remote, repos: Path, tmp_path: Path
) -> None:
    remote.commit({"examples/cnn/train.py": "print('committed')\n"})
    (remote.work / "examples" / "cnn" / "train.py").write_text("print('edited')\n")
    result = pull(str(remote.work / "examples" / "cnn"), repos)
    assert len(result.warnings) == 1
    assert "uncommitted changes in examples/cnn" in result.warnings[0]
    assert "examples/cnn/train.py" in result.warnings[0]
    assert "commit them to train them" in result.warnings[0]
    export_tree(Path(result.clone_dir), result.sha, result.subdir, tmp_path / "copy")
    assert (tmp_path / "copy" / "train.py").read_text() == "print('committed')\n"


def test_folder_outside_any_git_repository_says_how_to_make_one(
    tmp_path: Path, repos: Path
) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepoError, match=r"plain is not a git repository: run `git init && git"):
        pull(str(tmp_path / "plain"), repos)


def test_nonexistent_path_is_an_error(tmp_path: Path, repos: Path) -> None:
    with pytest.raises(RepoError, match=r"does-not-exist does not exist: give a local git folder"):
        pull(str(tmp_path / "does-not-exist"), repos)


def test_clone_failure_shows_gits_reason(tmp_path: Path, repos: Path) -> None:
    url = (tmp_path / "missing.git").as_uri()
    with pytest.raises(RepoError, match=r"cannot clone .*missing.git: .*; check that the repo"):
        pull(url, repos)
    assert list(repos.iterdir()) == []  # no half-made clone left behind


def test_empty_remote_asks_for_a_first_commit(tmp_path: Path, repos: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "empty.git")
    with pytest.raises(RepoError, match="has no commits yet: push a commit"):
        pull(str(tmp_path / "empty.git"), repos)


def test_git_dir_in_the_environment_is_refused(
    remote: Remote, repos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", str(remote.bare))
    with pytest.raises(RepoError, match=r"GIT_DIR is set .*: unset it"):
        pull(str(remote.bare), repos)


def test_export_tree_writes_a_plain_copy_of_the_subfolder(
    remote: Remote, repos: Path, tmp_path: Path
) -> None:
    remote.commit({"examples/cnn/train.py": "print('cnn')\n", "examples/cnn/run.sh": "#!/bin/sh\n"})
    os.chmod(remote.work / "examples" / "cnn" / "run.sh", 0o755)
    remote.commit({})
    result = pull(str(remote.bare), repos)
    dest = tmp_path / "trial" / "src"
    export_tree(Path(result.clone_dir), result.sha, "examples/cnn", dest)
    assert sorted(p.name for p in dest.iterdir()) == ["run.sh", "train.py"]
    assert os.access(dest / "run.sh", os.X_OK)
    assert not os.access(dest / "train.py", os.X_OK)


def test_export_tree_of_the_whole_repository_has_no_git_folder(
    remote: Remote, repos: Path, tmp_path: Path
) -> None:
    result = pull(str(remote.bare), repos)
    export_tree(Path(result.clone_dir), result.sha, "", tmp_path / "copy")
    files = {p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*")}
    assert files == {"train.py", "README.md", "data", "data/a.csv"}


def test_export_tree_refuses_links_that_leave_the_repository(
    remote: Remote, repos: Path, tmp_path: Path
) -> None:
    (remote.work / "hostname").symlink_to("/etc/hostname")
    result = pull(str(remote.bare), repos, ref=remote.commit({}))
    with pytest.raises(RepoError, match=r"to .*copy: .*; keep links inside the repository"):
        export_tree(Path(result.clone_dir), result.sha, "", tmp_path / "copy")


def test_export_tree_of_a_missing_folder_is_an_error(
    remote: Remote, repos: Path, tmp_path: Path
) -> None:
    result = pull(str(remote.bare), repos)
    with pytest.raises(
        RepoError, match=r"cannot export .*:nope from .*: .*; check the commit and folder"
    ):
        export_tree(Path(result.clone_dir), result.sha, "nope", tmp_path / "copy")


def test_pull_result_round_trips_through_json(remote: Remote, repos: Path) -> None:
    result = pull(str(remote.bare), repos)
    assert PullResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
