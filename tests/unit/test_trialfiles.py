"""The host's reads of trial-written files (tweakops/trialfiles.py), the one redaction, the
bounded quoting of values, and the tar checks pull uses on Pythons older than 3.11.4."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from tweakops.errors import MetricError, quoted
from tweakops.pull.git import UnsafeMember, check_member
from tweakops.redact import is_secret_name, redact, redact_deep
from tweakops.trialfiles import (
    TrialFileRefused,
    copy_regular,
    log_tail,
    open_for_append,
    read_epochs,
    read_head,
    read_metric,
    read_params_used,
    read_tail,
)


@pytest.fixture
def trial(tmp_path: Path) -> Path:
    folder = tmp_path / "trials" / "000"
    (folder / "src").mkdir(parents=True)
    (folder / "output").mkdir()
    (tmp_path / "secret").write_text("s3cret\n")
    return folder


def test_regular_files_are_read_within_their_cap(trial: Path) -> None:
    (trial / "output" / "accuracy.txt").write_text("93.5%\n")
    assert read_metric(trial, trial / "output", trial / "src") == pytest.approx(0.935)
    (trial / "log.txt").write_bytes(b"".join(b"line %d\n" % i for i in range(100_000)))
    assert log_tail(trial, trial / "log.txt", 2) == "line 99998\nline 99999"
    assert len(read_tail(trial, trial / "log.txt", 10)) == 10
    with pytest.raises(TrialFileRefused, match=r"larger than 100 bytes"):
        read_head(trial, trial / "log.txt", 100)


@pytest.mark.parametrize("kind", ["link", "fifo", "device", "linked-folder"])
def test_links_fifos_devices_and_linked_folders_are_refused(trial: Path, kind: str) -> None:
    metric = trial / "output" / "accuracy.txt"
    if kind == "link":
        metric.symlink_to(trial.parent.parent / "secret")
    elif kind == "fifo":
        os.mkfifo(metric)
    elif kind == "device":
        metric.symlink_to("/dev/zero")
    else:
        (trial / "output").rmdir()
        (trial / "output").symlink_to(trial.parent.parent)
        (trial.parent.parent / "accuracy.txt").write_text("0.9")
    with pytest.raises(MetricError, match=r"refused"):
        read_metric(trial, trial / "output", trial / "src")
    assert read_epochs(trial, trial / "output") == []
    assert "refused" in log_tail(trial, metric, 5)


def test_a_path_outside_the_trial_folder_is_refused(trial: Path) -> None:
    with pytest.raises(TrialFileRefused, match=r"outside the trial folder"):
        read_head(trial, trial / ".." / ".." / "secret", 100)
    (trial.parent / "link").symlink_to(trial)
    with pytest.raises(TrialFileRefused, match=r"symbolic link|not a folder"):
        read_head(trial.parent / "link", trial.parent / "link" / "log.txt", 100)


def test_appends_and_copies_never_follow_a_link(trial: Path, tmp_path: Path) -> None:
    (trial / "log.txt").symlink_to(tmp_path / "secret")
    with pytest.raises(TrialFileRefused):
        open_for_append(trial, trial / "log.txt")
    with pytest.raises(TrialFileRefused):
        copy_regular(trial, trial / "log.txt", tmp_path / "copy", 1000)
    assert (tmp_path / "secret").read_text() == "s3cret\n" and not (tmp_path / "copy").exists()


def test_epoch_records_skip_torn_and_foreign_lines(trial: Path) -> None:
    (trial / "output" / "epochs.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": "x"}\n{"ep')
    assert read_epochs(trial, trial / "output") == [{"epoch": 1}]


def test_params_used_keeps_only_names_and_plain_values(trial: Path) -> None:
    used = trial / "output" / "params_used.json"
    assert read_params_used(trial, trial / "output") == {}  # not written (a plain script)
    used.write_text('{"lr": 0.003, "epochs": 5, "opt": "adam", "bn": true, "x": [1], "y": null}')
    assert read_params_used(trial, trial / "output") == {
        "lr": 0.003,
        "epochs": 5,
        "opt": "adam",
        "bn": True,
    }


@pytest.mark.parametrize(
    "content",
    ["[1, 2]", '{"lr": 0.1', "[" * 100_000, '{"a": "' + "x" * (2 * 1024 * 1024) + '"}', "link"],
)
def test_params_used_that_is_not_a_small_json_object_is_nothing(
    trial: Path, tmp_path: Path, content: str
) -> None:
    used = trial / "output" / "params_used.json"
    if content == "link":
        (tmp_path / "elsewhere.json").write_text('{"lr": 0.1}')
        used.symlink_to(tmp_path / "elsewhere.json")
    else:
        used.write_text(content)
    assert read_params_used(trial, trial / "output") == {}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://bot:pw@host/x.git", "https://bot:***@host/x.git"),
        ("https://ghp_abc@host/x.git", "https://***@host/x.git"),
        ("ssh://git@host/x.git", "ssh://git@host/x.git"),
        ("https://h/x?token=abc&a=1", "https://h/x?token=***&a=1"),
    ],
)
def test_one_redaction_for_urls(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact_deep({"a": [text]}) == {"a": [shown]}


def test_secret_names() -> None:
    secret = ["TWEAKOPS_SMTP_PASSWORD", "PGPASSWORD", "JENKINS_API_TOKEN", "AWS_ACCESS_KEY_ID"]
    assert all(map(is_secret_name, secret))
    assert not any(map(is_secret_name, ["PATH", "HOME", "DATA_DIR", "OMP_NUM_THREADS"]))


def test_quoted_values_are_short_whatever_their_size() -> None:
    nested: list[object] = ["x" * 10_000]
    for _ in range(50):
        nested = [nested, nested]
    assert len(quoted(nested)) <= 200 and len(quoted("y" * 10**6)) <= 200


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("../escape.py"),
        _member("/etc/cron.d/x"),
        _member("link", tarfile.SYMTYPE, "/etc/shadow"),
        _member("a/link", tarfile.SYMTYPE, "../../outside"),
        _member("hard", tarfile.LNKTYPE, "../outside"),
        _member("fifo", tarfile.FIFOTYPE),
        _member("dev", tarfile.CHRTYPE),
    ],
    ids=lambda m: m.name,
)
def test_pull_refuses_tar_members_that_leave_the_folder(
    member: tarfile.TarInfo, tmp_path: Path
) -> None:
    with pytest.raises(UnsafeMember):
        check_member(member, tmp_path.resolve())


def test_pull_keeps_files_folders_and_inner_links(tmp_path: Path) -> None:
    for member in (
        _member("src/train.py"),
        _member("src", tarfile.DIRTYPE),
        _member("src/alias.py", tarfile.SYMTYPE, "train.py"),
    ):
        check_member(member, tmp_path.resolve())
