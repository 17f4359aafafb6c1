"""`holevision distill`: teach a small student from a trained teacher on unlabeled images."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """\
  holevision distill --teacher runs/teacher --student nano --images data/unlabeled --out runs/nano
  holevision distill --teacher runs/teacher --student dinov3-convnext-tiny --images line_images/ --val data/val \\
      --size 256 --epochs 4 --out runs/tiny-student
"""


def register(registry) -> None:
    p = registry.command("distill", help="distill a trained teacher into a small student on unlabeled images",
                         examples=EXAMPLES)
    p.add_argument("--teacher", required=True, help="teacher run folder (from holevision train)")
    p.add_argument("--student", default="nano", help="registered student model (default: %(default)s)")
    p.add_argument("--images", required=True, help="unlabeled images: a folder, or a dataset folder with images/")
    p.add_argument("--val", help="labeled set: per-epoch student F1, and teacher vs student figures at the end")
    p.add_argument("--size", type=int, default=512, help="square training crop, px, multiple of 32")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=2.0, help="softening temperature of the logit KD")
    p.add_argument("--feature-weight", type=float, default=0.5, help="weight of the feature alignment (0 = off)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: one pass over --images)")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--out", required=True, help="student run folder (same layout as holevision train's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.runtime.cli import require

    require("torch", "export")
    from holevision.export.distill import DistillConfig, distill

    config = DistillConfig(
        teacher=args.teacher, student=args.student, images=args.images, val=args.val, out=args.out, size=args.size,
        epochs=args.epochs, batch=args.batch, lr=args.lr, temperature=args.temperature,
        feature_weight=args.feature_weight, device=args.device, seed=args.seed,
        steps_per_epoch=args.steps_per_epoch, workers=args.workers)
    result = distill(config)
    print("agreement: " + json.dumps(result["agreement"]))
    for key in ("teacher_val", "student_val"):
        if key in result:
            r = result[key]
            print(f"{key}: F1 {r['f1']}  precision {r['precision']}  recall {r['recall']}  IoU {r['mask_iou']}")
    print(f"run: {config.out}")
    return 0
