"""Loss functions: DIR's objective (`DirLoss`) and the masked terms it is built from."""

from dir_net.losses.dir_loss import AUX_TERMS, STAGE_TERMS, DirLoss

__all__ = ["AUX_TERMS", "STAGE_TERMS", "DirLoss"]
