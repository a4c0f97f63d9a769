"""How many sessions one client may hold, and eviction that closes what it drops.

Gradio keeps a state per session id that a request names, and any request may name a new one
(a raw `/call/cancel` with a made-up `session_hash`). Past its capacity Gradio drops the least
recently used state without a word: 10,004 made-up ids from one address once took a real
visitor's report, runs and unlearned model, and closed nothing. Here the app's states are
bounded per client address (`limits.CLIENT_SESSIONS`: a new id past it drops that client's
least recently used one) and in all (`limits.MAX_SESSIONS`, under Gradio's own capacity, so
Gradio never drops one itself), and every state dropped is deleted the way Gradio deletes an
expired one: its delete callbacks run (a Session closes: its run stops, its folder goes).

    demo.launch(..., **clients.launch_options())

`ClientAddress`, an ASGI middleware, tells the state holder which client a request is from
(the peer's address, or behind `UNLEARNING_PROXY_HOPS` proxies the address they forwarded),
and on the first request puts `BoundedStates` in place of Gradio's holder.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from contextvars import ContextVar

import gradio as gr
from gradio.state_holder import StateHolder
from starlette.middleware import Middleware

from unlearning.service import limits

CLIENT: ContextVar[str] = ContextVar("client", default="")  # the address of the request being served


class BoundedStates(StateHolder):
    """Gradio's per-session states, bounded per client and in all; a dropped one is closed."""

    def __init__(self) -> None:
        super().__init__()
        self._clients: dict[str, OrderedDict[str, None]] = {}  # client → its session ids, least recently used first
        self._client_of: dict[str, str] = {}

    def __getitem__(self, session_id: str):
        with self.lock:
            dropped = self._admit(session_id, CLIENT.get())
        for victim in dropped:
            self.drop(victim)
        return super().__getitem__(session_id)

    def _admit(self, session_id: str, client: str) -> list[str]:
        """Note a request of `session_id` by `client`; the ids to drop to make room for a new one."""
        owner = self._client_of.get(session_id)
        if owner is not None:
            self._clients[owner].move_to_end(session_id)
            return []
        mine = self._clients.setdefault(client, OrderedDict())
        dropped = list(mine)[: max(0, len(mine) - limits.CLIENT_SESSIONS + 1)]
        excess = len(self.session_data) - len(dropped) - limits.MAX_SESSIONS + 1
        if excess > 0:  # the room is full: the least recently used of all go too
            dropped += [s for s in self.session_data if s not in dropped][:excess]
        mine[session_id] = None
        self._client_of[session_id] = client
        return dropped

    def drop(self, session_id: str) -> None:
        """Forget a session's states, running their delete callbacks (the page's Session closes)."""
        with self.lock:
            state = self.session_data.pop(session_id, None)
            self.time_last_used.pop(session_id, None)
            client = self._client_of.pop(session_id, None)
            if client is not None:
                self._clients[client].pop(session_id, None)
                if not self._clients[client]:
                    del self._clients[client]
        if state is None:
            return
        for key, value in list(state.state_data.items()):
            block = state.blocks_config.blocks.get(key)
            if isinstance(block, gr.State):
                block.delete_callback(value)

    def held_by(self, client: str) -> int:
        with self.lock:
            return len(self._clients.get(client, ()))


def install(server) -> BoundedStates:
    """Put a BoundedStates in place of the Gradio app's state holder (keeping what it holds)."""
    holder = server.state_holder
    if isinstance(holder, BoundedStates):
        return holder
    bounded = BoundedStates()
    bounded.set_blocks(server.get_blocks())
    bounded.session_data.update(holder.session_data)
    bounded.time_last_used.update(holder.time_last_used)
    for session_id in holder.session_data:
        bounded._client_of[session_id] = ""
        bounded._clients.setdefault("", OrderedDict())[session_id] = None
    server.state_holder = bounded
    return bounded


def client_address(scope: dict, hops: int) -> str:
    """The peer's address, or behind `hops` proxies the one the outermost of them saw."""
    peer = (scope.get("client") or ("",))[0]
    if hops <= 0:
        return peer
    forwarded = [v for k, v in scope.get("headers", []) if k == b"x-forwarded-for"]
    chain = [a.strip() for a in b",".join(forwarded).decode("latin-1").split(",") if a.strip()]
    return chain[-hops] if len(chain) >= hops else peer


class ClientAddress:
    """ASGI middleware: which client each request is from, for BoundedStates."""

    def __init__(self, app, hops: int | None = None):
        self.app = app
        self.hops = int(os.environ.get("UNLEARNING_PROXY_HOPS", "1" if os.environ.get("SPACE_ID") else "0")) if hops is None else hops

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = scope.get("app")
        if server is not None and hasattr(server, "state_holder") and not isinstance(server.state_holder, BoundedStates):
            install(server)  # before this request (the app's first) can make a state
        token = CLIENT.set(client_address(scope, self.hops))
        try:
            await self.app(scope, receive, send)
        finally:
            CLIENT.reset(token)


def launch_options() -> dict:
    """What demo.launch needs for the bounds: the middleware, and Gradio's own capacity above ours."""
    return {"app_kwargs": {"middleware": [Middleware(ClientAddress)]}, "state_session_capacity": 2 * limits.MAX_SESSIONS}
