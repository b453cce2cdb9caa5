"""cocotb bench for the holdback delay line."""
