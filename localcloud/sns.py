"""SNS Publish's rules on ``Subject``, as AWS applies them.

The Publish reference: a subject is text "with no line breaks or control characters" that begins with
a letter, number or punctuation mark, "less than 100 characters long". moto checks the length only. AWS
itself accepts 100 characters and refuses 101 (moto issue 1503), so the length rule here is moto's;
the others refuse what AWS refuses, with the error AWS answers: ``InvalidParameter``,
"Invalid parameter: Subject". A refused publish is what sends an e-mail alert to the dead-letter queue.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["install", "installed", "subject_problem", "uninstall"]

_lock = threading.Lock()
_originals: dict[str, Callable[..., Any]] = {}


def subject_problem(subject: str | None) -> str | None:
    """Why SNS refuses ``subject``, or ``None`` when it takes it."""
    if subject is None:
        return None
    if not subject or subject[0].isspace():
        return "the subject must begin with a letter, number or punctuation mark"
    if not subject.isprintable():
        return "the subject must not include line breaks or control characters"
    return None


def install() -> None:
    """Make moto's SNS Publish (and PublishBatch's entries) refuse what AWS refuses (idempotent)."""
    from moto.sns.exceptions import SNSInvalidParameter
    from moto.sns.models import SNSBackend

    with _lock:
        if _originals:
            return
        original = SNSBackend.publish

        @functools.wraps(original)
        def publish(self: Any, *args: Any, **kwargs: Any) -> Any:
            problem = subject_problem(kwargs.get("subject"))
            if problem is not None:
                raise SNSInvalidParameter(f"Invalid parameter: Subject ({problem})")
            return original(self, *args, **kwargs)

        _originals["publish"] = original
        SNSBackend.publish = publish  # type: ignore[method-assign]


def uninstall() -> None:
    """Give moto its own Publish back."""
    from moto.sns.models import SNSBackend

    with _lock:
        for name, original in _originals.items():
            setattr(SNSBackend, name, original)
        _originals.clear()


def installed() -> bool:
    return bool(_originals)
