"""Training and evaluation engine: trainer, checkpoints, distributed helpers, optimisers.

Entry points: `Trainer(cfg, resume).fit()` (dirnet train), `evaluate_checkpoint(...)`
(dirnet eval run), `run_quickstart(...)` (dirnet quickstart).
"""
