"""The browser sign-in code the request form and the approval page share.

Each page inlines one script under its response's CSP nonce (it loads nothing from elsewhere), so the
shared code goes in front of the page's own: ``static/sign_in.js`` defines ``cvpnSignIn`` (the
session's token keys, ``claimsOf``, ``currentToken``), which the page's script reads.
"""

from functools import lru_cache
from pathlib import Path

__all__ = ["with_sign_in"]

SIGN_IN_SCRIPT = Path(__file__).resolve().parent / "static" / "sign_in.js"


@lru_cache(maxsize=1)
def _sign_in_script() -> str:
    return SIGN_IN_SCRIPT.read_text()


def with_sign_in(page_script: str) -> str:
    """``page_script`` preceded by the shared sign-in code, as one inline script."""
    return _sign_in_script() + "\n" + page_script
