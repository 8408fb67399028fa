"""Who may ask, and what the browser may do with the answer.

- **Token.** Bound to a loopback address the viewer needs none (unless one is given); on any
  other address every request must carry it: ``?token=`` once (answered with a redirect that
  sets an HttpOnly, SameSite=Strict cookie and drops the token from the address bar), the
  cookie, or an ``Authorization: Bearer`` header. Compared with :func:`hmac.compare_digest`;
  missing is 401, wrong is 403. The token is never written into a page, a log or an error.
- **Host.** Bound to loopback, a request must name a loopback host (``127.0.0.1``,
  ``localhost``, ``[::1]``): a web page whose domain an attacker points at 127.0.0.1 (DNS
  rebinding) is refused.
- **Headers.** A strict Content-Security-Policy (scripts and styles from this server only, no
  inline ones), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, no
  framing, and ``Cache-Control: no-store`` on data pages.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MIN_TOKEN = 16

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Access:
    """What a request must show: ``token`` (None: nothing) and, when bound to loopback, a loopback Host."""

    token: str | None
    loopback: bool
    port: int

    @property
    def cookie(self) -> str:
        """The cookie's name (per port: cookies are shared by every port of a host)."""
        return f"agentsynth_view_{self.port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token (``secrets``, 32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def check_token(token: str) -> str | None:
    """Why ``token`` cannot be used (None when it can)."""
    if len(token) < MIN_TOKEN:
        return f"--token must be at least {MIN_TOKEN} characters (omit it to have one generated)"
    if not token.isascii() or not token.isprintable() or any(c in token for c in " ;,\"\\"):
        return "--token may hold printable ASCII characters other than space ; , \" \\"
    return None


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


Refuse = Callable[[web.Request, int, str], web.StreamResponse]


def middleware(access: Access, refuse: Refuse) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The aiohttp middleware enforcing ``access``; ``refuse(request, status, message)`` builds the
    answer to a refused request."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if access.loopback and not is_loopback(request.url.host or ""):
            return refuse(request, 403, "this viewer answers requests to 127.0.0.1 or localhost only "
                                        "(start it with --host to serve other names; a token is then required)")
        if access.token is None:
            return await handler(request)
        token = access.token
        query = request.query.get("token")
        if query is not None:
            if not _same(query, token):
                return refuse(request, 403, "wrong token")
            rest = [(k, v) for k, v in request.query.items() if k != "token"]
            target = request.rel_url.with_query(rest) if rest else request.rel_url.with_query(None)
            resp = web.Response(status=303, headers={"Location": str(target)})
            resp.set_cookie(access.cookie, token, httponly=True, samesite="Strict", path="/")
            return resp
        auth = request.headers.get("Authorization", "")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "bearer" or not _same(value.strip(), token):
                return refuse(request, 403, "wrong token")
            return await handler(request)
        cookie = request.cookies.get(access.cookie)
        if cookie is None:
            resp = refuse(request, 401, "a token is required: open the URL `agentsynth view` printed (it ends in ?token=…), "
                                        "or send Authorization: Bearer TOKEN")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="agentsynth view"'
            return resp
        if not _same(cookie, token):
            return refuse(request, 403, "wrong token (the cookie holds another one: open the URL `agentsynth view` printed)")
        return await handler(request)

    return guard


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the security headers on every response (errors and redirects too)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
