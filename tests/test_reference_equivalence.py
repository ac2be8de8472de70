"""Checkpoint-exact equivalence with the official code: each public format is regenerated from
its fixture, converted with the CLI's code path and run; outputs must match `outputs.npz`."""

# --- dir_official --------------------------------------------------------------------------

# --- internet_official, internet_mmpose, sb2d_mmpose ---------------------------------------
