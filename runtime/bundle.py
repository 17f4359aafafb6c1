"""The model bundle: the one contract between `holevision.export` and the runtime.

A bundle is a folder::

    manifest.json              this schema (format_version 1)
    model.onnx                 fp32, uint8 BGR NHWC in, normalization folded into the graph
    model.int8.onnx            optional, static QDQ INT8 that passed its accuracy gate
    model.fp16.onnx            optional, for GPUs
    model.trt10.8-sm89.plan    optional TensorRT plans, named by TensorRT version and GPU
    verifier.onnx              optional hole verifier (postprocess.verifier; runtime/hole_verifier.py)

The runtime verifies the sha256 of every file listed in the manifest and refuses a bundle that does
not match (a changed byte, a missing file, or an unlisted model file).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DEFAULT_BUNDLE_DIR = Path(__file__).parent / "default_bundle"


class BundleError(ValueError):
    """A bundle is missing, malformed or does not match its manifest."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class InputSpec(_Strict):
    """What the graph takes: camera pixels as they are. Normalization is inside the graph."""

    height: int = Field(gt=0, multiple_of=32)
    width: int = Field(gt=0, multiple_of=32)
    dtype: Literal["uint8"] = "uint8"
    layout: Literal["NHWC"] = "NHWC"
    color: Literal["BGR"] = "BGR"
    batch: int = Field(1, ge=1, description="fixed batch size of the graph")
    mean: list[float] = Field(description="RGB mean (0..1) folded into the graph, informational")
    std: list[float] = Field(description="RGB std (0..1) folded into the graph, informational")


class OutputSpec(_Strict):
    names: list[str] = Field(min_length=1, description="graph output names, from the model's NamedTuple")
    probabilities: str = Field(description="output holding per-class probabilities, (N, C, H, W), at input size")
    classes: list[str] = Field(min_length=2, description="class names; index 0 is background")
    stride: int = Field(1, ge=1, description="input pixels per output pixel of `probabilities`")


class VerifierSpec(_Strict):
    """A second look at each candidate hole (see holevision.runtime.hole_verifier)."""

    file: str = Field("verifier.onnx", description="the verifier's ONNX file in the bundle")
    min_score: float = Field(0.5, gt=0, lt=1, description="candidates the verifier scores below this are dropped")
    crop_px: int = Field(32, ge=8, le=256, description="side of the square crop around each hole, px")
    span: float = Field(3.0, gt=1, le=10, description="the crop covers span x the hole's diameter")
    context_file: str | None = Field(None, description="optional second pass (runtime/hole_context.py): each "
                                     "candidate rescored next to its frame's other candidates; min_score then "
                                     "cuts its score")
    context_max_shift: float = Field(1.5, gt=0, le=20, description="the context pass moves a candidate's crop "
                                     "score by at most this many logits (a lone hole the crop pass is sure of "
                                     "stays)")


class PostprocessSpec(_Strict):
    threshold: float = Field(0.5, gt=0, lt=1, description="hole probability threshold (for the verifier's "
                                                          "candidates when there is one)")
    min_area_px: float = Field(6.0, ge=0, description="instances smaller than this are dropped")
    verifier: VerifierSpec | None = Field(None, description="optional hole verifier run on every candidate")


class TilingSpec(_Strict):
    tile_height: int = Field(gt=0)
    tile_width: int = Field(gt=0)
    overlap_px: int = Field(64, ge=0, description="tiles overlap by this much; holes up to ~this size cross seams safely")


class Manifest(_Strict):
    format_version: int = FORMAT_VERSION
    name: str
    backbone: str = Field(description="registered backbone name, e.g. dinov3-convnext-tiny")
    architecture: str = Field(description="student/segmenter architecture actually exported")
    parameters: int = Field(ge=0)
    gflops: float = Field(ge=0, description="GFLOPs of one forward pass at the export size")
    input: InputSpec
    outputs: OutputSpec
    postprocess: PostprocessSpec = Field(default_factory=PostprocessSpec)
    tiling: TilingSpec
    metrics: dict = Field(default_factory=dict, description="gate figures at export (F1, center error, parity)")
    provenance: dict = Field(default_factory=dict, description="git revision, library versions, dataset, seed, date")
    files: dict[str, str] = Field(default_factory=dict, description="file name -> sha256 of every file but this one")


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest

    def model_file(self, precision: Literal["fp32", "int8", "fp16"] = "fp32") -> Path:
        name = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx"}[precision]
        if name not in self.manifest.files:
            raise BundleError(f"{self.path}: bundle has no {precision} model ({name} is not in the manifest)")
        return self.path / name

    def has(self, name: str) -> bool:
        return name in self.manifest.files

    def plans(self) -> list[str]:
        return sorted(n for n in self.manifest.files if n.endswith(".plan"))

    def plan_for(self, tensorrt_version: str, compute_capability: str | tuple[int, int],
                 precision: Literal["fp32", "fp16", "int8"] = "fp32") -> Path | None:
        """The TensorRT plan built for this TensorRT ``major.minor`` and GPU, or None (rebuild or fall back)."""
        name = plan_file_name(tensorrt_version, compute_capability, precision)
        return self.path / name if name in self.manifest.files else None

    @property
    def sha256(self) -> str:
        """Identity of the bundle: sha256 of its manifest file."""
        return sha256_file(self.path / MANIFEST)


