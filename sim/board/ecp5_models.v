// Behavioural models of the ECP5 I/O primitives the LiteEth RGMII PHY instantiates, for the
// simulator only (the bitstream uses the real cells). They model the function and cycle
// timing the MAC relies on, not the silicon's analogue delays:
//   IDDRX1F  D sampled on both SCLK edges; Q0 (rising) and Q1 (the falling edge after it)
//            presented together on the next rising edge.
//   ODDRX1F  D0 and D1 registered on the rising edge; Q is D0 while SCLK is high, D1 while
//            it is low.
//   DELAYG   a wire: the bench supplies RGMII data already centred on the clock (as
//            cocotbext-eth's RgmiiSource does) and samples the transmit side on a clock
//            delayed by a quarter period, which is what the DELAYG on TX clock does.
module IDDRX1F (input D, input SCLK, input RST, output reg Q0, output reg Q1);
    reg rise, fall;
    always @(posedge SCLK) rise <= D;
    always @(negedge SCLK) fall <= D;
    always @(posedge SCLK) begin
        Q0 <= rise;
        Q1 <= fall;
    end
endmodule

module ODDRX1F (input D0, input D1, input SCLK, input RST, output Q);
    reg d0, d1;
    always @(posedge SCLK) begin
        d0 <= D0;
        d1 <= D1;
    end
    assign Q = SCLK ? d0 : d1;
endmodule

module DELAYG #(parameter DEL_MODE = "SCLK_ALIGNED", parameter integer DEL_VALUE = 0)
               (input A, output Z);
    assign Z = A;
endmodule
