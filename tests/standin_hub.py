"""A stand-in for the Hugging Face Hub on loopback: the few endpoints huggingface_hub's
snapshot_download calls, answered from folders in the tests (nothing leaves the machine).

    hub = StandInHub()
    hub.add("locuslab/TOFU", folder, repo_type="dataset")
    hub.start()                      # hub.url is the HF_ENDPOINT to use
    ...
    hub.stop()

Served: GET /api/{models,datasets}/<repo>/revision/<rev> (repo_info: the commit sha and the
file list), GET /api/.../tree/<rev>[/<path>] (the recursive file listing with sizes and blob
ids), and HEAD/GET /[datasets/]<repo>/resolve/<rev>/<path> (the file, with the X-Repo-Commit
and ETag headers hf_hub_download reads). Every request is recorded in `hub.requests`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class StandInHub:
    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Path] = {}  # (repo_type, repo_id) → folder
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self._server: ThreadingHTTPServer | None = None

    def add(self, repo_id: str, folder: Path, repo_type: str = "model") -> None:
        self.repos[(repo_type, repo_id)] = Path(folder)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StandInHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                hub._answer(self, body=True)

            def do_HEAD(self) -> None:
                hub._answer(self, body=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def downloaded(self, repo_id: str) -> list[str]:
        """The files of `repo_id` whose contents were sent."""
        return sorted({p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p in self.requests
                       if m == "GET" and "/resolve/" in p and p.split("/resolve/")[0].endswith(repo_id)})

    # ------------------------------------------------------------------ answers
    def _find(self, path: str) -> tuple[str, str, Path, str] | None:
        """(repo_type, repo_id, folder, the rest of the path) of the repo `path` names."""
        for (repo_type, repo_id), folder in self.repos.items():
            for prefix in (f"/api/{repo_type}s/{repo_id}/", f"/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}/"):
                if path.startswith(prefix):
                    return repo_type, repo_id, folder, path[len(prefix):]
        return None

    def _answer(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(h.path).path)
        self.requests.append((h.command, path))
        found = self._find(path)
        if found is None:
            return _send(h, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)
        _, repo_id, folder, rest = found
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        sha = hashlib.sha1("\n".join(files).encode()).hexdigest()  # a stable commit id per content listing
        if path.startswith("/api/") and rest.startswith("revision/"):
            info = {"id": repo_id, "sha": sha, "private": False, "siblings": [{"rfilename": f} for f in files]}
            return _send(h, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
        if path.startswith("/api/") and rest.startswith("tree/"):
            under = rest.split("/", 2)[2] if rest.count("/") >= 2 else ""
            listing = [{"type": "file", "path": f, "size": (folder / f).stat().st_size, "oid": _blob(folder / f)}
                       for f in files if f.startswith(under)]
            return _send(h, 200, json.dumps(listing).encode(), {"Content-Type": "application/json"}, body)
        if rest.startswith("resolve/"):
            name = rest.split("/", 2)[2]
            target = folder / name
            if not target.is_file():
                return _send(h, 404, b"Entry not found", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha}, body)
            data = target.read_bytes()
            return _send(h, 200, data, {"X-Repo-Commit": sha, "ETag": f'"{_blob(target)}"'}, body)
        return _send(h, 404, b"not served by the stand-in hub", {}, body)


def _blob(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if body:
        h.wfile.write(data)
