"""Simulation: Verilog export, Verilator builds and cocotb benches."""
