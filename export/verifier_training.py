"""Train a bundle's hole verifier: candidates at a low threshold -> hole or not -> ``verifier.onnx``.

    candidates = collect_candidates(detector, labeled_items, config)   # crops + measures + labels
    net = fit_verifier(candidates, config)                             # a small CNN, seconds per epoch
    cut, table = best_cut(candidate_scores(net, val_candidates), val_candidates)
    export_verifier_onnx(net, "verifier.onnx")                         # measure normalisation inside

The verifier sees each candidate as the runtime will (holevision.runtime.hole_verifier builds the
inputs for both), so it must be trained on the candidates of the very bundle it ships in.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from holevision.runtime.hole_verifier import (CROP_INPUT, MEASURES, MEASURES_INPUT, SCORE_OUTPUT,
                                               verifier_inputs)

from .evaluate import match_holes
from .labeled_images import LabeledImage

CUTS = tuple(round(0.05 * k, 2) for k in range(1, 20))   # min_score values tried on validation candidates
PARITY_TOLERANCE = 1e-4                                   # max |score| difference, torch vs ONNX Runtime


@dataclass
class VerifierConfig:
    candidate_threshold: float = 0.3   # hole probability of candidates: low, the verifier removes the false ones
    crop_px: int = 16                  # crop side: the verifier sees each hole at this size
    span: float = 3.0                  # a crop covers span x the hole diameter
    epochs: int = 20
    batch: int = 128
    lr: float = 3e-3
    seed: int = 0

    def check(self) -> None:
        if not 0.0 < self.candidate_threshold < 1.0:
            raise ValueError(f"candidate threshold must be in (0, 1), got {self.candidate_threshold}")
        if not 8 <= self.crop_px <= 256 or self.crop_px % 8:
            raise ValueError(f"crop size must be a multiple of 8 in 8..256 px, got {self.crop_px}")
        if not 1.0 < self.span <= 10.0:
            raise ValueError(f"span must be in (1, 10] hole diameters, got {self.span}")
        if self.epochs < 1 or self.batch < 2 or self.lr <= 0:
            raise ValueError(f"epochs >= 1, batch >= 2 and lr > 0 please (got {self.epochs}, {self.batch}, {self.lr})")


@dataclass
class Candidates:
    """Candidate holes of a labeled set with the verifier's inputs and whether each is a real hole."""

    crops: np.ndarray                  # (N, 2, S, S) float32
    measures: np.ndarray               # (N, len(MEASURES)) float32
    labels: np.ndarray                 # (N,) 1.0 = matches a labelled hole, 0.0 = not a hole
    holes_true: int                    # labelled holes in the set (found or not), tiny ones excepted
    images: int = 0

    def __len__(self) -> int:
        return len(self.labels)


