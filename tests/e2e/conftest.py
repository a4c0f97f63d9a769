"""Browser and API tests against a real `python app.py` on loopback.

The server starts once per test session on a free port. Chromium comes from Debian's
package (installed here when missing, as CI runs as root); Playwright drives it. Screenshots
of each step land in test-artifacts/ (kept by CI as the tests' artifacts).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def loopback_client(url: str) -> Client:
    """A gradio_client session on the app under test. The app is plain http on loopback, so
    certificates are not checked: with checking on, gradio_client builds a fresh certificate store
    for every request (about 46 ms of CPU each against 4 ms without, measured on these 2 cores by
    /board_tick), and a room of clients took a core from the app it was measuring."""
    return Client(url, verbose=False, ssl_verify=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.fail("Chromium is missing: install Debian's 'chromium' package (apt-get install chromium).")
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, timeout=900,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return CHROMIUM


class Server:
    """An app command on a free loopback port, started at once; `ready()` waits until it answers."""

    def __init__(self, argv: list[str], log_path: Path, extra_env: dict[str, str] | None = None):
        self.argv, self.log_path = argv, log_path
        port = _free_port()
        # UNLEARNING_LOCAL_MODELS: the operator's switch that lets the Model box open a folder
        # here (the XSS test teaches a model into tmp_path); tests/test_security.py checks it is off by default.
        # GRADIO_TEMP_DIR: an upload folder of its own, since each app sweeps the uploads no session
        # of its own claims (service/uploads.py) and the servers of one test run live side by side.
        env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
               "UNLEARNING_LOCAL_MODELS": "1", "GRADIO_TEMP_DIR": tempfile.mkdtemp(prefix="studio-e2e-uploads-"),
               **(extra_env or {})}
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/"
        self.started = time.time()

    def ready(self) -> str:
        while time.time() < self.started + 180:
            if self.proc.poll() is not None:
                pytest.fail(f"{' '.join(self.argv)} exited with code {self.proc.returncode}; see {self.log_path.name}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return self.url
            except OSError:
                time.sleep(0.5)
        self.proc.kill()
        pytest.fail(f"{' '.join(self.argv)} did not answer within 180 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@contextlib.contextmanager
def serve(argv: list[str], log_path: Path, extra_env: dict[str, str] | None = None):
    """Run an app command on a free loopback port; yield its URL once it answers, stop it after."""
    server = Server(argv, log_path, extra_env)
    try:
        yield server.ready()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_url():
    with serve([sys.executable, "app.py"], ROOT / "test-artifacts-server.log") as url:
        yield url


@pytest.fixture(scope="session")
def zero_gpu_url():
    """The same app as on a ZeroGPU Space: tests/fake_spaces plays `spaces` (a forked worker per
    run and per reply), so the page drives the other backend through the same handlers."""
    env = {"SPACES_ZERO_GPU": "1", "UNLEARNING_THREADS": "1", "UNLEARNING_GPU_SECONDS": "600",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fake_spaces"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with serve([sys.executable, "app.py"], ROOT / "test-artifacts" / "zerogpu-browser-server.log", env) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    exe = ensure_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def shot(request):
    """shot(page, "step-name") saves test-artifacts/<test>/<n>-step-name.png."""
    folder = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(page, name: str) -> Path:
        path = folder / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# test_load.py stores its table here; it is printed at the end of the run (and in test-artifacts/load.txt).
LOAD_TABLE = pytest.StashKey[str]()


# test_workshop.py's timings of the workshop flow (page ready, first plot point, whole run), likewise.
FLOW_TIMES = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    table = config.stash.get(LOAD_TABLE, None)
    if table:
        terminalreporter.section("load test (tests/e2e/test_load.py)")
        for line in table.splitlines():
            terminalreporter.write_line(line)
    times = config.stash.get(FLOW_TIMES, None)
    if times:
        terminalreporter.section("workshop flow in the browser (tests/e2e/test_workshop.py; measured, not asserted)")
        for line in times:
            terminalreporter.write_line(line)
