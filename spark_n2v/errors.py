"""Errors the user can fix, named in the caller's terms.

A message names parameters in braces: `{walk.return_p}` (a config field: its table and name, as in
a config file and `_run.json`), `{embeddings}` (an input or option of a stage), or with a value,
`{walk.engine=local}`, `{overwrite=True}`. The library writes them as a Python caller would
(`walk.return_p`, `walk.engine=local`); a front end renders them in its own terms: the CLI as its
flags (`--p`, `--engine local`, `--overwrite`), the Python API as its keyword arguments. Values
from the data (ids, file names, weights) are keyword arguments, formatted once into the finished
text, so braces in the data are never taken for parameters.
"""

from __future__ import annotations

import re
import string
from typing import Any, Callable

# (parameter, value or None) -> how the caller writes it
Namer = Callable[[str, "str | None"], str]


def library_name(param: str, value: str | None) -> str:
    return param if value is None else f"{param}={value}"


def first_line(exc: BaseException) -> str:
    """An exception's first line: Spark's and pyarrow's messages go on with stack traces."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def unreadable_file(exc: BaseException) -> tuple[str, str] | None:
    """(file, why) when Spark failed to read one input file (a truncated or foreign file among
    the part files), else None."""
    text = str(exc)
    found = re.search(r"FAILED_READ_FILE[^\n]*?reading file (\S+?)\.?\s", text)
    if found is None:
        return None
    causes = [line.split(": ", 1)[-1] for line in text.splitlines()
              if line.startswith("Caused by: ")]
    why = causes[-1] if causes else first_line(exc)
    return found.group(1), (why.replace(found.group(1), "the file")[:300])


class UserError(Exception):
    """Bad input or parameters: the message says what is wrong and what to do. The CLI prints it
    as one line and exits with status 2."""

    def __init__(self, template: str, **values: Any) -> None:
        super().__init__(template)
        self.template = template
        self.values = values
        self.namer: Namer = library_name

    def named_by(self, namer: Namer) -> UserError:
        """The same error, its parameters named by `namer` when printed."""
        renamed = UserError(self.template, **self.values)
        renamed.namer = namer
        return renamed

    def render(self, name: Namer = library_name) -> str:
        """The message with its parameters named by `name`."""
        out = []
        for literal, field, spec, conversion in string.Formatter().parse(self.template):
            out.append(literal)
            if field is None:
                continue
            if field in self.values:
                value = self.values[field]
                value = repr(value) if conversion == "r" else str(value) if conversion == "s" \
                    else value
                out.append(format(value, spec or ""))
            else:
                param, _, given = field.partition("=")
                out.append(name(param, given if _ else None))
        return "".join(out)

    def __str__(self) -> str:
        return self.render(self.namer)
