"""`holevision demo`: the embedded default job on loopback."""

from __future__ import annotations

import argparse


def register(registry) -> None:
    p = registry.command(
        "demo", help="synthetic camera + bundled model + ZeroMQ/Modbus on loopback, with a subscriber and a PLC simulator",
        examples="  holevision demo                      5 PLC triggers; prints poses received over ZeroMQ and Modbus\n"
                 "  holevision demo --frames 20 --seed 3\n"
                 "  holevision demo --model path/to/bundle",
    )
    p.add_argument("--frames", type=int, default=5, help="PLC triggers before the demo stops (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic parts")
    p.add_argument("--model", default="default", help="model bundle folder (default: the packaged one)")
    p.add_argument("--state-dir", default=None, help="keep the journal here (default: a temporary folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.runtime.demo import run_demo

    if args.frames < 1:
        raise ValueError(f"--frames must be >= 1, got {args.frames}")
    return run_demo(frames=args.frames, seed=args.seed, state_dir=args.state_dir, bundle=args.model)
