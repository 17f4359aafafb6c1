"""Assemble a model bundle folder: model files + ``manifest.json`` (schema in holevision.runtime.bundle).

The exporter writes every file into a staging folder next to the destination; ``publish_bundle`` hashes
them into the manifest and only then swaps the folder into place, so an export that fails a gate never
leaves a half-written bundle behind.
"""

from __future__ import annotations

import datetime as _dt
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from holevision.runtime.bundle import (MANIFEST, BundleError, InputSpec, Manifest, OutputSpec, PostprocessSpec,
                                       TilingSpec, verify_bundle, write_manifest)

PROVENANCE_LIBRARIES = ("holevision", "torch", "transformers", "onnx", "onnxruntime", "onnxscript", "numpy",
                        "opencv-python-headless")


def library_versions(names=PROVENANCE_LIBRARIES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision(path: str | Path | None = None) -> dict:
    """{'revision': sha, 'dirty': bool} of the git checkout holding ``path`` (this package by default)."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10)
        return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def collect_provenance(*, run: str | Path | None = None, run_config: dict | None = None,
                       dataset: dict | None = None, seed: int | None = None, note: str | None = None,
                       command: list[str] | None = None) -> dict:
    """Where a bundle came from: run, training config summary, data, seed, code and library versions."""
    run_config = run_config or {}
    provenance = {
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "run": str(run) if run else None,
        "seed": seed if seed is not None else run_config.get("seed"),
        "dataset": dataset or {k: run_config[k] for k in ("data", "val", "images", "teacher", "size", "epochs")
                               if k in run_config},
        "git": git_revision(),
        "libraries": library_versions(),
        "platform": {"machine": platform.machine(), "system": platform.system()},
        "command": command if command is not None else sys.argv,
    }
    if note:
        provenance["note"] = note
    return provenance


def build_manifest(model, *, name: str, height: int, width: int, output_names: list[str], parameters: int,
                   gflops: float, metrics: dict | None = None, provenance: dict | None = None,
                   postprocess: PostprocessSpec | None = None, overlap_px: int = 64) -> Manifest:
    """A Manifest for ``model`` (a segmenter with ``name``, ``classes``, ``mean``, ``std``) at H x W."""
    backbone = getattr(model, "backbone", None)
    kind = getattr(backbone, "kind", "unknown")
    architecture = (f"{type(model).__name__}(backbone=DINOv3 {kind} '{getattr(model, 'name', '?')}', "
                    f"channels={getattr(backbone, 'channels', '?')})")
    return Manifest(
        name=name,
        backbone=str(getattr(model, "name", "unknown")),
        architecture=architecture,
        parameters=int(parameters),
        gflops=float(gflops),
        input=InputSpec(height=height, width=width, mean=[float(v) for v in model.mean],
                        std=[float(v) for v in model.std]),
        outputs=OutputSpec(names=list(output_names), probabilities="probs", classes=list(model.classes), stride=1),
        postprocess=postprocess or PostprocessSpec(),
        tiling=TilingSpec(tile_height=height, tile_width=width, overlap_px=min(overlap_px, height // 4, width // 4)),
        metrics=metrics or {},
        provenance=provenance or {},
    )


def staging_folder(out_dir: str | Path) -> Path:
    """An empty folder beside ``out_dir`` to write the bundle's files into."""
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _replaceable(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir()) or (folder / MANIFEST).is_file()


def publish_bundle(staging: str | Path, out_dir: str | Path, manifest: Manifest) -> Manifest:
    """Hash the staged files into ``manifest``, verify, and move the folder to ``out_dir``.

    An existing ``out_dir`` is replaced only when it is a bundle (has a manifest) or empty.
    """
    staging, out_dir = Path(staging), Path(out_dir)
    if not _replaceable(out_dir):
        raise BundleError(f"{out_dir}: exists and is not a bundle folder (no {MANIFEST}); refusing to overwrite it")
    written = write_manifest(staging, manifest)
    problems = verify_bundle(staging)
    if problems:
        raise BundleError("the staged bundle does not verify:\n  " + "\n  ".join(problems))
    if out_dir.exists():
        backup = out_dir.with_name(out_dir.name + ".previous")
        if backup.exists():
            shutil.rmtree(backup)
        out_dir.rename(backup)
        staging.rename(out_dir)
        shutil.rmtree(backup)
    else:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out_dir)
    return written
