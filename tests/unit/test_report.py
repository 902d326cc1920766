"""report.html from a real run store: stages, plots, trials, restarts, evidence, escaping."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from training import read_epochs
from tweakops.analysis.inspection import Evidence, InspectResult
from tweakops.pull.git import PullResult
from tweakops.records import STAGES, TrialRecord
from tweakops.report.page import REPORT_FILE, render_report, try_write_report, write_report
from tweakops.report.plots import accuracy_plot, accuracy_png, epoch_png, epoch_series
from tweakops.store import RunStore

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BUILD_URL = "https://jenkins.example.org/job/tweakops/42/"
T0 = 1_800_000_000.0


def epochs(accuracies: list[float]) -> list[dict[str, Any]]:
    base = {"time": T0, "pid": 7}
    return [
        {**base, "epoch": i, "accuracy": a, "val_accuracy": a - 0.02, "loss": 1 - a}
        for i, a in enumerate(accuracies, start=1)
    ]


def write_epochs(folder: Path, records: list[dict[str, Any]]) -> None:
    (folder / "output").mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "output" / "epochs.jsonl").write_text(lines)


def inspect_result() -> dict[str, Any]:
    found = InspectResult(
        framework="keras",
        image="tweakops/keras:latest",
        rule="keras evidence",
        evidence=(
            Evidence("keras", "train.py", 3, "import keras"),
            Evidence("keras", "model/net.py", 17, "keras.layers.Conv2D(...)"),
        ),
        entrypoint="train.py",
        files_read=2,
    )
    return {**found.to_dict(), "summary": "keras → tweakops/keras:latest (rule: keras evidence)"}


def pull_result() -> dict[str, Any]:
    """A whole pull record: tweakops.results reads it back as Pulled."""
    pulled = PullResult(
        source="/srv/git/digits-cnn",
        url="/srv/git/digits-cnn",
        subdir="",
        ref=None,
        sha="0123456789abcdef0123",
        branch="main",
        clone_dir="/srv/clones/digits-cnn",
        previous_sha=None,
        changed_files=(),
    )
    return pulled.to_dict()


def make_run(
    tmp_path: Path,
    source: str = "/srv/git/digits-cnn",
    statuses: dict[str, str] | None = None,
    best_epochs: bool = True,
) -> tuple[RunStore, str]:
    """A run store with a run whose stages, trials, epochs and events are filled in."""
    store = RunStore(tmp_path / "home")
    run = store.create_run(source, {"threshold": "0.95"})
    statuses = {name: "succeeded" for name in STAGES} | (statuses or {})
    for i, name in enumerate(STAGES):
        status = statuses[name]
        started = None if status == "pending" else T0 + 10 * i
        ended = T0 + 10 * i + 1.5 + i if status in ("succeeded", "failed", "skipped") else None
        error = {"failed": f"{name} broke", "skipped": "skipped: tune failed"}.get(status)
        result = {"summary": f"{name} summary"} if status == "succeeded" else {}
        if name == "pull" and status == "succeeded":
            result |= pull_result()
        if name == "inspect" and status == "succeeded":
            result = inspect_result()
        store.set_stage(
            run.id, name, status=status, started=started, ended=ended, error=error, result=result
        )
    store.update_run(run.id, status="reached", verdict="threshold 0.95 reached at trial 1")
    trials_dir = store.run_dir(run.id) / "trials"
    for number, accuracy, params in ((0, 0.81, {}), (1, 0.97, {"lr": 0.01}), (2, 0.9, {"lr": 0.1})):
        folder = trials_dir / f"{number:03d}"
        folder.mkdir(parents=True)
        if number != 1 or best_epochs:
            write_epochs(folder, epochs([accuracy - 0.1 * k for k in (3, 2, 1, 0)]))
        store.save_trial(
            TrialRecord(
                run_id=run.id,
                number=number,
                params=params,
                status="succeeded",
                accuracy=accuracy,
                started=T0 + number * 60,
                ended=T0 + number * 60 + 12.5,
                verdict="ok",
                restarts=1 if number == 1 else 0,
                folder=str(folder),
            )
        )
    return store, run.id


def images(page: str) -> dict[str, bytes]:
    found = re.findall(r'<img id="([a-z-]+)" src="data:image/png;base64,([^"]+)"', page)
    return {name: base64.b64decode(data) for name, data in found}


def test_the_six_stages_appear_in_order_with_their_status_class_and_seconds(
    tmp_path: Path,
) -> None:
    statuses = {"tune": "failed", "notify": "running", "watch": "pending"}
    store, run_id = make_run(tmp_path, statuses=statuses)
    page = render_report(store, run_id)
    boxes = re.findall(r'<div class="stage stage-([a-z]+)" data-stage="([a-z]+)">', page)
    assert [name for _, name in boxes] == list(STAGES)
    expected = ["succeeded", "succeeded", "succeeded", "failed", "running", "pending"]
    assert [status for status, _ in boxes] == expected
    assert page.count('id="pipeline"') == 1
    pipeline = page[page.index('id="pipeline"') :]
    for i, name in enumerate(("pull", "inspect", "train", "tune")):
        box = pipeline[pipeline.index(f'data-stage="{name}"') :]
        assert f"{1.5 + i:.1f} s" in box[: box.index("</p>")]
    assert "tune broke" in pipeline and "not started" in pipeline and "running since" in pipeline


def test_a_failed_stage_shows_its_error_and_the_stages_after_it_show_skipped(
    tmp_path: Path,
) -> None:
    statuses = {"train": "failed", "tune": "skipped"}
    store, run_id = make_run(tmp_path, statuses=statuses)
    store.update_run(run_id, status="failed", verdict="train failed: train broke")
    page = render_report(store, run_id)
    assert re.search(r'class="stage stage-failed" data-stage="train">.*?train broke', page)
    assert re.search(r'class="stage stage-skipped" data-stage="tune">.*?skipped: tune failed', page)
    assert 'class="badge badge-not-reached"' in page
    assert "train failed: train broke" in page


def test_every_value_from_the_run_is_html_escaped(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path, source='/srv/<script>alert("repo")</script>&x', statuses={})
    evil = "<img src=x onerror=alert(1)>"
    trial = store.trials(run_id)[1]
    store.update_trial(trial, params={evil: "</td><b>", "lr": 0.01})
    store.set_stage(run_id, "watch", status="failed", error="<b>boom</b> & <i>more</i>")
    store.add_event(run_id, "trial_restarted", f"trial 1 restarted {evil}")
    page = render_report(store, run_id)
    assert "<script" not in page and "<img src=x" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;repo&quot;)&lt;/script&gt;&amp;x" in page
    assert "&lt;img src=x onerror=alert(1)&gt;=&lt;/td&gt;&lt;b&gt;" in page
    assert "&lt;b&gt;boom&lt;/b&gt; &amp; &lt;i&gt;more&lt;/i&gt;" in page


def test_both_plots_are_embedded_as_base64_png(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    found = images(render_report(store, run_id))
    assert set(found) == {"accuracy-plot", "epoch-plot"}
    assert all(png.startswith(PNG_SIGNATURE) for png in found.values())
    assert found["accuracy-plot"] == accuracy_png(store.trials(run_id), 0.95, "accuracy")


def test_the_epoch_plot_is_of_the_best_trial(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    page = render_report(store, run_id)
    folders = {t.number: Path(t.folder or "") / "output" for t in store.trials(run_id)}
    best = epoch_png(read_epochs(folders[1]), 0.95)
    assert images(page)["epoch-plot"] == best
    assert best != epoch_png(read_epochs(folders[2]), 0.95)
    assert "Epochs of the best trial (trial 1)" in page


def test_a_best_trial_without_epochs_gets_a_sentence_instead_of_an_image(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path, best_epochs=False)
    page = render_report(store, run_id)
    assert 'id="epoch-plot"' not in page
    assert "Trial 1 logged no epochs" in page
    assert "accuracy-plot" in images(page)


def test_the_trial_table_highlights_the_best_trial(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    page = render_report(store, run_id)
    rows = re.findall(r"<tr( class=\"best\")?><td[^>]*>(\d+)", page)
    assert rows == [("", "0"), (' class="best"', "1"), ("", "2")]
    assert "lr=0.01" in page and "defaults" in page and "0.970" in page


def test_restart_events_are_listed_with_their_time_and_message(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    store.add_event(run_id, "trial_restarted", "trial 1 restarted from epoch 2 (exit 137)")
    store.add_event(run_id, "run_resumed", "run resumed by the watchdog at tune")
    store.add_event(run_id, "stage_failed", "not a watchdog event")
    page = render_report(store, run_id)
    restarts = page[page.index("<h2>Restarts</h2>") :].split("</section>")[0]
    assert "trial 1 restarted from epoch 2 (exit 137)" in restarts
    assert "run resumed by the watchdog at tune" in restarts
    assert "not a watchdog event" not in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", restarts)
    assert "no restarts" not in restarts


def test_a_run_without_restart_events_says_no_restarts(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    page = render_report(store, run_id)
    assert "no restarts" in page[page.index("<h2>Restarts</h2>") :].split("</section>")[0]


def test_the_inspect_evidence_is_listed_as_file_line_and_reason(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    page = render_report(store, run_id)
    inspect = page[page.index("<h2>Inspect") :].split("</section>")[0]
    for text in ("tweakops/keras:latest", "keras evidence", "train.py:3", "import keras"):
        assert text in inspect
    assert "model/net.py:17" in inspect and "keras.layers.Conv2D(...)" in inspect


def test_nothing_is_fetched_only_data_images_and_the_build_link(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    store.update_run(run_id, build_url=BUILD_URL)
    page = render_report(store, run_id)
    assert re.findall(r'src="([^"]*)"', page)  # the two images…
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'src="([^"]*)"', page))
    assert re.findall(r'href="([^"]*)"', page) == [BUILD_URL]  # …and one link
    assert "http" not in page.replace(BUILD_URL, "")
    for fetching in ("<script", "<link", "@import", "url(", "<iframe"):
        assert fetching not in page


def test_passwords_never_appear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWEAKOPS_SMTP_PASSWORD", "smtp-Pa55word")
    monkeypatch.setenv("BUILD_URL", "https://bot:jenkins-Pa55word@ci.example.org/job/7/")
    source = "https://ci-bot:git-Pa55word@git.example.org/team/mnist.git"
    store, run_id = make_run(tmp_path, source=source)
    store.set_stage(run_id, "pull", error=f"cannot fetch {source} or https://ghp_T0KEN@host/x")
    page = render_report(store, run_id)
    for secret in ("smtp-Pa55word", "git-Pa55word", "jenkins-Pa55word", "ghp_T0KEN"):
        assert secret not in page
    assert "https://ci-bot:***@git.example.org/team/mnist.git" in page


def test_a_run_whose_pull_failed_still_gets_a_report(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "home")
    run = store.create_run("/srv/nowhere")
    store.set_stage(run.id, "pull", status="failed", started=T0, ended=T0 + 0.2, error="no repo")
    store.update_run(run.id, status="failed", verdict="pull failed: no repo")
    page = render_report(store, run.id)
    assert "No trial ran" in page and "Nothing recorded" in page
    assert images(page) == {}


def test_write_report_writes_report_html_in_the_run_folder(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    path = write_report(store, run_id)
    assert path == store.run_dir(run_id) / REPORT_FILE
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_report_that_cannot_be_written_is_a_warning_not_the_run_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store, run_id = make_run(tmp_path)
    (store.run_dir(run_id) / REPORT_FILE).mkdir()  # a folder where the file should go
    with caplog.at_level(logging.WARNING, logger="tweakops"):
        assert try_write_report(store, run_id) is None
    assert f"[{run_id}] could not write the run report" in caplog.text


def test_accuracy_plot_writes_the_bytes_of_accuracy_png(tmp_path: Path) -> None:
    store, run_id = make_run(tmp_path)
    trials = store.trials(run_id)
    path = accuracy_plot(trials, 0.95, "accuracy", tmp_path / "accuracy.png")
    assert path.read_bytes() == accuracy_png(trials, 0.95, "accuracy")


def test_epoch_series_keeps_the_last_value_of_an_epoch_logged_twice() -> None:
    records = [
        {"epoch": 1, "time": T0, "pid": 1, "accuracy": 0.5, "note": "text", "ok": True},
        {"epoch": 2, "time": T0, "pid": 1, "accuracy": 0.6, "loss": None},
        {"epoch": 2, "time": T0, "pid": 2, "accuracy": 0.65, "loss": 0.4},
    ]
    assert epoch_series(records) == {"accuracy": [(1, 0.5), (2, 0.65)], "loss": [(2, 0.4)]}
    assert epoch_png([{"epoch": 1, "time": T0, "pid": 1}]) is None
