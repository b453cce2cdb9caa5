"""The board shell under Verilator: LiteEth MACs, receive crossings and the pass-through core,
driven through cocotbext-eth's RGMII models."""
