"""``osum train CONFIG [key=value ...] [--resume]``: ASR+X training, single process or under torchrun."""

from __future__ import annotations

import argparse
import logging

HELP = "train an OSUM model (stage 2: ASR+X); run under torchrun for DDP"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config", help="YAML with `data:` and `train:` sections (values that differ from the defaults)"
    )
    p.add_argument("overrides", nargs="*", help="dotlist overrides, e.g. train.lr=1e-4 data.num_workers=0")
    p.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in train.out_dir"
    )


def run(args: argparse.Namespace) -> int:
    from osum.config import RunConfig, load_yaml
    from osum.training.trainer import Trainer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_cfg = load_yaml(RunConfig, args.config, args.overrides)
    trainer = Trainer(run_cfg, resume=args.resume)
    pos = trainer.fit()
    if trainer.dist.is_main:
        print(
            f"done: {pos.step} steps, epoch {pos.epoch}; checkpoints in {run_cfg.train.out_dir}/checkpoints"
        )
    import torch.distributed as dist

    # every rank leaves the group together, with nothing left holding it: a group alive at interpreter exit may
    # abort the process there, after a run that succeeded
    trainer.close()
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return 0
