"""Control: the register file onto the register map and the drop-copy queue toward the host."""
