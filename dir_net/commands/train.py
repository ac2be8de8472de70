"""`dirnet train` (one process of a torchrun job, or a single process) and `dirnet quickstart`."""

from __future__ import annotations

import argparse
from pathlib import Path

from dir_net.commands.config import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="train a model (DIR or InterNet, by model.name); launch with scripts/train.sh",
        description="Train the model of --config. Several processes: torchrun --nproc_per_node N "
                    "-m dir_net train ... (scripts/train.sh does this).",
    )
    add_config_arguments(train, required=True)
    train.add_argument("--resume", nargs="?", const="auto", metavar="CKPT",
                       help="continue a run: no value = newest loadable checkpoint of the run "
                            "directory (a fresh start if it has none), or a checkpoint path")
    train.add_argument("--check", action="store_true",
                       help="only check the config (keys, values, evaluation protocols), the dataset root, the run "
                            "directory and the memory estimate, and exit: 0 ok, 2 bad")
    train.set_defaults(func=_train_reported)

    quick = subparsers.add_parser(
        "quickstart", help="synthetic data -> short DIR training -> evaluation -> figure",
        description="Generate the synthetic dataset if missing, train briefly, evaluate on the "
                    "test split and render a figure; prints where everything was written.",
    )
    add_config_arguments(quick, required=True)
    quick.add_argument("--frames", type=int, default=128,
                       help="synthetic frames per split when the dataset is generated (default 128; x 2 cameras)")
    quick.set_defaults(func=_quickstart)


def _train(args: argparse.Namespace) -> int:
    from dir_net.config import load_config
    from dir_net.engine.runtime import check_engine_config

    if args.resume is not None and "=" in args.resume and not Path(args.resume).exists():
        args.overrides.append(args.resume)  # `--resume key=value`: the value was an override
        args.resume = "auto"
    from dir_net.engine import preflight

    cfg = load_config(args.config, args.overrides)
    check_engine_config(cfg)
    if args.check:
        from dir_net.engine.trainer import check_train_config

        check_train_config(cfg)
        preflight.check_run_inputs(cfg, args.resume)
        estimate = preflight.check_memory(cfg)
        print(f"{args.config}: config ok; memory {estimate.describe(cfg)}")
        return 0
    _memory_before_start(cfg)

    import signal
    import sys

    from dir_net.engine.distributed import shutdown_distributed
    from dir_net.engine.runtime import cpu_thread_limit
    from dir_net.engine.trainer import Trainer

    resume_command = _resume_command(args)
    try:
        with cpu_thread_limit(cfg):
            result = Trainer(cfg, resume=args.resume, resume_command=resume_command).fit()
    except KeyboardInterrupt:  # Ctrl-C before training started, or twice: no checkpoint now
        print(f"dirnet: interrupted; to continue from the last checkpoint: {resume_command}", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        shutdown_distributed()
    if result.stopped_by is not None:  # the trainer logged the step, checkpoint and resume command
        return 128 + getattr(signal, result.stopped_by, signal.SIGTERM)
    if not result.is_main:
        return 0
    print(f"run directory: {result.run_dir}")
    if result.last_checkpoint is not None:
        print(f"last checkpoint: {result.last_checkpoint}")
    if result.best_checkpoint is not None:
        print(f"best checkpoint: {result.best_checkpoint}")
    return 0


def _train_reported(args: argparse.Namespace) -> int:
    """`_train`; under scripts/train.sh a user error is left to the launcher, which prints it once
    (dir_net.engine.launch)."""
    from dir_net.engine.launch import report_to_launcher

    with report_to_launcher():
        return _train(args)


def _memory_before_start(cfg) -> None:
    """Local rank 0: refuse a CPU run that will not fit (dir_net.engine.preflight), or, under
    scripts/train.sh (which checked it already), leave the estimate for an out-of-memory message."""
    import os

    from dir_net.engine import launch, preflight

    if os.environ.get("LOCAL_RANK", "0") != "0":
        return
    if os.environ.get(launch.ERROR_DIR_ENV):
        launch.note_memory(preflight.estimate_memory(cfg).describe(cfg))
    else:
        preflight.check_memory(cfg)


def _resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this run (torchrun runs go through scripts/train.sh)."""
    import os
    import shlex

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return shlex.join(["bash", "scripts/train.sh", args.config, *args.overrides, "--resume"])
    return shlex.join(["dirnet", "train", "--config", args.config, *args.overrides, "--resume"])


def _quickstart(args: argparse.Namespace) -> int:
    from dir_net.config import load_config
    from dir_net.engine.runtime import check_engine_config

    cfg = load_config(args.config, args.overrides)
    check_engine_config(cfg)

    import signal
    import sys

    from dir_net.engine.quickstart import QuickstartStopped, run_quickstart

    try:
        run_quickstart(cfg, frames=args.frames)
    except QuickstartStopped as stop:  # training saved a checkpoint; evaluation is skipped
        print(f"quickstart stopped by {stop.signal_name} during training (checkpoint saved); "
              "run the same command again to resume and finish", file=sys.stderr)
        return 128 + getattr(signal, stop.signal_name, signal.SIGTERM)
    return 0
