"""Secrets kept out of what a run writes and prints (`_run.json`, the work folder's `_job.json`,
log and progress lines, error lines): the value of every setting whose key Spark's
`spark.redaction.regex` matches (by default: secret, password, token, access key), as Spark's UI
and event log hide them, and a password written into a URI (scheme://user:password@host/..., or a
query parameter such as ?password=...).

Redaction is a pure function of the text, so a rerun with the same (or another) secret records the
same parameters and resumes its unfinished work."""

from __future__ import annotations

import logging
import re

# spark.redaction.regex's default; a session's own setting replaces it (pattern_of)
DEFAULT_PATTERN = r"(?i)secret|password|token|access[.]?key"
REDACTED = "*********(redacted)"  # what Spark writes in its place
# a setting's key: dotted (spark.hadoop.fs.s3a.secret.key) or an environment variable's name
_SETTING_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)+|[A-Z][A-Z0-9_]*")
_SETTING = re.compile(rf"(?P<key>{_SETTING_KEY.pattern})=(?P<value>[^\s,;'\"]+)")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*):[^/@\s]*@")
# a URI's query parameter (redis://host/0?password=...)
_QUERY = re.compile(r"(?P<lead>[?&])(?P<key>[A-Za-z0-9_.\-]+)=(?P<value>[^&#\s'\"]*)")


def pattern_of(spark) -> str:
    """The session's spark.redaction.regex, or Spark's default."""
    return spark.conf.get("spark.redaction.regex", DEFAULT_PATTERN)


def is_secret(key: str, pattern: str = DEFAULT_PATTERN) -> bool:
    return re.search(pattern, key) is not None


def redact_text(text: str, pattern: str = DEFAULT_PATTERN) -> str:
    """`key=value` with a secret key (a --conf item, a line quoting one) -> `key=REDACTED`, and
    URIs without the password of their user info."""
    def setting(match: re.Match) -> str:
        key = match.group("key")
        return f"{key}={REDACTED}" if is_secret(key, pattern) else match.group(0)

    def query(match: re.Match) -> str:
        key = match.group("key")
        return f"{match.group('lead')}{key}={REDACTED}" if is_secret(key, pattern) \
            else match.group(0)

    text = _QUERY.sub(query, _SETTING.sub(setting, text))
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{REDACTED}@", text)


def redact_argv(argv: list[str], pattern: str = DEFAULT_PATTERN) -> list[str]:
    """A command line without secrets: the value of a `--conf key=value` (or `--conf=key=value`)
    whose key is secret, whole (it may hold spaces), and URI passwords anywhere."""
    def one(arg: str) -> str:
        head, flag, rest = arg.partition("--conf=")
        key, equals, _ = (rest if flag and not head else arg).partition("=")
        if equals and _SETTING_KEY.fullmatch(key) and is_secret(key, pattern):
            return f"{flag}{key}={REDACTED}" if flag and not head else f"{key}={REDACTED}"
        return redact_text(arg, pattern)

    return [one(arg) for arg in argv]


def redact_value(value, pattern: str = DEFAULT_PATTERN):
    """Strings in a JSON-like value (a run's parameters, its inputs) without secrets."""
    if isinstance(value, str):
        return redact_text(value, pattern)
    if isinstance(value, dict):
        return {k: redact_value(v, pattern) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v, pattern) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A log handler's filter: the message, formatted, without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
