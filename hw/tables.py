"""Amaranth layouts of the register map's tables: the gateware never retypes a field."""

from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from wiregate.sw.regmap import RegisterMap

__all__ = ["entry_layout", "read_signature", "write_signature"]


def entry_layout(regmap: RegisterMap, table: str) -> data.StructLayout:
    """The fields of one entry of ``table``, by name and width, as declared in the regmap.

    The layout packs fields densely; word placement on the control bus is the register
    file's business, not the datapath's.
    """
    return data.StructLayout({f.name: f.width for f in regmap.table(table).fields})


def write_signature(regmap: RegisterMap, table: str) -> wiring.Signature:
    """A one-entry-per-cycle write port into ``table`` (driven by the register file)."""
    return wiring.Signature({
        "en": Out(1),
        "index": Out(range(regmap.table(table).depth)),
        "entry": Out(entry_layout(regmap, table)),
    })


def read_signature(regmap: RegisterMap, table: str) -> wiring.Signature:
    """A host read of one entry of ``table`` through its owner's table read port.

    The reader holds ``index`` from one cycle on; from the third cycle after, in any cycle
    with ``ok`` high, ``data`` is the entry at ``index`` (of a banked table: its shadow
    bank). The owner raises ``ok`` only in cycles its read port was free for the host, and
    may register its answer up to twice after its memory's read (its data then follows the
    index by up to three cycles).
    """
    return wiring.Signature({
        "index": Out(range(regmap.table(table).depth)),
        "data": In(entry_layout(regmap, table)),
        "ok": In(1),
    })
