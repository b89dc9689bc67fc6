"""The one exception a user's mistake raises."""


class UserError(Exception):
    """A mistake in the user's input: reported in one line, exit code 2, nothing started."""
