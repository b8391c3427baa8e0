"""Outbound HTTP with the standard library (no extra dependency in the layer), redirects not followed.

Every URL the product posts to is configured by an operator and carries a secret (a ticket system's
credentials, a chat webhook whose URL is the secret): a redirect is answered as it is, never
followed, so the request and its credentials go nowhere else.
"""

from __future__ import annotations

import urllib.request

__all__ = ["no_redirects_opener"]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Answers a redirect as it is (an ``HTTPError`` with the 3xx status) instead of following it."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def no_redirects_opener() -> urllib.request.OpenerDirector:
    """An opener like ``urllib.request.urlopen``'s, except that it never follows a redirect."""
    return urllib.request.build_opener(_NoRedirects())
