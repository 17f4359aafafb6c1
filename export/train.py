"""`holevision train`: a DINOv3 segmenter on labeled holes, frozen / LoRA / full, resumable.

A run folder holds::

    config.json   model name + overrides + classes + size + every training argument
    best.pt       weights of the best epoch (validation hole F1, then mask IoU; train loss without --val)
    last.pt       weights + optimizer + scheduler + epoch + history, for --resume
    metrics.json  per-epoch history and the best epoch's figures
    summary.txt   the same, for people

``load_run(RUN)`` rebuilds the model from a run folder (LoRA merged into the base weights).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .augment import AUGMENT_PRESETS, AugmentConfig, augment_pair
from .labeled_images import LabeledImage, load_labeled_images
from .losses import segmentation_loss

MODES = ("frozen", "lora", "full")
DEFAULT_LR = {"frozen": 1e-3, "lora": 5e-4, "full": 5e-4}
LORA_TARGETS = {"vit": ["q_proj", "k_proj", "v_proj", "o_proj"], "convnext": ["pointwise_conv1", "pointwise_conv2"]}


class RunError(ValueError):
    """A run folder is missing, incomplete or was written by an incompatible version."""


@dataclass
class TrainConfig:
    data: str                                 # labeled training dataset folder
    out: str                                  # run folder to write
    model: str = "dinov3-convnext-tiny"       # registered segmenter name
    val: str | None = None                    # labeled validation dataset folder
    weights: str | None = None                # DINOv3 backbone weights: HF folder or official .pth
    init_from: str | None = None              # start from a trained model: run folder, bundle or 'default'
    mode: str = "frozen"                      # frozen | lora | full
    size: int = 512                           # square training crop, px
    epochs: int = 20
    batch: int = 8
    lr: float | None = None                   # default depends on mode
    weight_decay: float = 0.01
    device: str = "auto"                      # auto | cpu | cuda
    seed: int = 0
    classes: list[str] | None = None          # default: the dataset's classes
    overrides: dict = field(default_factory=dict)  # create_segmenter overrides (tiny test configs)
    lora_rank: int = 8
    steps_per_epoch: int | None = None        # default: one pass over the training set
    threshold: float = 0.5                    # hole probability threshold used in validation
    workers: int = 0                          # DataLoader workers
    hard_pixels: float = 1.0                  # cross-entropy over this fraction of hardest pixels (1 = all)
    augment: str = "full"                     # augmentation preset: full | light (augment.AUGMENT_PRESETS)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.size % 32:
            raise ValueError(f"size must be a multiple of 32, got {self.size}")
        if self.epochs < 1 or self.batch < 1:
            raise ValueError("epochs and batch must be >= 1")
        if not 0.0 < self.hard_pixels <= 1.0:
            raise ValueError(f"hard_pixels must be in (0, 1], got {self.hard_pixels}")
        if self.augment not in AUGMENT_PRESETS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENT_PRESETS)}, got {self.augment!r}")


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrainingViews(torch.utils.data.Dataset):
    """Random augmented size x size views; view i of epoch e is a pure function of (seed, e, i)."""

    def __init__(self, items: list[LabeledImage], size: int, seed: int, augment: AugmentConfig = AugmentConfig()):
        self.items, self.size, self.seed, self.augment = items, size, seed, augment
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        item = self.items[index]
        image, mask = augment_pair(item.read_image(), item.semantic_mask(), self.size, rng, self.augment)
        rgb = torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1)
        return rgb, torch.from_numpy(mask.astype(np.int64))


def normalize(rgb_uint8: torch.Tensor, model) -> torch.Tensor:
    mean = torch.tensor(model.mean, device=rgb_uint8.device).view(1, 3, 1, 1)
    std = torch.tensor(model.std, device=rgb_uint8.device).view(1, 3, 1, 1)
    return (rgb_uint8.float() / 255.0 - mean) / std


def build_model(model_name: str, classes, overrides: dict, weights=None, mode: str = "full", lora_rank: int = 8):
    """Create the segmenter and set which parameters train for ``mode``."""
    from .models import create_segmenter

    model = create_segmenter(model_name, weights=weights, classes=tuple(classes), **overrides)
    if mode in ("frozen", "lora"):
        for parameter in model.backbone.parameters():
            parameter.requires_grad_(False)
    if mode == "lora":
        add_lora(model, lora_rank)
    return model


def add_lora(model, rank: int) -> None:
    """LoRA adapters (peft) on the backbone's attention projections (ViT) or pointwise convs (ConvNeXt)."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=LORA_TARGETS[model.backbone.kind])
    inject_adapter_in_model(config, model.backbone.hf)
    for name, parameter in model.backbone.named_parameters():
        parameter.requires_grad_("lora_" in name)


