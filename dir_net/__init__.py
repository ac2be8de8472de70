"""dir_net: two interacting hands (MANO meshes) from a single RGB image.

DIR (Ren et al., ICCV 2023) and the InterNet baseline (Moon et al., ECCV 2020) on InterHand2.6M.
"""

__version__ = "0.1.0"
