"""HTTP to the ticket systems (Jira, GitHub, any URL): one POST with a timeout, status and a short body."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from cvpn_shared.core.http import no_redirects_opener

__all__ = ["HttpAnswer", "UrllibPoster"]


@dataclass(frozen=True)
class HttpAnswer:
    """``status`` 0 means no HTTP answer at all (connection refused, timeout, DNS)."""

    status: int
    body: str
    error: str | None = None


class UrllibPoster:
    """POSTs with the standard library (no extra dependency in the layer); redirects are not followed."""

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self._timeout = timeout_seconds
        self._opener = no_redirects_opener()

    def post(self, url: str, headers: dict[str, str], body: bytes) -> HttpAnswer:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return HttpAnswer(int(response.status), response.read(4096).decode("utf-8", "replace"))
        except urllib.error.HTTPError as error:
            return HttpAnswer(int(error.code), error.read(4096).decode("utf-8", "replace"))
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            return HttpAnswer(0, "", str(getattr(error, "reason", error)))
