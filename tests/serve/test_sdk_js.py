"""@segment/analytics-node and analytics.js (analytics-next in headless Chromium), unmodified,
sending to ``trackplan serve``. Install them with ``tests/serve/js/install.sh``; without node,
the npm packages or Debian's chromium these tests skip and say which is missing."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import orjson
import pytest

from tests.serve.helpers import PLAN, wait_for
from trackplan.testing import Collector, collector

JS = Path(__file__).resolve().parent / "js"
NODE_SDK = JS / "node_modules" / "@segment" / "analytics-node"
BROWSER_SDK = JS / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"


def _need_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm)")
    if not NODE_SDK.is_dir():
        pytest.skip("@segment/analytics-node is not installed: run tests/serve/js/install.sh")
    return node


def _need_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    if not (BROWSER_SDK / "index.js").is_file():
        pytest.skip("@segment/analytics-next is not installed: run tests/serve/js/install.sh")
    return found


@pytest.fixture()
def keyed(tmp_path: Path) -> Iterator[Collector]:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("sources:\n  - {name: web, write_keys: [web-key]}\n"
                   "  - {name: node, write_keys: [node-key]}\n")
    with collector(PLAN, config=cfg) as running:
        yield running


def test_analytics_node_sends_to_serve(keyed: Collector) -> None:
    node = _need_node()
    out = subprocess.run([node, str(JS / "send-node.mjs"), keyed.url, "node-key"],
                         capture_output=True, timeout=60, cwd=JS)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert orjson.loads(out.stdout.splitlines()[-1]) == {"failures": []}
    good, bad = keyed.good(source="node"), keyed.bad(source="node")
    labels = sorted(g["event"].get("event") or g["event"]["type"] for g in good)
    assert labels == ["Product Viewed", "identify", "page"]
    assert [b["event"]["event"] for b in bad] == ["Coupon Entered"]
    lib = good[0]["event"]["context"]["library"]
    assert lib["name"] == "@segment/analytics-node"
    assert "jane@example.com" not in str(good)
    # a wrong key is refused, and analytics-node reports it
    out = subprocess.run([node, str(JS / "send-node.mjs"), keyed.url, "wrong-key"],
                         capture_output=True, timeout=60, cwd=JS)
    assert orjson.loads(out.stdout.splitlines()[-1])["failures"] != []
    assert keyed.all()["received"] == 4


class _Page(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("batching", [False, True])
def test_analytics_js_in_headless_chromium(keyed: Collector, tmp_path: Path,
                                           batching: bool) -> None:
    chromium = _need_chromium()
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(JS / "page.html", site / "index.html")
    shutil.copytree(BROWSER_SDK, site / "bundles")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             partial(_Page, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = keyed.url.removeprefix("http://")
    page = (f"http://127.0.0.1:{server.server_address[1]}/index.html?gateway={gateway}"
            f"&key=web-key{'&batching=1' if batching else ''}")
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", page],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: keyed.all()["received"] >= 3, timeout=60, interval=0.2)
        finally:
            browser.terminate()
            browser.wait(30)
            server.shutdown()
            server.server_close()
    good, bad = keyed.good(source="web"), keyed.bad(source="web")
    assert sorted(g["event"].get("event") or g["event"]["type"] for g in good) == [
        "Product Viewed", "page"]
    assert [b["event"]["event"] for b in bad] == ["Coupon Entered"]
    first = good[0]["event"]
    assert first["context"]["library"]["name"] == "analytics.js"
    assert first["anonymousId"]
    assert "/index.html" in first["context"]["page"]["url"]
    # analytics.js loaded its settings from the gateway, not from Segment's CDN
    metrics = keyed.gateway.metrics.render()
    assert 'trackplan_requests_total{kind="settings"} 1' in metrics
    # one call per request on /v1/p and /v1/t, or batched on /v1/b
    assert ('trackplan_requests_total{kind="batch"}' in metrics) is batching
    assert ('trackplan_requests_total{kind="track"}' in metrics) is not batching
