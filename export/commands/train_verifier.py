"""`holevision train-verifier`: add a hole verifier to a bundle (fewer false holes at a low threshold)."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """\
  holevision synth --out data/verifier_fit --count 6000 --seed 808 --size 320x256 --style mixed
  holevision train-verifier --bundle default --data data/verifier_fit --val data/val --out bundles/verified
  holevision eval --model bundles/verified --data data/test                     with the verifier
  holevision eval --model bundles/verified --data data/test --no-verifier       without it
  holevision detect part.png --model bundles/verified --overlay out/
  holevision train-verifier --bundle bundles/verified --context-data data/context_fit --val data/val \
      --out bundles/verified2                                                  keep it, add the context pass
"""

DESCRIPTION = """\
The segmentation model marks hole pixels; one probability threshold then trades missed holes against
false ones. A hole verifier takes a second look: every candidate found at a low threshold is cropped
(grey image and probability, scaled to the hole's size) and a small CNN, with the hole's measurements,
says whether it is a hole. Holes it scores below min_score are dropped; the others carry its score.

Train it on labelled images the model did not learn from (the candidates of training images are too
easy), with the very bundle it will ship in. min_score is chosen for the best hole F1 on --val.

--context-data adds a second pass: each candidate rescored from its crop score next to those of the
other candidates of its frame (drilled holes come in sets of one size; a look-alike is often alone).
Fit it on labelled images that neither the model nor the crop verifier learned from. Without --data,
the bundle's own verifier is kept and only the context pass is fitted."""


def register(registry) -> None:
    p = registry.command("train-verifier", help="add a hole verifier to a bundle: fewer false and missed holes",
                         description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("--bundle", required=True, help="bundle folder, or 'default' for the packaged bundle")
    p.add_argument("--data", action="append", default=[],
                   help="labeled images to fit the verifier on, not the model's training set (repeatable; "
                        "omit to keep the bundle's verifier and fit only --context-data)")
    p.add_argument("--context-data", action="append", default=[],
                   help="labeled images to fit the context pass on, other than --data (repeatable)")
    p.add_argument("--context-hidden", default="32,32",
                   help="the context pass's hidden layer widths, comma-separated (default: 32,32; '' = logistic "
                        "regression)")
    p.add_argument("--context-epochs", type=int, default=30, help="context pass training epochs (default: 30)")
    p.add_argument("--context-max-shift", type=float, default=1.5,
                   help="the context pass moves a crop score by at most this many logits (default: 1.5; a hole "
                        "alone in its frame that the crop pass scores 0.9 then stays at 0.67 or more)")
    p.add_argument("--val", required=True, help="labeled images to choose min_score on and report F1 with and without")
    p.add_argument("--out", required=True,
                   help="bundle folder to write (the bundle's files + verifier.onnx; + context.onnx with "
                        "--context-data)")
    p.add_argument("--candidate-threshold", type=float, default=0.3,
                   help="hole probability of the candidates (default: 0.3; lower finds more holes for the verifier "
                        "to judge)")
    p.add_argument("--crop", type=int, default=16,
                   help="crop side in px, a multiple of 8 (default: 16; 32 gives a larger tower that scored ~0.005 F1 "
                        "higher on the default model at 3-4x the time)")
    p.add_argument("--span", type=float, default=3.0, help="a crop covers this many hole diameters (default: 3)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs (default: 20)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle; default: 3e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.export.context_training import ContextConfig
    from holevision.export.verifier_training import VerifierConfig, train_verifier_bundle

    if not args.data and not args.context_data:
        raise ValueError("nothing to train: name labeled images for the verifier (--data), for its context pass "
                         "(--context-data), or both")
    config = VerifierConfig(candidate_threshold=args.candidate_threshold, crop_px=args.crop, span=args.span,
                            epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed)
    config.check()
    try:
        hidden = tuple(int(w) for w in args.context_hidden.split(",") if w.strip())
    except ValueError:
        raise ValueError(f"--context-hidden: comma-separated layer widths please, "
                         f"got {args.context_hidden!r}") from None
    context = ContextConfig(hidden=hidden, epochs=args.context_epochs, seed=args.seed, max_shift=args.context_max_shift)
    context.check()
    figures = train_verifier_bundle(args.bundle, args.data, args.val, args.out, config, context_data=args.context_data,
                                    context_config=context, progress=not args.no_progress)
    if args.json:
        from pathlib import Path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0