_PLAN_NAME = re.compile(r"^model(?:\.(?P<precision>fp16|int8))?\.trt(?P<version>\d+\.\d+)-sm(?P<sm>\d+)\.plan$")
PLAN_PRECISIONS = ("fp32", "fp16", "int8")


def plan_file_name(tensorrt_version: str, compute_capability: str | tuple[int, int],
                   precision: Literal["fp32", "fp16", "int8"] = "fp32") -> str:
    """Name of a TensorRT plan inside a bundle; a plan runs only on that TensorRT version and GPU.

    ``model.trt10.8-sm89.plan``: built from model.onnx (FP16 kernels allowed, TensorRT picks per layer);
    ``model.int8.trt10.8-sm89.plan``: from the QDQ model; ``model.fp16.trt...``: from model.fp16.onnx.
    The runtime's engine factory looks plans up by the same names.
    """
    version = ".".join(str(tensorrt_version).split(".")[:2])
    if not re.fullmatch(r"\d+\.\d+", version):
        raise ValueError(f"TensorRT version must look like '10.8', got {tensorrt_version!r}")
    if isinstance(compute_capability, tuple):
        compute_capability = f"{compute_capability[0]}{compute_capability[1]}"
    sm = str(compute_capability).replace(".", "")
    if not sm.isdigit():
        raise ValueError(f"compute capability must look like '89' or '8.9', got {compute_capability!r}")
    if precision not in PLAN_PRECISIONS:
        raise ValueError(f"plan precision must be one of {PLAN_PRECISIONS}, got {precision!r}")
    tag = "" if precision == "fp32" else f".{precision}"
    return f"model{tag}.trt{version}-sm{sm}.plan"


def parse_plan_file_name(name: str) -> dict | None:
    """{'precision', 'tensorrt', 'compute_capability'} of a plan file name, or None if it is not one."""
    match = _PLAN_NAME.match(name)
    if not match:
        return None
    return {"precision": match["precision"] or "fp32", "tensorrt": match["version"],
            "compute_capability": match["sm"]}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    file = path / MANIFEST if path.is_dir() else path
    if not file.exists():
        raise BundleError(f"{file}: no manifest (is {path} a holevision bundle folder?)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{file}: not valid JSON: {exc}") from None
    if isinstance(data, dict) and data.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise BundleError(f"{file}: format_version {data.get('format_version')} is not supported "
                          f"(this holevision reads version {FORMAT_VERSION})")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
        raise BundleError(f"{file}: invalid manifest: {problems}") from None


def verify_bundle(path: str | Path) -> list[str]:
    """Every mismatch as a ``file: problem`` line; empty when the bundle is intact."""
    path = Path(path)
    try:
        manifest = read_manifest(path)
    except BundleError as exc:
        return [str(exc)]
    problems = []
    if "model.onnx" not in manifest.files:
        problems.append(f"{path / 'model.onnx'}: not listed in the manifest (every bundle has an fp32 model)")
    verifier = manifest.postprocess.verifier
    if verifier is not None and verifier.file not in manifest.files:
        problems.append(f"{path / verifier.file}: postprocess.verifier names it but the manifest does not list it")
    if verifier is not None and verifier.context_file is not None and verifier.context_file not in manifest.files:
        problems.append(f"{path / verifier.context_file}: postprocess.verifier.context_file names it but the "
                        f"manifest does not list it")
    for name, expected in sorted(manifest.files.items()):
        file = path / name
        if "/" in name or "\\" in name or name == MANIFEST:
            problems.append(f"{file}: invalid file name in manifest")
        elif not file.is_file():
            problems.append(f"{file}: missing")
        elif sha256_file(file) != expected:
            problems.append(f"{file}: sha256 mismatch (file changed since export)")
    for file in sorted(path.iterdir()):
        if file.name != MANIFEST and file.suffix in (".onnx", ".plan") and file.name not in manifest.files:
            problems.append(f"{file}: model file not listed in the manifest")
    return problems


def load_bundle(path: str | Path | None = None, *, verify: bool = True) -> Bundle:
    """Open a bundle folder (None or 'default' = the packaged default) and verify it."""
    path = DEFAULT_BUNDLE_DIR if path in (None, "default") else Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: bundle folder not found")
    manifest = read_manifest(path)
    if verify:
        problems = verify_bundle(path)
        if problems:
            raise BundleError("refusing a bundle that does not match its manifest:\n  " + "\n  ".join(problems))
    return Bundle(path=path, manifest=manifest)


def write_manifest(folder: str | Path, manifest: Manifest) -> Manifest:
    """Hash every file in ``folder`` (except the manifest) into ``manifest.files`` and write it."""
    folder = Path(folder)
    files = {f.name: sha256_file(f) for f in sorted(folder.iterdir()) if f.is_file() and f.name != MANIFEST}
    manifest = manifest.model_copy(update={"files": files})
    (folder / MANIFEST).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    return manifest
