"""The error of a batch that cannot start."""


class BatchError(Exception):
    """A batch that cannot start (bad folders, no executor); one line naming the cause."""
