"""The board shell: RGMII MACs from LiteEth, clock crossing, PLL, LEDs around the core."""
