"""`holevision train`: train a DINOv3 hole segmenter (frozen backbone by default, LoRA or full)."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """\
  holevision train --data data/train --val data/val --model dinov3-vits16 --weights weights/dinov3-vits16 --out runs/vits
  holevision train --data data/train --val data/val --model dinov3-convnext-tiny --mode full --size 256 --epochs 8 --out runs/teacher
  holevision train --data data/train --model dinov3-vitb16 --weights dinov3_vitb16_pretrain.pth --mode lora --out runs/vitb-lora
  holevision train --data my_parts/train --val my_parts/val --init-from default --mode full --size 256 --epochs 5 --lr 5e-4 --out runs/mine
                                                              fine-tune the packaged default model on your own labeled parts
  holevision train --resume runs/teacher --epochs 12        continue a run (more epochs) from its last.pt
  holevision train --list-models                              the registered model names
"""


def register(registry) -> None:
    p = registry.command("train", help="train a hole segmenter (DINOv3 backbone + light head) on labeled images",
                         examples=EXAMPLES)
    p.add_argument("--data", help="labeled training set (COCO, YOLO-seg, mask folders, holevision synth output)")
    p.add_argument("--val", help="labeled validation set; each epoch reports hole F1 and IoU on it; best.pt by F1")
    p.add_argument("--model", help="registered model (default: dinov3-convnext-tiny, or the --init-from model)")
    p.add_argument("--weights", help="DINOv3 backbone weights: an HF folder (config.json + model.safetensors) "
                                     "or the official .pth; default: random init")
    p.add_argument("--init-from", metavar="RUN_OR_BUNDLE",
                   help="start from a trained model instead of random init: a run folder (its best.pt), a bundle "
                        "folder (weights read back from its ONNX and checked against it) or 'default' (the "
                        "packaged model); same model and classes")
    p.add_argument("--mode", choices=("frozen", "lora", "full"), default="frozen",
                   help="frozen backbone + head (default), LoRA adapters, or full fine-tune")
    p.add_argument("--size", type=int, default=512, help="square training crop in px, multiple of 32 (default: 512)")
    p.add_argument("--epochs", type=int, help="epochs (default: 20; with --resume: the run's own)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, help="learning rate (default: 1e-3 frozen, 5e-4 lora/full)")
    p.add_argument("--classes", help="comma-separated classes, background first (default: the dataset's)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (auto: CUDA when present)")
    p.add_argument("--seed", type=int, default=0, help="same seed + data + device = same run")
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: one pass over --data)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default: 0)")
    p.add_argument("--hard-pixels", type=float, default=1.0, metavar="F",
                   help="average the cross-entropy over the hardest fraction F of pixels (online hard example "
                        "mining), e.g. 0.1: weighs small false blobs and small missed holes like the line does "
                        "(default: 1 = every pixel)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="hole probability threshold of the per-epoch validation (default: 0.5)")
    p.add_argument("--augment", choices=("full", "light"), default="full",
                   help="full (default): rotation, zoom, perspective, flips, strong light changes - for few or "
                        "real images; light: whole-pixel crops, flips, quarter turns, mild light changes, no "
                        "resampling - a last fine-tune on a large synthetic set whose renderer varies pose itself")
    p.add_argument("--override", action="append", default=[], metavar="KEY=JSON",
                   help="model override, e.g. depths=[2,2,6,2] or decoder_channels=48 (repeatable)")
    p.add_argument("--out", help="run folder to write (config.json, best.pt, last.pt, metrics.json, summary.txt)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last.pt (its own arguments are reused)")
    p.add_argument("--stop-after", type=int, metavar="N",
                   help="end this session after N epochs (schedule still spans --epochs); continue with --resume")
    p.add_argument("--list-models", action="store_true", help="print the registered models and exit")
    p.set_defaults(func=run)


def parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--override {pair!r}: expected KEY=VALUE")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    from holevision.runtime.cli import require

    require("torch", "export")
    from holevision.export.models import count_parameters, create_segmenter, estimate_gflops, list_segmenters
    from holevision.export.train import TrainConfig, resume_config, train

    if args.list_models:
        for name in list_segmenters():
            model = create_segmenter(name)
            print(f"{name:24s} {count_parameters(model) / 1e6:7.2f} M params  "
                  f"{estimate_gflops(model, 512, 512):7.1f} GFLOPs @512x512")
        return 0
    if args.resume:
        config = resume_config(args.resume, args.epochs)
        result = train(config, resume=True, stop_after=args.stop_after)
    else:
        if not args.data or not args.out:
            raise ValueError("train needs --data and --out (or --resume RUN)")
        model_name = args.model or "dinov3-convnext-tiny"
        if args.init_from:
            from holevision.export.warm_start import resolve_source, source_description

            source_model = source_description(resolve_source(args.init_from))["model"]
            if args.model and args.model != source_model:
                raise ValueError(f"--init-from {args.init_from} is a {source_model!r} model; --model {args.model!r} "
                                 f"cannot start from it (leave --model out)")
            model_name = source_model
        config = TrainConfig(
            data=args.data, out=args.out, model=model_name, val=args.val, weights=args.weights,
            init_from=args.init_from, mode=args.mode,
            size=args.size, epochs=args.epochs or 20, batch=args.batch, lr=args.lr, device=args.device, seed=args.seed,
            classes=args.classes.split(",") if args.classes else None, overrides=parse_overrides(args.override),
            steps_per_epoch=args.steps_per_epoch, workers=args.workers, hard_pixels=args.hard_pixels,
            threshold=args.threshold, augment=args.augment)
        result = train(config, stop_after=args.stop_after)
    best = result["best"] or {}
    print(f"best epoch {best.get('epoch')}: " + json.dumps(best.get("val") or {"train_loss": best.get("train_loss")}))
    print(f"run: {config.out} (best.pt, last.pt, metrics.json, summary.txt)")
    return 0
