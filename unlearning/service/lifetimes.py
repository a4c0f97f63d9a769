"""The open sessions of this process, and when a session really ends.

A page that loses its connection (a flaky network, a proxy that drops it once) is not a
closed tab: the browser reloads the page when the connection is back, and the reloaded page
should find its session — its data, its running run, its artifact — where it left it. So each
page keeps a random token for its session (in the tab's sessionStorage, which survives a
reload but not the tab), and when a page goes away its session is closed only after
`limits.RECONNECT_SECONDS` in which no page came back for it.

    sessions = Sessions()
    session, token = sessions.attach(fresh, token_from_the_page)   # on every page load
    sessions.lost(token)        # the page's connection dropped (Gradio's unload)
    sessions.seen(token)        # the page is still there (any request of it)
    sessions.dropped(session)   # the app framework let go of a page's state
    sessions.ended(token)       # did this token's session close (the page came back too late)?
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

from .. import limits
from .session import Session


class Sessions:
    def __init__(self) -> None:
        self._by_token: dict[str, Session] = {}
        self._closing: dict[str, threading.Timer] = {}
        self._pages: dict[int, int] = {}  # id(session) → pages holding it
        self._ended: OrderedDict[str, None] = OrderedDict()  # tokens of sessions closed after a lost page, newest last
        self._lock = threading.Lock()

    def __deepcopy__(self, memo) -> Sessions:
        """One registry per process: a deep copy of something that points here (a page config
        copied per request once held `dropped`) must not copy the open sessions."""
        return self

    def __repr__(self) -> str:
        return "Sessions()"

    def attach(self, fresh: Session, token: str | None) -> tuple[Session, str]:
        """The session a loading page should use: the one `token` names if its page went
        away moments ago (this is that page, reloaded), otherwise `fresh`, under a new token.
        A token whose session still has its page (a duplicated tab) gets `fresh` too."""
        with self._lock:
            timer = self._closing.pop(token, None) if token else None
            if token and timer is not None:
                timer.cancel()
                session = self._by_token[token]
            else:
                token, session = secrets.token_urlsafe(18), fresh
                self._by_token[token] = fresh
            self._pages[id(session)] = self._pages.get(id(session), 0) + 1
        if session is not fresh:
            fresh.close()  # the page's new, empty session is not needed
        return session, token

    def seen(self, token: str | None) -> None:
        """A request from the page: whatever said it was gone was wrong."""
        with self._lock:
            timer = self._closing.pop(token, None) if token else None
        if timer is not None:
            timer.cancel()

    def lost(self, token: str | None, grace: float | None = None) -> None:
        """The page's connection dropped: close its session unless a page comes back for it."""
        with self._lock:
            if not token or token not in self._by_token or token in self._closing:
                return
            timer = threading.Timer(limits.RECONNECT_SECONDS if grace is None else grace, self._close, (token,))
            timer.daemon = True
            self._closing[token] = timer
        timer.start()

    def _close(self, token: str) -> None:
        with self._lock:
            if self._closing.pop(token, None) is None:  # came back just now
                return
            session = self._by_token.pop(token)
            self._pages.pop(id(session), None)
            self._ended[token] = None
            while len(self._ended) > limits.MAX_SESSIONS:
                self._ended.popitem(last=False)
        session.close()

    def ended(self, token: str | None) -> bool:
        """Did `token`'s session close because its page stayed away past the grace? (A page
        back after a long outage is told so, rather than finding an empty page.)"""
        with self._lock:
            return bool(token) and token in self._ended

    def dropped(self, session: Session) -> None:
        """A page's state was deleted (the app framework's time to live): close the session
        when no other page holds it."""
        with self._lock:
            left = self._pages.get(id(session), 0) - 1
            if left > 0:
                self._pages[id(session)] = left
                return
            self._pages.pop(id(session), None)
            for token in [t for t, s in self._by_token.items() if s is session]:
                self._by_token.pop(token)
                timer = self._closing.pop(token, None)
                if timer is not None:
                    timer.cancel()
        session.close()

    def close_all(self) -> None:
        with self._lock:
            sessions = list(self._by_token.values())
            for timer in self._closing.values():
                timer.cancel()
            self._by_token.clear()
            self._closing.clear()
            self._pages.clear()
        for session in sessions:
            session.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_token)
