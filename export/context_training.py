"""Train the verifier's context pass: crop-verifier scores + the frame's other candidates -> ``context.onnx``.

    data = collect_context(detector, crop_verifier, labeled_items)   # features + labels, per candidate
    net = fit_context(data, ContextConfig())                          # a small MLP, seconds
    cut, table = best_cut(context_scores(net, val), val)              # verifier_training.best_cut
    export_context_onnx(net, "context.onnx", check=val)

The crop verifier's scores are what the context pass reads, so it must learn from images the crop
verifier was not fitted on (its scores on its own fit images are better than it will ever be on the
line). holevision.runtime.hole_context builds the features for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from holevision.runtime.hole_context import (CONTEXT_FEATURES, FEATURES_INPUT, MAX_SHIFT_LOGITS, bounded_scores,
                                             context_features)

from .labeled_images import LabeledImage
from .verifier_training import export_scores_onnx, fit_binary, labelled_candidates


@dataclass
class ContextConfig:
    hidden: tuple[int, ...] = (32, 32)   # MLP widths; () = logistic regression on the features
    epochs: int = 30
    batch: int = 256
    lr: float = 3e-3
    seed: int = 0
    max_shift: float = MAX_SHIFT_LOGITS  # the pass moves a crop score by at most this many logits

    def check(self) -> None:
        if any(width < 1 for width in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {self.hidden}")
        if not 0 < self.max_shift <= 20:
            raise ValueError(f"the context pass's max shift must be in (0, 20] logits, got {self.max_shift}")
        if self.epochs < 1 or self.batch < 2 or self.lr <= 0:
            raise ValueError(f"epochs >= 1, batch >= 2 and lr > 0 please (got {self.epochs}, {self.batch}, {self.lr})")


@dataclass
class ContextSet:
    """Candidates of a labeled set with their context features and whether each is a real hole."""

    features: np.ndarray      # (N, len(CONTEXT_FEATURES)) float32
    labels: np.ndarray        # (N,) 1.0 = matches a labelled hole
    crop_scores: np.ndarray   # (N,) the crop verifier's score (the first feature, as a probability)
    holes_true: int           # labelled holes in the set (found or not), tiny ones excepted
    images: int = 0

    def __len__(self) -> int:
        return len(self.labels)


def collect_context(detector, verifier, items: Sequence[LabeledImage], *, progress: bool = True,
                    desc: str = "context candidates") -> ContextSet:
    """Run ``detector`` (verify=False, at the candidate threshold) and the crop pass of ``verifier`` on
    every labeled image; each candidate's context features (among all of its frame's) and label."""
    features, labels, crop_scores, holes_true = [], [], [], 0
    for image, probability, holes, label, keep, count in labelled_candidates(detector, items, progress=progress,
                                                                             desc=desc):
        holes_true += count
        scores = verifier.crop_scores(holes, probability, image)
        features.append(context_features(holes, scores)[keep])
        labels.append(label[keep])
        crop_scores.append(scores[keep])
    width = len(CONTEXT_FEATURES)
    return ContextSet(
        features=np.concatenate(features) if features else np.zeros((0, width), np.float32),
        labels=np.concatenate(labels) if labels else np.zeros(0),
        crop_scores=np.concatenate(crop_scores) if crop_scores else np.zeros(0),
        holes_true=holes_true, images=len(items))


def _context_net(hidden: Sequence[int], mean: np.ndarray, std: np.ndarray):
    import torch
    from torch import nn

    class ContextNet(nn.Module):
        """Standardised features -> MLP (``hidden`` widths, ReLU) -> hole logit."""

        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
            layers, width = [], len(mean)
            for out in hidden:
                layers += [nn.Linear(width, out), nn.ReLU()]
                width = out
            self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

        def forward(self, features):
            return self.mlp((features - self.mean) / self.std)[:, 0]

    return ContextNet()


def fit_context(train: ContextSet, config: ContextConfig, *, progress: bool = True):
    """A context network fitted to ``train`` (binary cross-entropy, AdamW, one-cycle schedule)."""
    import torch

    config.check()
    torch.manual_seed(config.seed)     # the network's initial weights
    net = _context_net(config.hidden, train.features.mean(axis=0), train.features.std(axis=0) + 1e-6)
    return fit_binary(net, [train.features], train.labels, epochs=config.epochs, batch=config.batch, lr=config.lr,
                      seed=config.seed, progress=progress, desc="context pass")


def context_scores(net, data: ContextSet, max_shift: float = MAX_SHIFT_LOGITS) -> np.ndarray:
    """(N,) the context pass's probability that each candidate is a hole (torch), within ``max_shift``
    logits of its crop score, as the runtime computes it (hole_context.bounded_scores)."""
    import torch

    with torch.no_grad():
        scores = torch.sigmoid(net(torch.from_numpy(np.ascontiguousarray(data.features, np.float32)))).numpy()
    return bounded_scores(data.crop_scores, scores.astype(np.float64), max_shift)


def export_context_onnx(net, path: str | Path, check: ContextSet | None = None) -> float:
    """Write ``net`` with a sigmoid on top as ONNX (opset 17, any number of candidates); returns the max
    |score| difference between torch and ONNX Runtime on ``check`` (or random features), refusing more
    than verifier_training.PARITY_TOLERANCE."""
    if check is not None and len(check):
        features = check.features[:1024]
    else:
        features = np.random.default_rng(0).normal(size=(8, len(CONTEXT_FEATURES))).astype(np.float32)
    return export_scores_onnx(net, {FEATURES_INPUT: features}, path, "context pass")
