"""adapters.core.logs: configured secrets never reach a log line; JSON and text formats."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from adapters.core.logs import SecretMask, configure_logging

TOKEN = "tok-SUPER-secret-123"
CLIENT_SECRET = "cs-VERY-secret-456"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def masked() -> Iterator[tuple[logging.Logger, Collect]]:
    logger = logging.getLogger("dos_adapters.test_logs")
    handler = Collect()
    handler.addFilter(SecretMask([TOKEN, CLIENT_SECRET, "abc", "", "tok-SUPER"]))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, handler
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_secret_in_the_message_is_masked(masked: tuple[logging.Logger, Collect]) -> None:
    logger, handler = masked
    logger.warning(f"calling broker with Bearer {TOKEN}")
    assert handler.lines == ["calling broker with Bearer ***"]


def test_secret_in_args_is_masked(masked: tuple[logging.Logger, Collect]) -> None:
    logger, handler = masked
    logger.error("token %s and secret %r for %d tries", TOKEN, CLIENT_SECRET, 3)
    assert handler.lines == ["token *** and secret '***' for 3 tries"]


def test_secret_in_mapping_args_is_masked(masked: tuple[logging.Logger, Collect]) -> None:
    logger, handler = masked
    logger.info("form %(form)s", {"form": {"client_secret": CLIENT_SECRET}})
    assert handler.lines == ["form {'client_secret': '***'}"]


def test_longest_secret_is_masked_first(masked: tuple[logging.Logger, Collect]) -> None:
    # "tok-SUPER" is a prefix of TOKEN; masking it first would leave "-secret-123" in the log.
    logger, handler = masked
    logger.info("x %s y", TOKEN)
    assert handler.lines == ["x *** y"]
    assert "secret-123" not in handler.lines[0]


def test_short_secrets_are_not_masked(masked: tuple[logging.Logger, Collect]) -> None:
    # Masking "abc" would turn every word containing it into noise; secrets under 4 chars are ignored.
    logger, handler = masked
    logger.info("abcdef")
    assert handler.lines == ["abcdef"]


def test_every_occurrence_is_masked(masked: tuple[logging.Logger, Collect]) -> None:
    logger, handler = masked
    logger.info("%s%s", TOKEN, TOKEN)
    assert handler.lines == ["******"]


def test_without_secrets_the_record_is_untouched() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", ("b",), None)
    assert SecretMask([]).filter(record) is True
    assert (record.msg, record.args) == ("a %s", ("b",))


def test_filter_never_drops_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", (TOKEN,), None)
    assert SecretMask([TOKEN]).filter(record) is True
    assert record.getMessage() == "a ***"


@contextmanager
def root_logging_restored() -> Iterator[None]:
    """configure_logging replaces the root handlers (pytest's own too); put them back inside the test call."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    apscheduler_level = logging.getLogger("apscheduler").level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        logging.getLogger("apscheduler").setLevel(apscheduler_level)


def test_configure_logging_json_lines_with_secrets_masked(capsys: pytest.CaptureFixture[str]) -> None:
    with root_logging_restored():
        configure_logging("DEBUG", "json", secrets=[TOKEN])
        logging.getLogger("dos_adapters.broker").info("token %s refused", TOKEN)
        logging.getLogger("some.library").debug("plain")
        apscheduler_level = logging.getLogger("apscheduler").getEffectiveLevel()
    lines = capsys.readouterr().err.splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "token *** refused"
    assert first["level"] == "INFO"
    assert first["logger"] == "dos_adapters.broker"
    assert first["time"].endswith("Z")
    assert second["message"] == "plain"
    assert TOKEN not in "".join(lines)
    assert apscheduler_level == logging.WARNING


def test_configure_logging_text_respects_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    with root_logging_restored():
        configure_logging("WARNING", "text", secrets=[CLIENT_SECRET])
        logger = logging.getLogger("dos_adapters.sink")
        logger.info("hidden by level")
        logger.warning("secret=%s", CLIENT_SECRET)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("WARNING dos_adapters.sink: secret=***")
