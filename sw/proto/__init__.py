"""Wire protocols: SoupBinTCP 3.00, OUCH 5.0, and Ethernet/IPv4/TCP frames."""
