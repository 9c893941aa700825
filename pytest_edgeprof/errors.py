"""The one exception type for bad user input.

Anything a user typed or pointed us at that we cannot use raises ``UsageError`` with one line that
names the bad value and what is accepted. The plugin turns it into pytest's usage-error exit code (4),
the CLI into exit code 2; neither shows a traceback.
"""


class UsageError(ValueError):
    """Bad user input: an option, ini value, marker argument, file or CLI argument."""
