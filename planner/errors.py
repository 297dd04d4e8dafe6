"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""


class PlannerError(Exception):
    """An input problem the user can fix; the message names the field and the reason."""
