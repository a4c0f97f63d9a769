"""Time from `python app.py` to a page that answers, on this machine.

    python benchmarks/startup.py [--runs 3]

Starts the app on a free port, polls it, and prints a table: seconds until the HTTP server
answers, and until the app's config (the page's components) is served. Target (issue 5):
under 20 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start() -> tuple[float, float]:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = page = None
    try:
        while time.perf_counter() - t0 < 120 and page is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                first = first or time.perf_counter() - t0
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5).read()
                if b"use-preset" in body:
                    page = time.perf_counter() - t0
            except OSError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    if page is None:
        raise SystemExit("the app did not answer within 120 s")
    return first, page


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = [one_start() for _ in range(parser.parse_args().runs)]
    print(f"{'measure':34s}{'median s':>10s}{'max s':>8s}{'target s':>10s}")
    for i, name in enumerate(("server answers (GET /)", "page config served (GET /config)")):
        values = [r[i] for r in runs]
        print(f"{name:34s}{statistics.median(values):10.1f}{max(values):8.1f}{20.0:10.1f}")
    print(f"runs: {len(runs)}, cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
