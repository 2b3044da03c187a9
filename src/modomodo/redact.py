"""Credentials out of everything modomodo writes: artifacts, reports, logs, metric labels.

Storage URLs and endpoints come from Secrets (``MODOMODO_STUDY_STORAGE`` holds
``postgresql://user:password@host/db``) and end up in proposals, console lines and error
messages. Every place that writes one passes it through :func:`redact_url` first.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

REDACTED = "***"

_SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|credential|signature|(^|_)key$", re.IGNORECASE)
"""Query parameters that carry a secret (libpq's ``password``/``sslpassword``, S3 presigned
``X-Amz-Signature``/``X-Amz-Credential``, ``access_token``, ``api_key``...)."""


def redact_url(url: str | None) -> str | None:
    """``url`` with the password of its user info and every secret query parameter replaced by
    ``***``; the user name, host, port, path and other parameters stay (they say where, not how to
    get in). Anything that is not a URL with a scheme and a host comes back unchanged."""
    if not url or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        port = parts.port  # validates it
    except ValueError:
        # Unparseable: keep only the scheme, so a malformed URL cannot smuggle its password out.
        return f"{url.split('://', 1)[0]}://{REDACTED}"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, _ = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{user}@{host}"
        if port is not None:
            netloc += f":{port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if _SECRET_PARAMETER.search(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    # Rebuilt by hand: urlunsplit drops the empty authority of sqlite:////abs/path.
    return (
        f"{parts.scheme}://{netloc}{parts.path}"
        + (f"?{query}" if query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")


def redact_text(text: str) -> str:
    """``text`` (an error message from a library) with every URL in it passed through
    :func:`redact_url`: botocore and SQLAlchemy repeat the endpoint or database URL they failed on."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)) or "", text)
