"""Control: the framed control stream, the register file onto the register map, the drop copy."""
