"""`gdw tui --serve`: the UI in a browser tab, behind a token (as Jupyter does).

A WebSocket session can start, stop and delete runs, so the server must not take one from just
anyone who can reach the port: any web page open in the user's browser can open a WebSocket to
localhost, and so can every other user of the machine. Hence:

- a random token (or `--token` / GDW_TUI_TOKEN) in the URL the command prints; the page and the
  WebSocket are refused without it (403);
- the WebSocket's Origin must be the page's own (no other site's page can drive the UI);
- the Host must be a loopback name, or the one given with --host: a DNS-rebinding page (its own
  name resolving to 127.0.0.1) is refused before it can read the page that holds the token;
- it binds 127.0.0.1 unless --host is given (then the command says who can reach it).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server

from engine.config import ConfigError

TOKEN_ENV = "GDW_TUI_TOKEN"
MIN_TOKEN = 16  # characters: a guessable token would be no lock at all
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def choose_token(given: str | None) -> str:
    """--token, else GDW_TUI_TOKEN, else a fresh random one; ConfigError for a short one."""
    for token, where in ((given, "--token"), (os.environ.get(TOKEN_ENV), TOKEN_ENV)):
        if token is not None:
            if len(token) < MIN_TOKEN or not token.isprintable() or " " in token:
                raise ConfigError(f"{where} must be at least {MIN_TOKEN} printable characters without spaces "
                                  f"(got {len(token)}); leave it out for a random one")
            return token
    return secrets.token_urlsafe(32)


def _hostname(host_header: str) -> str:
    """`name:port`, `[::1]:port` or `name` → the name, lower-case, without brackets."""
    return (urlsplit(f"//{host_header}").hostname or "").lower()


def risk_note(host: str, port: int) -> str | None:
    """What binding beyond loopback means, said when --host is given."""
    if _is_loopback(host):
        return None
    who = "anyone on any network this machine is on" if host in WILDCARD_HOSTS else f"anyone who can reach {host}"
    return (f"gdw-tui: warning: --host {host}: {who} can connect to port {port}; with the token they can start, stop "
            f"and delete runs as you, and the token travels unencrypted over http. Prefer the default (127.0.0.1) "
            f"and an SSH tunnel: ssh -L {port}:127.0.0.1:{port} THIS-HOST")


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TokenServer(Server):
    """textual-serve's server with a token, an Origin check and a Host check on every request."""

    def __init__(self, command: str, host: str, port: int, token: str, title: str = "gdw-tui"):
        super().__init__(command, host=host, port=port, title=title)
        self.token = token
        # Names a browser may use to reach us: loopback ones (an SSH tunnel, a local browser), and
        # --host itself. Bound to every interface, any name reaches it: the token is then the lock.
        self.any_host = host in WILDCARD_HOSTS
        self.hosts = LOOPBACK_NAMES | {host.lower().strip("[]")}

    def url(self) -> str:
        shown = "127.0.0.1" if self.any_host else (f"[{self.host}]" if ":" in self.host else self.host)
        return f"http://{shown}:{self.port}/?token={self.token}"

    # -- checks ----------------------------------------------------------------------------------

    def _token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _host_ok(self, request: web.Request) -> bool:
        name = _hostname(request.host)
        return self.any_host or name in self.hosts or _is_loopback(name)

    @staticmethod
    def _origin_ok(request: web.Request) -> bool:
        """A browser always sends Origin on a WebSocket: it must be this very page's origin.
        Clients that are not browsers send none; the token is their lock."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not self._host_ok(request):
            raise web.HTTPForbidden(text=f"gdw-tui: Host {request.host!r} is not this server's; open the URL gdw tui printed\n")
        return await handler(request)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        # The browser's script adds ?width=&height= to the WebSocket URL, so the token is in its path.
        app.router.add_get("/ws/{token}", self.handle_websocket)
        return app

    # -- handlers --------------------------------------------------------------------------------

    async def handle_index(self, request: web.Request) -> Any:
        if not self._token_ok(request.query.get("token")):
            raise web.HTTPForbidden(text="gdw-tui: a token is required: open the URL gdw tui printed (…/?token=…)\n")
        context = await Server.handle_index.__wrapped__(self, request)  # its template data, unrendered
        # Addresses as the browser reached us (an SSH tunnel may use another name and port).
        scheme = "wss" if request.secure else "ws"
        context["app_websocket_url"] = f"{scheme}://{request.host}/ws/{self.token}"
        context["config"]["static"]["url"] = "/static/"
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of other sites' logs
        return response

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._token_ok(request.match_info.get("token") or request.query.get("token")):
            raise web.HTTPForbidden(text="gdw-tui: wrong or missing token\n")
        if not self._origin_ok(request):
            raise web.HTTPForbidden(text=f"gdw-tui: Origin {request.headers.get('Origin')!r} is not this server's\n")
        return await super().handle_websocket(request)

    async def on_startup(self, app: web.Application) -> None:
        pass  # run_tui prints the one line that matters: the URL with its token
