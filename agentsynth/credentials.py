"""Credentials: keeping keys out of everything agentsynth stores, prints or writes.

One stripper for URLs (:func:`strip_credentials`: no userinfo, no query string) and one redactor
for error text (:func:`redact`: the endpoint's own secrets in every encoding a server may echo,
plus anything shaped like a credential). Base URLs with userinfo are refused
(:func:`check_base_url`): an HTTP client would send it as Basic auth in place of the Bearer key.
A ``base_url`` may also be a list of URLs (several endpoints serving one model): each is checked
alike (:func:`check_base_urls`) and they are stored joined by commas (:func:`stored_base_url`).
A query string is honoured — sent with every request (:func:`split_query`), as some providers need
(e.g. Azure's ``api-version``) — but never stored or printed.

This module imports nothing from agentsynth, so every layer (spec, runner, models, episodes,
store, CLI) may import it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

REDACTED = "[redacted]"

USERINFO_REFUSED = (
    "credentials in a URL (user:password@) are refused: they would be sent as HTTP Basic auth in place "
    "of the API key; remove them and name the variable holding the key with api_key_env"
)

NOT_HTTP = "not an http:// or https:// URL with a host (e.g. http://127.0.0.1:8000/v1)"

TWO_IN_ONE = ("several URLs in one string: give a list (base_url = [\"http://…\", \"http://…\"] in a spec, "
              "--base-url once per URL on the command line)")

MIN_SECRET = 4
"""Shorter values (e.g. ``?v=1``) are not treated as secrets: replacing them would garble text."""


def _netloc(netloc: str) -> str:
    """``netloc`` without ``user:password@`` (the host as written, with its port)."""
    return netloc.rpartition("@")[2]


def strip_credentials(url: str | None) -> str | None:
    """``url`` without ``user:password@``, without its query string and fragment (each can carry a
    key): the form in which an endpoint is stored, printed or logged."""
    if not url:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, _netloc(parts.netloc), parts.path, "", ""))


def check_base_url(url: str | None) -> str | None:
    """``url`` unchanged; ``ValueError`` (message without the URL) when it carries userinfo, is
    not an ``http://`` / ``https://`` URL with a host, or is several URLs joined by commas."""
    if not url:
        return url
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValueError(USERINFO_REFUSED)
    if parts.scheme.lower() not in ("http", "https") or not _netloc(parts.netloc):
        raise ValueError(NOT_HTTP)
    if re.search(r",\s*https?://", url, re.IGNORECASE):
        raise ValueError(TWO_IN_ONE)
    return url


BaseUrl = str | Sequence[str] | None
"""A ``base_url`` as a spec or a caller gives it: one URL, a list of URLs (several endpoints
serving the same model), or None (api.openai.com, or an in-process model)."""


