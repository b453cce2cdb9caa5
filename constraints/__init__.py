"""Board platforms for the gateway's bitstreams, chosen by name (see README.md)."""

from .boards import BOARDS, Board, board

__all__ = ["BOARDS", "Board", "board"]
