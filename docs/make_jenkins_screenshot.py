"""Screenshot a Jenkins page (the Build Pipeline view) with headless Chromium, logged in.

    python docs/make_jenkins_screenshot.py view/tweakops/ --out docs/jenkins-pipeline-view.png

Jenkins comes from JENKINS_URL, JENKINS_USER and JENKINS_API_TOKEN. Chromium cannot send an
Authorization header by itself, so a small proxy on 127.0.0.1 adds it to every request and
forwards it to Jenkins; Chromium loads the page (and its scripts, which fill in the builds)
from the proxy. tests/integration/test_jenkins_real.py calls it after the overlapping pushes
when TWEAKOPS_JENKINS_SCREENSHOT names the PNG to write.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from docs.make_screenshot import headless_command

HOP_HEADERS = {"connection", "transfer-encoding", "content-encoding", "content-length"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", help="path under JENKINS_URL, e.g. view/tweakops/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    shoot(args.page, args.out, args.width, args.height, args.chromium)
    print(args.out)


def shoot(page: str, out: Path, width: int, height: int, chromium: str = "chromium") -> Path:
    base = os.environ["JENKINS_URL"].rstrip("/") + "/"
    user, token = os.environ.get("JENKINS_USER", ""), os.environ.get("JENKINS_API_TOKEN", "")
    auth = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode() if user else None
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _forwarder(base, auth))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="tweakops-jenkins-shot-") as scratch:
            raw = Path(scratch) / "shot.png"
            url = f"http://127.0.0.1:{proxy.server_address[1]}/{page.lstrip('/')}"
            command = headless_command(
                chromium,
                Path(scratch) / "profile",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                "--virtual-time-budget=15000",  # the view's scripts fetch the builds
                f"--screenshot={raw}",
                url,
            )
            subprocess.run(command, check=True, capture_output=True, timeout=180)
            out.parent.mkdir(parents=True, exist_ok=True)
            from PIL import Image  # matplotlib brings Pillow

            Image.open(raw).convert("RGB").save(out, optimize=True)
    finally:
        proxy.shutdown()
    return out


def _forwarder(base: str, auth: str | None) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the page and what it loads: GET only
            request = urllib.request.Request(urljoin(base, self.path.lstrip("/")))
            if auth:
                request.add_header("Authorization", auth)
            for name in ("Accept", "Accept-Language", "Cookie"):
                if self.headers.get(name):
                    request.add_header(name, self.headers[name])
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    status, headers, body = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as error:
                status, headers, body = error.code, error.headers, error.read()
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Forward


if __name__ == "__main__":
    main()