def merge_lora(model) -> None:
    """Fold LoRA adapters into the base layers and remove them (plain Linear layers again, for export)."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if hasattr(child, "base_layer") and hasattr(child, "merge"):
                child.merge()
                setattr(parent, child_name, child.get_base_layer())


def _set_train_mode(model, mode: str) -> None:
    model.train()
    if mode in ("frozen", "lora"):
        model.backbone.eval()  # frozen backbone: no dropout/drop-path, no position jitter
    if getattr(model, "frozen_batchnorm", False):   # started from folded weights (see warm_start)
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def _lr_lambda(total_steps: int, warmup: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def _score(val_metrics: dict | None, train_loss: float) -> tuple:
    if val_metrics:
        return (val_metrics["f1"], val_metrics.get("mask_iou") or 0.0)
    return (-train_loss,)


def write_run_config(out: Path, payload: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(payload, indent=2) + "\n")


def read_run_config(run: str | Path) -> dict:
    path = Path(run) / "config.json"
    if not path.is_file():
        raise RunError(f"{path}: not a training run (no config.json)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: unreadable JSON ({exc})") from exc
    for key in ("model", "classes"):
        if key not in config:
            raise RunError(f"{path}: field {key!r} is missing")
    return config


def load_run(run: str | Path, device: str = "cpu", checkpoint: str = "best.pt"):
    """Rebuild the model of a run folder from ``config.json`` + ``best.pt`` -> (model in eval mode, config)."""
    run = Path(run)
    config = read_run_config(run)
    path = run / checkpoint
    if not path.is_file():
        raise RunError(f"{path}: checkpoint not found")
    model = build_model(config["model"], config["classes"], config.get("overrides", {}), weights=None,
                        mode=config.get("mode", "full"), lora_rank=config.get("lora_rank", 8))
    state = torch.load(str(path), map_location="cpu", weights_only=False)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise RunError(f"{path}: does not fit model {config['model']!r} ({str(exc)[:300]})") from exc
    if config.get("mode") == "lora":
        merge_lora(model)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.to(resolve_device(device)).eval(), config


def _write_reports(out: Path, history: list[dict], best: dict | None, header: dict) -> None:
    metrics = {**header, "history": history, "best": best}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    lines = [f"{k}: {v}" for k, v in header.items()]
    lines.append("")
    lines.append(f"{'epoch':>5} {'loss':>8} {'img/s':>7} {'val F1':>7} {'val P':>7} {'val R':>7} {'IoU':>7} {'ctr rms':>8}")
    for row in history:
        val = row.get("val") or {}
        fmt = lambda x, spec: format(x, spec) if isinstance(x, (int, float)) else "-"
        lines.append(f"{row['epoch']:>5} {row['train_loss']:>8.4f} {row['images_per_s']:>7.1f} "
                     f"{fmt(val.get('f1'), '>7.4f'):>7} {fmt(val.get('precision'), '>7.4f'):>7} "
                     f"{fmt(val.get('recall'), '>7.4f'):>7} {fmt(val.get('mask_iou'), '>7.4f'):>7} "
                     f"{fmt(val.get('center_error_rms_px'), '>8.3f'):>8}")
    if best:
        lines += ["", f"best epoch: {best['epoch']}  (best.pt)"]
    (out / "summary.txt").write_text("\n".join(lines) + "\n")


def run_epochs(*, model, out: Path, run_config: dict, loader, views, step_fn, optimizer, scheduler, epochs: int,
               start_epoch: int, stop_epoch: int | None = None, history: list, best: dict | None, val_items, device: str, threshold: float,
               mode: str, progress: bool, sampler_generator: torch.Generator, header: dict) -> dict:
    """The epoch loop shared by training and distillation: steps, validation, checkpoints, reports."""
    from tqdm import tqdm

    from .evaluate import evaluate_probabilities, torch_predictor

    for epoch in range(start_epoch, stop_epoch or epochs):
        views.epoch = epoch
        _set_train_mode(model, mode)
        total_loss, seen, started = 0.0, 0, time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", disable=not progress, leave=False)
        for batch in bar:
            loss, count = step_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += float(loss.detach()) * count
            seen += count
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{seen / (time.perf_counter() - started):.1f}")
        elapsed = time.perf_counter() - started
        row = {"epoch": epoch + 1, "train_loss": total_loss / max(1, seen), "images_per_s": seen / max(elapsed, 1e-9),
               "lr": scheduler.get_last_lr()[0], "seconds": round(elapsed, 1)}
        if val_items:
            # Mask-only centers during training: fast; `holevision eval` runs the full subpixel fit.
            row["val"] = evaluate_probabilities(val_items, torch_predictor(model, device), threshold=threshold,
                                                refine=False)
        history.append(row)
        improved = best is None or _score(row.get("val"), row["train_loss"]) > _score(
            best.get("val"), best["train_loss"])
        if improved:
            best = dict(row)
            torch.save({"model": model.state_dict(), "epoch": epoch + 1, "metrics": row}, out / "best.pt")
        torch.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "epoch": epoch + 1, "history": history, "best": best, "torch_rng": torch.get_rng_state(),
            "sampler_rng": sampler_generator.get_state(),
        }, out / "last.pt")
        _write_reports(out, history, best, header)
        if progress:
            val = row.get("val") or {}
            print(f"epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f}, {row['images_per_s']:.1f} img/s"
                  + (f", val F1 {val['f1']:.4f} IoU {val['mask_iou']}" if val else ""), flush=True)
    return {"history": history, "best": best}



def make_loader(views, *, batch: int, seed: int, steps_per_epoch: int | None, workers: int):
    """Seeded batches of ``views``: ``steps_per_epoch`` batches drawn with replacement, else one pass."""
    generator = torch.Generator().manual_seed(seed)
    if steps_per_epoch:
        sampler = torch.utils.data.RandomSampler(views, replacement=True, num_samples=steps_per_epoch * batch,
                                                 generator=generator)
    else:
        sampler = torch.utils.data.RandomSampler(views, generator=generator)
    return torch.utils.data.DataLoader(views, batch_size=batch, sampler=sampler, drop_last=len(views) > batch,
                                       num_workers=workers)

def train(config: TrainConfig, resume: bool = False, progress: bool = True, stop_after: int | None = None) -> dict:
    """Train (or resume) a run; returns ``{"history": [...], "best": {...}}``.

    ``stop_after`` ends this session after that many epochs (the schedule still spans ``config.epochs``),
    e.g. to split a long run into sessions with ``--resume``.
    """
    out = Path(config.out)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    items = load_labeled_images(config.data, tuple(config.classes) if config.classes else None)
    classes = list(config.classes or items[0].classes)
    val_items = load_labeled_images(config.val, tuple(classes)) if config.val else []
    model = build_model(config.model, classes, config.overrides, config.weights, config.mode, config.lora_rank)
    if config.init_from:
        from .warm_start import folds_batchnorm, load_initial_weights

        model.frozen_batchnorm = folds_batchnorm(config.init_from)
        if not resume:
            report = load_initial_weights(model, config.init_from)
            if progress:
                print(report, flush=True)
    model.to(device)
    run_config = {**dataclasses.asdict(config), "classes": classes, "kind": "train",
                  "backbone_kind": model.backbone.kind}
    if config.init_from and not resume:
        from .warm_start import source_identity

        run_config["init_from_source"] = source_identity(config.init_from)
    trainable = [p for p in model.parameters() if p.requires_grad]
    lr = config.lr or DEFAULT_LR[config.mode]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=config.weight_decay)
    views = TrainingViews(items, config.size, config.seed, AUGMENT_PRESETS[config.augment])
    loader = make_loader(views, batch=config.batch, seed=config.seed, steps_per_epoch=config.steps_per_epoch,
                         workers=config.workers)
    generator = loader.sampler.generator  # its state goes into last.pt so a resumed run draws the same views
    steps = len(loader) * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(steps, max(1, min(200, steps // 20))))
    history, best, start_epoch = [], None, 0
    if resume:
        state = torch.load(str(out / "last.pt"), map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"]
        torch.set_rng_state(state["torch_rng"])
        generator.set_state(state["sampler_rng"])
    else:
        write_run_config(out, run_config)

    def step(batch):
        rgb, mask = batch
        rgb, mask = rgb.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        logits = model(normalize(rgb, model)).logits
        return segmentation_loss(logits, mask, hard_pixel_fraction=config.hard_pixels), len(rgb)

    from .models import count_parameters

    header = {"model": config.model, "mode": config.mode, "classes": classes, "size": config.size,
              "augment": config.augment, "train_images": len(items), "val_images": len(val_items), "device": device, "seed": config.seed,
              "parameters": count_parameters(model), "trainable_parameters": count_parameters(model, True)}
    return run_epochs(model=model, out=out, run_config=run_config, loader=loader, views=views, step_fn=step,
                      optimizer=optimizer, scheduler=scheduler, epochs=config.epochs, start_epoch=start_epoch,
                      stop_epoch=min(config.epochs, start_epoch + stop_after) if stop_after else config.epochs,
                      history=history, best=best, val_items=val_items, device=device, threshold=config.threshold,
                      mode=config.mode, progress=progress, sampler_generator=generator, header=header)


def resume_config(run: str | Path, epochs: int | None = None) -> TrainConfig:
    """The TrainConfig of an existing run (optionally with more epochs) for ``train(..., resume=True)``."""
    run = Path(run)
    stored = read_run_config(run)
    if not (run / "last.pt").is_file():
        raise RunError(f"{run / 'last.pt'}: nothing to resume from")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in stored.items() if k in fields})
    config.out = str(run)
    if epochs:
        config.epochs = epochs
    return config
