"""The one error type a user sees: a single sentence, no traceback."""


class EvoloraError(Exception):
    """A problem with the user's input (config, path, dataset, checkpoint), told in one sentence.

    The CLI prints it in red and exits with code 2; `--debug` shows the traceback instead.
    """
