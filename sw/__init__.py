"""Host side: protocol codecs, register map, limits, reference model, driver, CLI."""
