"""The one error type every wire codec raises on malformed or truncated input.

Codecs never return a half-decoded record: a buffer either decodes completely or raises
:class:`ProtocolError` naming what was wrong and where.
"""


class ProtocolError(ValueError):
    """Malformed or truncated wire data.

    Parameters
    ----------
    message : str
        What was wrong, in words a person reading a log can act on.
    offset : int
        Byte offset of the problem in the buffer (or stream) the decoder was given. For
        truncated input it is the offset where more bytes were expected, i.e. the length of
        what was present.

    Attributes
    ----------
    message : str
        As given.
    offset : int
        As given.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message, offset)
        self.message = message
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.message} (at byte offset {self.offset})"