def base_url_list(value: BaseUrl) -> list[str]:
    """The URLs of a ``base_url`` value, in order ([] for None)."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def check_base_urls(value: object) -> str | list[str] | None:
    """A ``base_url`` value checked: None, one URL, or a list of two or more distinct URLs, each
    through :func:`check_base_url`; a one-item list becomes its URL (so a run given one URL either
    way is the same run). ``ValueError`` (naming the item by position, never quoting a URL)
    otherwise."""
    if value is None or isinstance(value, str):
        return check_base_url(value)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"a URL or a list of URLs, not {type(value).__name__}")  # noqa: TRY004 - pydantic reports ValueErrors
    if not value:
        raise ValueError("an empty list: give one URL or more, or leave base_url out")
    seen: dict[str, int] = {}
    for i, url in enumerate(value, 1):
        where = f"item {i} of {len(value)}"
        if not isinstance(url, str) or not url:
            raise ValueError(f"{where}: a URL, not {type(url).__name__ if not isinstance(url, str) else 'an empty string'}")
        try:
            check_base_url(url)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        stored = strip_credentials(url) or ""
        if len(value) > 1 and "," in stored:
            raise ValueError(f"{where}: a URL in a list may not contain a comma (runs.base_url joins them with commas)")
        if stored in seen:
            raise ValueError(f"{where}: the same endpoint as item {seen[stored]}")
        seen[stored] = i
    return value[0] if len(value) == 1 else list(value)


def stored_base_url(value: BaseUrl) -> str | None:
    """How a ``base_url`` value is stored and printed (``runs.base_url``, ``evaluations.base_url``,
    error lines): each URL without credentials (:func:`strip_credentials`), several joined by
    commas in order (``http://a:8000/v1,http://b:8000/v1``); one URL is exactly its stripped form."""
    if value is None or isinstance(value, str):
        return strip_credentials(value)
    return ",".join(strip_credentials(u) or "" for u in value)


def split_query(url: str | None) -> tuple[str | None, dict[str, str]]:
    """(``url`` without its query string and fragment, the query's parameters): the base URL a
    client is given and the parameters it sends with every request."""
    if not url:
        return url, {}
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return base, dict(parse_qsl(parts.query, keep_blank_values=True))


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The values in ``url`` that may be secrets: its query values, its user name and password,
    and ``user:password`` (the HTTP Basic credential)."""
    if not url:
        return ()
    parts = urlsplit(url)
    out = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    if "@" in parts.netloc:
        user, _, password = parts.netloc.rpartition("@")[0].partition(":")
        out += [user, password, f"{user}:{password}"]
    return tuple(out)


def secret_values(*values: str | None) -> tuple[str, ...]:
    """The values worth redacting (long enough, not a placeholder), each once."""
    return tuple(dict.fromkeys(v for v in values if v and len(v) >= MIN_SECRET and v != "not-needed"))


def encoded_forms(secret: str) -> list[str]:
    """``secret`` as a server may echo it: raw, URL-quoted, and base64 (standard and URL-safe, with
    and without padding, and at each of the three alignments it can have inside a longer encoded
    string, such as a Basic credential ``user:secret``)."""
    raw = secret.encode()
    forms = [secret, quote(secret, safe=""), quote(secret)]
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms += [whole, whole.rstrip("=")]
        for k in range(3):  # the characters that depend on the secret's bytes alone
            shifted = encode(b"\0" * k + raw).decode()
            forms.append(shifted[-(-8 * k // 6):(8 * (k + len(raw)) - 6) // 6 + 1])
    return [f for f in dict.fromkeys(forms) if len(f) >= MIN_SECRET]


# URL userinfo (scheme://user:password@)
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^\s/?#@\"'<>]+@", re.I)
# a header or field echoed back: Authorization: Basic xyz, "x-api-key": "xyz", api_key=xyz
_FIELD = re.compile(
    r"\b((?:proxy-)?authorization|x-api-key|api[-_]?key|access[-_]?token|client[-_]?secret|password)"
    r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)(?:(bearer|basic|token|digest)\s+)?(\[redacted\]|[^\s\"'\\,;&)}\]]+)",
    re.I,
)
# an auth scheme's credential anywhere: Bearer xyz, Basic YWxpY2U6...
_SCHEME = re.compile(r"\b(bearer|basic)\s+(?!\[redacted\])[A-Za-z0-9._~+/\-]{6,}=*", re.I)
# a URL query value: ?key=xyz&sig=abc
_QUERY = re.compile(r"([?&][A-Za-z0-9_.\-\[\]]+=)(?!\[redacted\])[^&\s#\"'<>)\\]+")
# an API key by its shape: sk-..., key-...
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key)-[A-Za-z0-9_\-*.]{6,}", re.I)


def _field(m: re.Match[str]) -> str:
    scheme = f"{m[3]} " if m[3] else ""
    return f"{m[1]}{m[2]}{scheme}{REDACTED}"


def redact(text: str, secrets: Sequence[str] | Iterable[str] = ()) -> str:
    """``text`` with every known secret (each of :func:`encoded_forms`) and anything shaped like a
    credential — URL userinfo and query values, ``Authorization``/api-key fields, ``Bearer`` and
    ``Basic`` credentials, ``sk-``-style keys — replaced by ``[redacted]``."""
    forms = {f for s in secret_values(*secrets) for f in encoded_forms(s)}
    for form in sorted(forms, key=len, reverse=True):  # longest first: a form may contain another
        text = text.replace(form, REDACTED)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    text = _FIELD.sub(_field, text)
    text = _SCHEME.sub(rf"\1 {REDACTED}", text)
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    return _KEYLIKE.sub(REDACTED, text)
