"""A dropped connection is not a closed tab: the page reaches the app through a TCP proxy that
cuts every connection mid-run and refuses new ones for a few seconds, as a flaky network
would. Gradio sees the page's heartbeat drop (and calls the app's unload); the run must go
on and the page must show it finishing once the connection is back."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlparse

import pytest

from .test_browser import RUN_TIMEOUT_MS, choose_method, open_app, report_value, run_text, use_preset

BLIP_SECONDS = 4


class FlakyProxy:
    """Forwards 127.0.0.1:<port> to the app; `blip(s)` cuts every open connection and
    refuses new ones for `s` seconds."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.down_until = 0.0
        self.open: set[socket.socket] = set()
        self.cuts = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self.lock:
            self.open.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def blip(self, seconds: float) -> None:
        self.down_until = time.monotonic() + seconds
        with self.lock:
            victims = list(self.open)
        self.cuts += len(victims)
        for s in victims:
            self._close(s)

    def close(self) -> None:
        self.server.close()
        self.blip(0)


@pytest.fixture
def proxy(app_url):
    p = FlakyProxy(urlparse(app_url).port)
    yield p
    p.close()


def test_a_dropped_connection_mid_run_does_not_cancel_the_run(browser, proxy, shot):
    context, page = open_app(browser, f"http://127.0.0.1:{proxy.port}/")
    use_preset(page)
    choose_method(page, "IHL + FILA (LoRA training)")
    page.click("#start-run")
    page.wait_for_function("document.querySelector('#loss-plot .scatterlayer .point') !== null", timeout=RUN_TIMEOUT_MS)
    shot(page, "before-the-blip")
    proxy.blip(BLIP_SECONDS)  # every connection of the page drops: the heartbeat too
    assert proxy.cuts >= 2
    try:
        page.wait_for_function("/^(done|cancelled|failed)/.test(document.querySelector('#run-state')?.innerText || '')",
                               timeout=RUN_TIMEOUT_MS)
    finally:
        shot(page, "after-the-blip")
    assert run_text(page).startswith("done"), run_text(page)
    assert report_value(page, "forget.rougeL", 3) >= 0  # and its report arrived
    context.close()
