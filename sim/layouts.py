"""Packed Amaranth layouts as Python values: a wide port's integer as named fields, and back.

cocotb sees a structured port (the Ingress ``o__payload``, hundreds of bits of nested
:mod:`amaranth.lib.data` layouts) as one integer. :func:`unpack` turns that integer into
nested dicts and lists, :func:`pack` builds one from them for stimulus. Every offset and
width is read from the layout object itself, so a field added or widened in ``hw/`` is
followed here without a second declaration that could drift.

Values are plain ints: a struct, union or flexible layout is a dict keyed by field name, an
array layout a list, an enum-shaped field its integer value, and a signed field a negative
int when its top bit is set.
"""

import enum
from collections.abc import Mapping, Sequence

from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data

__all__ = ["pack", "unpack"]


class _Node:
    """A shape resolved once: its kind and, for a layout, each field's offset, mask and node.

    Reading amaranth's layout objects field by field is slow (about 0.5 ms for one Ingress
    beat), too slow for a bench that unpacks every cycle; a node tree is built once per
    layout and reused.
    """

    __slots__ = ("fields", "kind", "layout", "signed", "width")

    def __init__(self, shape):
        shape = _resolve(shape)
        if isinstance(shape, data.Layout):
            self.layout, self.width, self.signed = shape, shape.size, False
            subs = {key: (field.offset, (1 << field.width) - 1, _node(field.shape))
                    for key, field in shape}
            if isinstance(shape, data.ArrayLayout):
                self.kind, self.fields = _ARRAY, tuple(subs.values())
            else:
                self.kind = _UNION if isinstance(shape, data.UnionLayout) else _STRUCT
                self.fields = subs
        else:
            self.kind, self.layout, self.fields = _LEAF, None, None
            self.width, self.signed = shape.width, shape.signed


_LEAF, _ARRAY, _STRUCT, _UNION = "leaf", "array", "struct", "union"
_NODES: dict = {}


def _node(shape) -> _Node:
    # Keyed by type too: a union and a flexible layout with the same fields compare equal.
    try:
        key = (type(shape), shape)
        return _NODES[key]
    except TypeError:              # an unhashable shape-castable: not cached
        return _Node(shape)
    except KeyError:
        node = _NODES[key] = _Node(shape)
        return node


def _resolve(shape) -> data.Layout | Shape:
    """The layout or plain shape behind ``shape`` (an enum class, a range, an int ...)."""
    # A ShapeCastable that is not a layout (an amaranth enum, a user type) stands for
    # whatever its as_shape() gives; that may itself be a layout.
    while isinstance(shape, ShapeCastable) and not isinstance(shape, data.Layout):
        shape = shape.as_shape()
    if isinstance(shape, data.Layout):
        return shape
    return Shape.cast(shape)


def unpack(layout, value: int):
    """The fields of ``value``, an integer holding one packed ``layout``.

    Parameters
    ----------
    layout : amaranth.lib.data.Layout
        The port's layout, e.g. ``dut.o.payload.shape()`` or the function that built it.
    value : int
        The raw bits, e.g. ``int(dut.o__payload.value)``; ``0 <= value < 2**layout.size``.

    Returns
    -------
    dict or list
        A dict per struct, union or flexible layout (every field, overlapping ones of a
        union each decoded from the same bits), a list per array layout, an int per leaf.

    Raises
    ------
    ValueError
        ``value`` does not fit the layout: it is probably another port's.
    """
    node = _node(data.Layout.cast(layout))
    value = int(value)
    if not 0 <= value < 1 << node.width:
        raise ValueError(f"{value:#x} does not fit a {node.width}-bit layout")
    return _unpack(node, value)


def _unpack(node: _Node, bits: int):
    kind = node.kind
    if kind is _LEAF:
        if node.signed and node.width and bits >> (node.width - 1):
            return bits - (1 << node.width)
        return bits
    if kind is _ARRAY:
        return [_unpack(sub, bits >> offset & mask) for offset, mask, sub in node.fields]
    return {key: _unpack(sub, bits >> offset & mask)
            for key, (offset, mask, sub) in node.fields.items()}


def pack(layout, value) -> int:
    """The integer holding ``value`` packed as ``layout``: the inverse of :func:`unpack`.

    Parameters
    ----------
    layout : amaranth.lib.data.Layout
        The port's layout.
    value : Mapping, Sequence or int
        For a struct or flexible layout a mapping of field names (fields left out are 0),
        for a union a mapping of at most one field, for an array layout a sequence of at
        most its length (missing trailing elements are 0). A leaf is an int, a bool or an
        enum member. An int in place of a nested layout is taken as its raw bits, and so is
        an :class:`amaranth.lib.data.Const` of the same layout.

    Raises
    ------
    KeyError
        A field name the layout does not have (a typo would otherwise drive 0 silently).
    ValueError
        A leaf out of its field's range, too many array elements, two union fields.
    TypeError
        A mapping where a sequence belongs, or the other way round, or a leaf not an int.
    """
    return _pack(_node(data.Layout.cast(layout)), value, "value")


def _pack(node: _Node, value, path: str) -> int:
    if isinstance(value, data.Const):
        if node.layout is None or value.shape() != node.layout:
            raise ValueError(f"{path}: a constant of {value.shape()!r} given for a "
                             f"{node.width}-bit {node.kind}")
        return value.as_bits()
    if node.kind is _LEAF or isinstance(value, int | enum.Enum):
        return _pack_leaf(node, value, path)
    if node.kind is _ARRAY:
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise TypeError(f"{path}: an array layout takes a sequence, not {value!r}")
        if len(value) > len(node.fields):
            raise ValueError(f"{path}: {len(value)} elements for an array of "
                             f"{len(node.fields)}")
        items = zip(node.fields, value, strict=False)
        return sum(_pack(sub, element, f"{path}[{index}]") << offset
                   for index, ((offset, _mask, sub), element) in enumerate(items))
    if not isinstance(value, Mapping):
        raise TypeError(f"{path}: a {node.kind} layout takes a mapping, not {value!r}")
    # A union's fields share its bits: two of them at once would be OR-ed together.
    if node.kind is _UNION and len(value) > 1:
        raise ValueError(f"{path}: a union takes one field, not {sorted(value)}")
    word = 0
    for key, element in value.items():
        if key not in node.fields:
            raise KeyError(f"{path}: no field {key!r} in {sorted(node.fields)}")
        offset, _mask, sub = node.fields[key]
        word |= _pack(sub, element, f"{path}.{key}") << offset
    return word


def _pack_leaf(node: _Node, value, path: str) -> int:
    if isinstance(value, enum.Enum):
        value = value.value
    if not isinstance(value, int):
        raise TypeError(f"{path}: expected an int, not {value!r}")
    width = node.width
    if node.signed:
        low, high = (-(1 << width - 1), 1 << width - 1) if width else (0, 1)
    else:
        low, high = 0, 1 << width
    if not low <= value < high:
        raise ValueError(f"{path}: {value} is out of range [{low}, {high}) for a "
                         f"{width}-bit {'signed ' if node.signed else ''}{node.kind}")
    return int(value) & ((1 << width) - 1)