def label_candidates(centers: np.ndarray, truth, min_area_px: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(labels, keep, holes_true) for candidates at ``centers`` against one image's ground truth.

    A candidate is a hole (1) when it matches a labelled hole as evaluation matches them (one to one,
    within max(2 px, a quarter radius) of the seen middle or the whole center). A candidate matching a
    labelled hole smaller than ``min_area_px`` is left out (``keep`` False): evaluation ignores those.
    """
    ignore = np.zeros(len(truth), bool) if truth.areas is None else np.asarray(truth.areas) < min_area_px
    labels, keep = np.zeros(len(centers)), np.ones(len(centers), bool)
    for p, t in match_holes(centers, truth.centers, truth.diameters, truth_whole=truth.whole_centers):
        if ignore[t]:
            keep[p] = False
        else:
            labels[p] = 1.0
    return labels, keep, int((~ignore).sum())


def labelled_candidates(detector, items: Sequence[LabeledImage], *, progress: bool = True, desc: str = "candidates"):
    """For each labeled image: (image, probability, candidates, labels, keep, holes_true) with the
    candidates ``detector`` (verify=False, at the candidate threshold) finds, labelled by label_candidates."""
    from tqdm import tqdm

    for item in tqdm(items, desc=desc, unit="img", disable=not progress):
        image = item.read_image()
        probability = detector.probability(image)
        holes = detector.extract(probability, image)
        yield (image, probability, holes, *label_candidates(holes.centers, item.holes(), detector.min_area_px))


def collect_candidates(detector, items: Sequence[LabeledImage], config: VerifierConfig, *,
                       progress: bool = True, desc: str = "candidates") -> Candidates:
    """Run ``detector`` (a runtime Detector built with verify=False at the candidate threshold) on every
    labeled image; the candidates' verifier inputs and labels."""
    crops, measures, labels, holes_true = [], [], [], 0
    for image, probability, holes, label, keep, count in labelled_candidates(detector, items, progress=progress,
                                                                             desc=desc):
        inputs = verifier_inputs(holes[keep], probability, image, config.crop_px, config.span)
        crops.append(inputs[CROP_INPUT])
        measures.append(inputs[MEASURES_INPUT])
        labels.append(label[keep])
        holes_true += count
    size = config.crop_px
    return Candidates(
        crops=np.concatenate(crops) if crops else np.zeros((0, 2, size, size), np.float32),
        measures=np.concatenate(measures) if measures else np.zeros((0, len(MEASURES)), np.float32),
        labels=np.concatenate(labels) if labels else np.zeros(0), holes_true=holes_true, images=len(items))


def verifier_tower_widths(crop_px: int) -> list[list[int]]:
    """The convolution widths of the verifier's tower, one list per resolution: 16 wide at the crop's size
    (two convolutions from 32 px up, one below), then after each 2x2 pooling two 32 wide, one 48 wide
    per further halving, and the last (at 4-7 px) one 64 wide.

    16 px (the default): [[16], [32, 32], [64]], 35 k parameters, ~0.9 M multiply-adds per crop.
    32 px: [[16, 16], [32, 32], [48], [64]], the first verifier's design, ~7.5 M multiply-adds. On the
    default model's candidates the 32 px design scored ~0.005 F1 higher at 3-4x the verifier's time (7x
    for the network alone; README, "The default model")."""
    halvings, size = 0, crop_px
    while size // 2 >= 4:
        size //= 2
        halvings += 1
    widths = [[16, 16] if crop_px >= 32 else [16]]
    for k in range(halvings):
        widths.append([64] if k == halvings - 1 else [32, 32] if k == 0 else [48])
    return widths


def _verifier_net(crop_px: int, measure_mean: np.ndarray, measure_std: np.ndarray):
    import torch
    from torch import nn

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    class HoleVerifierNet(nn.Module):
        """Crops (grey, probability) -> conv tower (verifier_tower_widths) -> global average, with the
        standardised measures -> hole logit."""

        def __init__(self):
            super().__init__()
            self.register_buffer("measure_mean", torch.as_tensor(measure_mean, dtype=torch.float32))
            self.register_buffer("measure_std", torch.as_tensor(measure_std, dtype=torch.float32))
            layers, channels = [], 2
            for level, widths in enumerate(verifier_tower_widths(crop_px)):
                layers += [nn.MaxPool2d(2)] if level else []
                for width in widths:
                    layers.append(block(channels, width))
                    channels = width
            self.tower = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.classify = nn.Sequential(nn.Linear(channels + len(measure_mean), 32), nn.ReLU(inplace=True),
                                          nn.Dropout(0.2), nn.Linear(32, 1))

        def forward(self, crops, measures):
            standard = (measures - self.measure_mean) / self.measure_std
            return self.classify(torch.cat([self.tower(crops), standard], dim=1))[:, 0]

    return HoleVerifierNet()


def fit_binary(net, inputs: Sequence, labels: np.ndarray, *, epochs: int, batch: int, lr: float, seed: int,
               augment: Callable | None = None, progress: bool = True, desc: str = "fit"):
    """Fit ``net`` (inputs -> one logit per row) to 0/1 ``labels`` (both present) by binary cross-entropy: AdamW with a
    one-cycle schedule, shuffled batches (drawn from ``seed``); ``augment(batch_inputs, generator)`` may
    vary a batch's inputs. Seed torch before building ``net``: its initial weights and dropout draw from
    torch's global generator. Returns the network in eval mode."""
    import torch
    from torch import nn
    from tqdm import tqdm

    labels = np.asarray(labels)
    if len(labels) == 0 or labels.min() == labels.max():
        raise ValueError(f"fitting the {desc} needs candidates that are holes and candidates that are not; got "
                         f"{len(labels)} candidates, {int(labels.sum())} of them holes: use more labelled images "
                         f"or another threshold")
    generator = torch.Generator().manual_seed(seed)
    tensors = [torch.from_numpy(np.ascontiguousarray(x, np.float32)) for x in inputs]
    targets = torch.as_tensor(labels, dtype=torch.float32)
    steps = math.ceil(len(targets) / batch)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps)
    net.train()
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress):
        order = torch.randperm(len(targets), generator=generator)
        for first in range(0, len(targets), batch):
            rows = order[first:first + batch]
            if len(rows) < 2:
                continue
            batch_inputs = [t[rows] for t in tensors]
            if augment is not None:
                batch_inputs = augment(batch_inputs, generator)
            loss = nn.functional.binary_cross_entropy_with_logits(net(*batch_inputs), targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return net.eval()


def _mirror_crops(batch_inputs, generator):
    """Crops mirrored left-right, up-down and transposed, each with probability 1/2 (measures as they are)."""
    import torch

    crops, measures = batch_inputs
    flip_u, flip_v, transpose = torch.rand(3, generator=generator) < 0.5
    crops = crops.flip(3) if flip_u else crops
    crops = crops.flip(2) if flip_v else crops
    crops = crops.transpose(2, 3) if transpose else crops
    return [crops, measures]


def fit_verifier(train: Candidates, config: VerifierConfig, *, progress: bool = True):
    """A verifier network fitted to ``train`` (binary cross-entropy, mirrored and transposed crops)."""
    import torch

    config.check()
    torch.manual_seed(config.seed)     # the network's initial weights
    mean, std = train.measures.mean(axis=0), train.measures.std(axis=0) + 1e-6
    net = _verifier_net(train.crops.shape[-1], mean, std)
    return fit_binary(net, [train.crops, train.measures], train.labels, epochs=config.epochs, batch=config.batch,
                      lr=config.lr, seed=config.seed, augment=_mirror_crops, progress=progress, desc="verifier")


def candidate_scores(net, candidates: Candidates, batch: int = 1024) -> np.ndarray:
    """(N,) the verifier's probability that each candidate is a hole (torch)."""
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for first in range(0, len(candidates), batch):
            rows = slice(first, first + batch)
            logits = net(torch.from_numpy(candidates.crops[rows]), torch.from_numpy(candidates.measures[rows]))
            out.append(torch.sigmoid(logits).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def f1_at(scores: np.ndarray, candidates: Candidates, cut: float) -> dict:
    """Hole precision / recall / F1 when the candidates scoring >= ``cut`` are kept."""
    kept = scores >= cut
    tp = int(candidates.labels[kept].sum())
    fp = int(kept.sum()) - tp
    fn = candidates.holes_true - tp
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"min_score": cut, "precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5)}


def best_cut(scores: np.ndarray, candidates: Candidates, cuts: Sequence[float] = CUTS) -> tuple[float, list[dict]]:
    """The ``min_score`` with the best F1 on these (validation) candidates, and the table of all tried."""
    table = [f1_at(scores, candidates, cut) for cut in cuts]
    best = max(table, key=lambda row: (row["f1"], -abs(row["min_score"] - 0.5)))
    return best["min_score"], table


def with_sigmoid(net):
    """The network with a sigmoid on top, as one torch module (what the ONNX files compute)."""
    import torch

    class Score(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return torch.sigmoid(self.inner(*inputs))

    return Score(net).eval()


def export_scores_onnx(net, inputs: dict[str, np.ndarray], path: str | Path, what: str) -> float:
    """Write ``net`` (its inputs in the order of ``inputs`` -> one logit per row) with a sigmoid on top as
    ONNX (opset 17, any number of rows, output SCORE_OUTPUT) and check it on ``inputs``: returns the max
    |score| difference between torch and ONNX Runtime, refusing (and removing the file) above
    PARITY_TOLERANCE. ``what`` names the network in that error."""
    import onnx
    import onnxruntime as ort
    import torch

    path = Path(path)
    graph = with_sigmoid(net)
    names = list(inputs)
    tensors = [torch.from_numpy(np.ascontiguousarray(x, np.float32)) for x in inputs.values()]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notice; it is the one opset 17 needs
        torch.onnx.export(graph, tuple(t[:2] for t in tensors), str(path), input_names=names,
                          output_names=[SCORE_OUTPUT], opset_version=17, dynamo=False,
                          dynamic_axes={**{name: {0: "holes"} for name in names}, SCORE_OUTPUT: {0: "holes"}})
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_scores = session.run([SCORE_OUTPUT], {name: t.numpy() for name, t in zip(names, tensors)})[0]
    with torch.no_grad():
        torch_scores = graph(*tensors).numpy()
    difference = float(np.max(np.abs(onnx_scores - torch_scores))) if len(tensors[0]) else 0.0
    if difference > PARITY_TOLERANCE:
        path.unlink(missing_ok=True)
        raise RuntimeError(f"{path}: the exported {what} differs from torch by {difference:.2e} "
                           f"(limit {PARITY_TOLERANCE:g}); not written")
    return difference


def export_verifier_onnx(net, path: str | Path, crop_px: int, check: Candidates | None = None) -> float:
    """Write ``net`` as ONNX (opset 17, any number of candidates); returns the max |score| difference
    between torch and ONNX Runtime on ``check`` (or random inputs), refusing more than PARITY_TOLERANCE."""
    if check is not None and len(check):
        crops, measures = check.crops[:256], check.measures[:256]
    else:
        rng = np.random.default_rng(0)
        crops = rng.normal(size=(8, 2, crop_px, crop_px)).astype(np.float32)
        measures = rng.normal(size=(8, len(MEASURES))).astype(np.float32)
    return export_scores_onnx(net, {CROP_INPUT: crops, MEASURES_INPUT: measures}, path, "verifier")


def train_verifier_bundle(bundle: str | Path, data: str | Path | Sequence[str | Path], val: str | Path,
                          out: str | Path, config: VerifierConfig, *,
                          context_data: Sequence[str | Path] = (), context_config=None, progress: bool = True,
                          say: Callable[[str], None] = print) -> dict:
    """Train a verifier for ``bundle`` on the labeled set(s) ``data`` (fit) and ``val`` (its cut and the
    figures), and write ``out``: the bundle's files + ``verifier.onnx``, the manifest's post-processing
    set to the candidate threshold and the verifier. Returns the figures written to metrics.verifier.

    ``context_data``: labeled sets, other than ``data``, to fit the context pass on (context_training.py;
    ``context.onnx``), whose score is then the one cut. With ``data`` empty the bundle's own crop
    verifier is kept (its threshold, crop and span) and only the context pass is fitted.
    "Without" is the network alone at the bundle's own threshold (for a bundle that already has a
    verifier, the threshold its verifier's figures name): train from a bundle that has no verifier yet,
    or keep its verifier; retraining one over its low candidate threshold makes a poor baseline."""
    import shutil

    from holevision.runtime.bundle import VerifierSpec, load_bundle
    from holevision.runtime.detector import Detector
    from holevision.runtime.hole_verifier import HoleVerifier

    from .bundle_writer import collect_provenance, publish_bundle, staging_folder
    from .context_training import ContextConfig, collect_context, context_scores, export_context_onnx, fit_context
    from .evaluate import evaluate_thresholds
    from .labeled_images import load_labeled_images

    source = load_bundle(bundle)
    post = source.manifest.postprocess
    data = [data] if isinstance(data, (str, Path)) else list(data)
    context_data = list(context_data)
    keep_crop_verifier = not data
    if keep_crop_verifier:
        if post.verifier is None:
            raise ValueError(f"{source.path}: has no hole verifier to keep; name labeled sets to fit one on (--data)")
        if not context_data:
            raise ValueError("nothing to train: name labeled sets for the verifier (--data), its context pass "
                             "(--context-data) or both")
        config.candidate_threshold = post.threshold
        config.crop_px, config.span = post.verifier.crop_px, post.verifier.span
    config.check()
    context_config = context_config or ContextConfig()
    context_config.check()
    val_items = load_labeled_images(val)
    detector = Detector(source, threshold=config.candidate_threshold, verify=False)
    say(f"candidates at hole probability >= {config.candidate_threshold} from {source.path}")
    figures = {"val": str(val), "fit": [str(d) for d in data], "candidate_threshold": config.candidate_threshold}
    previous = source.manifest.metrics.get("verifier") or {}
    crop_fit = data if data else previous.get("fit", [])
    shared = {Path(d).resolve() for d in crop_fit} & {Path(d).resolve() for d in context_data}
    if shared:
        raise ValueError(f"{', '.join(sorted(map(str, shared)))}: fits the crop verifier and its context pass both; "
                         f"the context pass must learn from images the crop verifier was not fitted on (its scores "
                         f"there are too good)")
    if keep_crop_verifier:
        figures = {**previous, **figures, "fit": previous.get("fit", []), "crop_verifier": "kept from the bundle"}

    staging = staging_folder(out)
    try:
        for name in source.manifest.files:
            if name not in ("verifier.onnx", "context.onnx") or (keep_crop_verifier and name == post.verifier.file):
                shutil.copy2(source.path / name, staging / name)
        if keep_crop_verifier:
            crop_file, cut = post.verifier.file, post.verifier.min_score
            cut = previous.get("crop_min_score", cut)
        else:
            train_items = [item for folder in data for item in load_labeled_images(folder)]
            train = collect_candidates(detector, train_items, config, progress=progress, desc="fit candidates")
            held = collect_candidates(detector, val_items, config, progress=progress, desc="val candidates")
            say(f"fit: {len(train)} candidates in {train.images} images, {int(train.labels.sum())} of "
                f"{train.holes_true} labelled holes among them; val: {len(held)} candidates, "
                f"{int(held.labels.sum())} of {held.holes_true}")
            net = fit_verifier(train, config, progress=progress)
            cut, table = best_cut(candidate_scores(net, held), held)
            crop_file = "verifier.onnx"
            parity = export_verifier_onnx(net, staging / crop_file, config.crop_px, check=held)
            figures.update({"fit_candidates": len(train), "fit_images": train.images, "val_candidates": len(held),
                            "onnx_vs_torch_max_abs_score_diff": parity, "val_cuts": table})
        spec = VerifierSpec(file=crop_file, min_score=cut, crop_px=config.crop_px, span=config.span)

        def predict(image):
            prob = detector.probability(image)
            return np.stack([1.0 - prob, prob])

        def val_f1(verifier=None, threshold=config.candidate_threshold):
            result = evaluate_thresholds(val_items, predict, [threshold], post.min_area_px, verify=verifier)[threshold]
            return {k: result[k] for k in ("f1", "precision", "recall", "center_error_rms_px")}

        crop_verifier = HoleVerifier(staging / crop_file, min_score=cut, crop_px=spec.crop_px, span=spec.span)
        baseline_threshold = previous.get("val_threshold_without_verifier", post.threshold) \
            if keep_crop_verifier else post.threshold
        figures.update({"min_score": cut, "crop_min_score": cut,
                        "val_without_verifier": val_f1(None, baseline_threshold),
                        "val_threshold_without_verifier": baseline_threshold,
                        "val_with_verifier": val_f1(crop_verifier)})
        if context_data:
            context_items = [item for folder in context_data for item in load_labeled_images(folder)]
            fit_set = collect_context(detector, crop_verifier, context_items, progress=progress,
                                      desc="context fit candidates")
            val_set = collect_context(detector, crop_verifier, val_items, progress=progress,
                                      desc="context val candidates")
            say(f"context pass: {len(fit_set)} candidates in {fit_set.images} images, {int(fit_set.labels.sum())} "
                f"of {fit_set.holes_true} labelled holes among them")
            context_net = fit_context(fit_set, context_config, progress=progress)
            context_cut, context_table = best_cut(context_scores(context_net, val_set, context_config.max_shift),
                                                  val_set)
            context_parity = export_context_onnx(context_net, staging / "context.onnx", check=val_set)
            spec = spec.model_copy(update={"min_score": context_cut, "context_file": "context.onnx",
                                           "context_max_shift": context_config.max_shift})
            with_context = HoleVerifier(staging / crop_file, min_score=context_cut, crop_px=spec.crop_px,
                                        span=spec.span, context=staging / "context.onnx",
                                        context_max_shift=context_config.max_shift)
            figures.update({
                "min_score": context_cut, "val_with_crop_verifier": figures["val_with_verifier"],
                "val_with_verifier": val_f1(with_context),
                "context": {"fit": [str(d) for d in context_data], "fit_images": fit_set.images,
                            "fit_candidates": len(fit_set), "hidden": list(context_config.hidden),
                            "epochs": context_config.epochs, "max_shift_logits": context_config.max_shift,
                            "onnx_vs_torch_max_abs_score_diff": context_parity,
                            "val_cuts": context_table}})
        manifest = source.manifest.model_copy(deep=True)
        manifest.postprocess = post.model_copy(update={"threshold": config.candidate_threshold, "verifier": spec})
        manifest.metrics = {**manifest.metrics, "verifier": figures}
        notes = [] if keep_crop_verifier else [f"hole verifier: {config.epochs} epochs, batch {config.batch}, "
                                               f"lr {config.lr}, crop {config.crop_px} px over {config.span} diameters"]
        if context_data:
            notes.append(f"context pass: MLP {list(context_config.hidden)}, {context_config.epochs} epochs, "
                         f"fitted on {[str(d) for d in context_data]}")
        provenance = collect_provenance(dataset={"fit": figures["fit"], "context_fit": [str(d) for d in context_data],
                                                 "val": str(val)}, seed=config.seed, note="; ".join(notes))
        if keep_crop_verifier and "verifier" in source.manifest.provenance:
            provenance = {"crop_verifier": source.manifest.provenance["verifier"], **provenance}
        manifest.provenance = {**manifest.provenance, "verifier": provenance}
        manifest.files = {}
        publish_bundle(staging, out, manifest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    without, with_verifier = figures["val_without_verifier"], figures["val_with_verifier"]
    if context_data:
        crop_only = figures["val_with_crop_verifier"]
        say(f"val F1 with the crop verifier alone {crop_only['f1']:.4f} (min_score {cut}) -> {with_verifier['f1']:.4f} "
            f"with its context pass (min_score {figures['min_score']})")
    say(f"val F1 {without['f1']:.4f} without the verifier (threshold {figures['val_threshold_without_verifier']}) -> "
        f"{with_verifier['f1']:.4f} with it (candidates >= {config.candidate_threshold}, min_score "
        f"{figures['min_score']}); precision {without['precision']:.4f} -> {with_verifier['precision']:.4f}, "
        f"recall {without['recall']:.4f} -> {with_verifier['recall']:.4f}")
    say(f"wrote {out}")
    return figures
