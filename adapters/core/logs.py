"""Logging set-up: text or JSON lines on stderr, with configured secrets masked in every record."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = ["SecretMask", "configure_logging", "mask_secrets", "secret_forms"]


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Each secret of 4+ characters as written and as JSON escapes it (a quote, a backslash), longest
    first so a secret containing another is masked whole."""
    forms = {
        form
        for secret in secrets
        if len(secret) >= 4
        for form in (secret, json.dumps(secret, ensure_ascii=False)[1:-1])
    }
    return sorted(forms, key=len, reverse=True)


def mask_secrets(text: str, forms: Iterable[str]) -> str:
    for form in forms:
        text = text.replace(form, "***")
    return text


class SecretMask(logging.Filter):
    """Replaces every configured secret by ``***`` in the formatted message, whoever logged it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = secret_forms(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg, record.args = mask_secrets(record.getMessage(), self.secrets), None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(SecretMask(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler logs every job run at INFO; keep its noise out of the adapters' log.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
