"""What collab's log output looks like, and what it never contains.

Human-readable lines by default, or one JSON object per line
(`COLLAB_LOG_FORMAT=json`: time, level, logger, message, and exception when
there is one). Every record passes `RedactSecrets` first, whoever logged it
(collab, aiohttp's access log, a library): credentials in URLs and headers are
replaced by `***` before anything is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from types import TracebackType

from collab.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: aiohttp's access log line, without its own timestamp (the record has one) and
#: without the Referer (a URL the server does not control). `%r` is the request
#: line, query string included: RedactSecrets cleans it.
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs "%{User-Agent}i"'
#: What replaces a secret.
MASK = "***"

_SECRETS = (
    # Query, form or fragment parameters that carry a credential: token=, access_token=,
    # api_key=, password=, ... (also in free text: "token=abc").
    (re.compile(r"(?i)\b((?:[a-z]+_)?token|secret|password|passwd|api_?key|jwt)=[^&\s#\"'<>]+"),
     rf"\1={MASK}"),
    # The same names as quoted keys: a dict's or MultiDict's repr, JSON, a tuple.
    (re.compile(r"(?i)([\"'](?:(?:[a-z]+_)?token|secret|password|passwd|api_?key|jwt)[\"']"
                r"\s*[:,]\s*[\"'])[^\"']*"),
     rf"\1{MASK}"),
    # Authorization, Proxy-Authorization and cookie headers, as `Name: value` or in a
    # dict's repr: everything up to the end of the value.
    (re.compile(r"(?i)\b((?:proxy-)?authorization|(?:set-)?cookie)([\"']?\s*[:=]\s*[\"']?)"
                r"[^\"'\r\n]+"),
     rf"\1\2{MASK}"),
    # A bearer token on its own (a header value without its name).
    (re.compile(r"(?i)\bbearer\s+[a-z0-9._~+/=-]+"), f"Bearer {MASK}"),
    # The password in a URL: scheme://user:password@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/\s]+@"), rf"\1{MASK}@"),
)


def redact(text: str) -> str:
    """`text` with every credential pattern above masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


#: Attributes every LogRecord has; anything else came in through `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class RedactSecrets(logging.Filter):
    """Masks credentials in a record's message, exception text, stack and `extra`
    fields (aiohttp's access log passes the request line and headers there) before
    any formatter sees them. Attached to the handler, so it covers every logger."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in vars(record).items():
            if name in _RECORD_FIELDS:
                continue
            if isinstance(value, str):
                setattr(record, name, redact(value))
            elif isinstance(value, dict):  # e.g. {"Authorization": "..."} of the access log
                setattr(record, name, {key: _redact_field(key, item)
                                       for key, item in value.items()})
        return True


#: Header names whose whole value is a secret.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def _redact_field(name: object, value: object) -> object:
    if not isinstance(value, str):
        return value
    return MASK if str(name).lower() in SECRET_HEADERS else redact(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(settings: Settings) -> None:
    """Send every record at `settings.log_level` and above to stderr, redacted, as text
    lines or JSON objects, uncaught exceptions included. Replaces any handler the root
    logger had."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], error: BaseException, tb: TracebackType | None,
                  ) -> None:
    """An exception that ends the process (a store unreachable at start) is one more
    record: in the configured format, and redacted (its text may hold a URL)."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    logging.getLogger("collab").critical("exiting on an unexpected error: %s", error,
                                         exc_info=(kind, error, tb))


#: Seconds between two lines of one recurring event (Throttled): an attacker or a
#: failing dependency can repeat an event thousands of times a second, and a log
#: that grows by megabytes a second fills the disk and hides everything else.
DEFAULT_LOG_INTERVAL = 10.0


class Throttled:
    """One recurring log line, written at most once per `interval` seconds; the next
    one written says how many were left out meanwhile. For events a client or a
    failing dependency can repeat at will: accept errors, refused sockets, a failing
    readiness check."""

    __slots__ = ("_left_out", "_next", "interval", "logger")

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_LOG_INTERVAL) -> None:
        self.logger = logger
        self.interval = interval
        self._next = 0.0
        self._left_out = 0

    def log(self, level: int, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._left_out += 1
            return
        self._next = now + self.interval
        if self._left_out:
            message += " (and %d more like it since the last such line)"
            args = (*args, self._left_out)
            self._left_out = 0
        self.logger.log(level, message, *args)


def announce(message: str, log_format: str) -> None:
    """Print `message` on stdout, where scripts wait for it (the ready line): as is, or,
    in the JSON format, as an INFO record of logger `collab` (still containing the text,
    so a search for it finds it in both formats)."""
    if log_format == "json":
        record = logging.makeLogRecord({"name": "collab", "levelno": logging.INFO,
                                        "levelname": "INFO", "msg": redact(message)})
        message = JsonFormatter().format(record)
    print(message, flush=True)
