"""Errors the user can fix. The CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """Bad input or flags: the message names what is wrong and what to do."""
