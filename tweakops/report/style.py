"""The look of report.html: status colours and one inline stylesheet (no fonts fetched)."""

from __future__ import annotations

from tweakops.vocabulary import StageStatus, TrialStatus

# status → (fill, ink). The word is always written too, and the border style differs
# (failed thick, skipped dashed, pending dotted), so the boxes read in greyscale as well.
STATUS_COLORS: dict[str, tuple[str, str]] = {
    StageStatus.SUCCEEDED: ("#dcf3e3", "#1a7f37"),
    StageStatus.FAILED: ("#fde2e1", "#b42318"),
    StageStatus.SKIPPED: ("#eceff3", "#59636e"),
    StageStatus.RUNNING: ("#fff1c2", "#9a6700"),
    StageStatus.PENDING: ("#fafbfc", "#8c959f"),
}
STATUS_MARKS: dict[str, str] = {
    StageStatus.SUCCEEDED: "✓",
    StageStatus.FAILED: "✗",
    StageStatus.SKIPPED: "↷",
    StageStatus.RUNNING: "●",
    StageStatus.PENDING: "○",
}
# A trial's status → its pill's class; any other status is grey.
TRIAL_PILLS: dict[str, str] = {
    TrialStatus.SUCCEEDED: "succeeded",
    TrialStatus.FAILED: "failed",
    TrialStatus.RUNNING: "running",
}


def _status_rules() -> str:
    rules = []
    for status, (fill, ink) in STATUS_COLORS.items():
        rules.append(
            f".stage-{status}{{background:{fill};border-color:{ink};border-top-color:{ink}}}"
            f".stage-{status} .stage-status{{color:{ink}}}"
            f".pill-{status}{{background:{fill};color:{ink}}}"
        )
    return "\n".join(rules)


CSS = (
    """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#eaeef2;--page:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;background:var(--page);color:var(--ink);font:15px/1.5 system-ui,-apple-system,
 "Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 40px}
section,header.run{background:#fff;border:1px solid var(--line);border-radius:10px;
 padding:20px 24px;margin-bottom:18px}
h1{font-size:26px;line-height:1.25;margin:2px 0 4px}
h2{font-size:17px;margin:0 0 12px}
.eyebrow{margin:0;color:var(--muted);font-size:12px;letter-spacing:.08em;text-transform:uppercase}
.headline{font-size:17px;margin:0 0 14px}
.badge{display:inline-block;vertical-align:middle;margin-left:10px;padding:3px 10px;
 border-radius:999px;font-size:13px;font-weight:700;letter-spacing:.04em;text-transform:uppercase}
.badge-reached{background:#1a7f37;color:#fff}
.badge-not-reached{background:#b42318;color:#fff}
header.reached{border-top:6px solid #1a7f37}
header.not-reached{border-top:6px solid #b42318}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr) max-content minmax(0,1fr);
 gap:6px 18px;margin:0;font-size:14px}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.mono,td.num,code{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"Liberation Mono",
 "DejaVu Sans Mono",monospace;font-size:13px}
a{color:#0969da}
#pipeline{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:30px;margin:4px 0 2px}
.stage{position:relative;border:1px solid;border-top-width:6px;border-radius:8px;
 padding:10px 12px 12px;min-height:128px}
.stage+.stage::before{content:"→";position:absolute;left:-26px;top:50%;
 transform:translateY(-50%);color:var(--muted);font-size:20px;line-height:1}
.stage-failed{border-width:2px;border-top-width:6px}
.stage-skipped{border-style:dashed;border-top-style:solid}
.stage-pending{border-style:dotted;border-top-style:solid}
.stage-head{display:flex;justify-content:space-between;align-items:baseline;gap:6px}
.stage-name{font-weight:700;font-size:16px}
.stage-time{color:var(--muted);font-size:13px;white-space:nowrap}
.stage-status{font-weight:700;font-size:12px;letter-spacing:.06em;text-transform:uppercase;
 margin:2px 0 6px}
.stage-note{margin:0;font-size:12.5px;line-height:1.4;overflow-wrap:break-word;
 display:-webkit-box;-webkit-line-clamp:5;-webkit-box-orient:vertical;overflow:hidden}
figure{margin:0}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
.empty{color:var(--muted);font-style:italic;margin:0}
table{border-collapse:collapse;width:100%;font-size:14px}
th{text-align:left;color:var(--muted);font-weight:600;font-size:12px;letter-spacing:.04em;
 text-transform:uppercase;border-bottom:1px solid var(--line);padding:6px 10px}
td{padding:6px 10px;border-bottom:1px solid var(--soft);vertical-align:top;
 overflow-wrap:anywhere}
th.num,td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.best td{background:#dcf3e3;font-weight:600}
.tag{display:inline-block;margin-left:6px;padding:0 6px;border-radius:4px;font-size:11px;
 font-weight:700;background:#1a7f37;color:#fff;text-transform:uppercase}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;
 background:#eceff3;color:#59636e;white-space:nowrap}
pre{background:var(--page);border:1px solid var(--soft);border-radius:6px;padding:10px 12px;
 font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
pre .add{background:#dafbe1;color:#116329}
pre .del{background:#ffebe9;color:#82071e}
.inspect dl.facts{margin-bottom:12px}
footer{color:var(--muted);font-size:12px;text-align:center;overflow-wrap:anywhere}
"""
    + _status_rules()
    + "\n"
)
