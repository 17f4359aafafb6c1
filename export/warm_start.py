"""Start training from a trained model: a run folder's ``best.pt`` or an exported bundle's ONNX weights.

Fine-tuning the shipped default model (or any bundle) on a few labeled images of your own parts is
the short way to a good model: ``holevision train --init-from default ...``. A bundle holds no torch
checkpoint, so its weights are read back from the ONNX graph: most initializers keep the parameter's
name (``model.<state_dict key>``); a Linear layer's weight is stored transposed as the second input of
its ``MatMul`` node, found by the node's module path; a convolution the exporter fused with its
BatchNorm comes back as the fused convolution plus an identity BatchNorm. After loading, the torch model is run against
ONNX Runtime on the bundle's own input size; a difference above ``PARITY_TOLERANCE`` means the mapping
went wrong, and nothing is trained from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PARITY_TOLERANCE = 1e-3   # max abs difference of the hole probability, torch vs ONNX Runtime


class WarmStartError(ValueError):
    """The weights to start from cannot be read or do not fit the model."""


def resolve_source(source: str | Path) -> Path:
    """'default' (the packaged bundle), a bundle folder, or a run folder -> its path, checked."""
    from holevision.runtime.bundle import DEFAULT_BUNDLE_DIR

    path = Path(DEFAULT_BUNDLE_DIR) if str(source) == "default" else Path(source)
    if (path / "manifest.json").is_file() or (path / "best.pt").is_file():
        return path
    raise WarmStartError(f"{path}: not a bundle (manifest.json) or a training run (best.pt)")


def source_description(path: Path) -> dict:
    """Model name and classes the source was trained with (to build the same model)."""
    if (path / "manifest.json").is_file():
        from holevision.runtime.bundle import read_manifest

        manifest = read_manifest(path)
        return {"model": manifest.backbone, "classes": list(manifest.outputs.classes), "kind": "bundle"}
    from .train import read_run_config

    config = read_run_config(path)
    return {"model": config["model"], "classes": list(config["classes"]), "kind": "run"}


def source_identity(source: str | Path) -> dict:
    """Where the initial weights came from, for the run's config.json: resolved path, kind, sha256
    ('default' names whatever bundle is packaged today; the hash says which one it was)."""
    from holevision.runtime.bundle import sha256_file

    path = resolve_source(source)
    kind = source_description(path)["kind"]
    weights = path / ("manifest.json" if kind == "bundle" else "best.pt")
    return {"path": str(path.resolve()), "kind": kind, "file": weights.name, "sha256": sha256_file(weights)}


def scope_path(node_name: str) -> str:
    """An exported node's module path: '/model/stem/to_s2/to_s2.0/to_s2.0.0/Conv' -> 'model.stem.to_s2.0.0'.

    The exporter names one scope level per module, a container's child as 'parent.index'.
    """
    path: list[str] = []
    for part in node_name.strip("/").split("/")[:-1]:
        if path and part.startswith(path[-1] + "."):
            path[-1] = part
        else:
            path.append(part)
    return ".".join(path)


def scope_names_module(scope: str, module: str) -> bool:
    """Whether a node's scope is ``module``, allowing wrapper modules that hold no ops to be elided
    (the scope 'model.backbone.stages.0' for the module 'model.backbone.hf.model.stages.0')."""
    if scope == module:
        return True
    s, m = scope.split("."), module.split(".")
    return 2 < len(s) < len(m) and m[:2] == s[:2] and m[len(m) - (len(s) - 2):] == s[2:]


def _node_constants(graph, initializers: dict) -> dict[tuple[str, str], list[np.ndarray]]:
    """(op type, scope) -> the node's constant operands after its data input (weight, bias)."""
    found = {}
    for node in graph.node:
        if node.op_type in ("Conv", "MatMul", "Gemm"):
            found[(node.op_type, scope_path(node.name))] = [initializers[n] for n in node.input[1:] if n in initializers]
    return found


def _constants_of(module: str, op_type: str, constants: dict) -> list[np.ndarray] | None:
    hits = [value for (op, scope), value in constants.items() if op == op_type and scope_names_module(scope, module)]
    return hits[0] if len(hits) == 1 else None


def _next_sibling(key_module: str) -> str | None:
    """'stem.to_s2.0.0' -> 'stem.to_s2.0.1' (the layer after this one in its Sequential)."""
    head, _, last = key_module.rpartition(".")
    return f"{head}.{int(last) + 1}" if last.isdigit() and head else None


def state_from_onnx(onnx_path: Path, model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``model``'s state dict filled from the ONNX file written by ``holevision export``.

    Parameters kept by name are copied; Linear weights come from their MatMul (transposed); a Conv
    that the exporter fused with the BatchNorm after it gives the fused weight to the Conv and its
    bias to the BatchNorm, whose statistics become the identity (mean 0, variance 1 - eps, scale 1):
    the same function in eval mode. Returns (state, names of the model's tensors the file does not
    hold, e.g. layers the exported graph does not use; they keep their current values).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    initializers = {i.name: numpy_helper.to_array(i).copy() for i in graph.initializer}
    constants = _node_constants(graph, initializers)
    modules = dict(model.named_modules())
    state = {key: value.clone() for key, value in model.state_dict().items()}
    resolved: set[str] = set()

    def put(key: str, value: np.ndarray) -> None:
        if tuple(value.shape) != tuple(state[key].shape):
            raise WarmStartError(f"{onnx_path}: {key} has shape {tuple(value.shape)} in the file but "
                                 f"{tuple(state[key].shape)} in the model (another configuration?)")
        state[key] = torch.from_numpy(np.ascontiguousarray(value)).to(state[key].dtype)
        resolved.add(key)

    for key in list(state):
        if f"model.{key}" in initializers:
            put(key, initializers[f"model.{key}"])
    for name, module in modules.items():
        weight_key = f"{name}.weight"
        if weight_key in resolved or weight_key not in state:
            continue
        if isinstance(module, torch.nn.Linear):
            found = _constants_of(f"model.{name}", "MatMul", constants)
            if found:
                put(weight_key, found[0].T)
        elif isinstance(module, torch.nn.Conv2d):
            found = _constants_of(f"model.{name}", "Conv", constants)
            if not found:
                continue
            put(weight_key, found[0])
            if module.bias is not None and len(found) > 1 and f"{name}.bias" not in resolved:
                put(f"{name}.bias", found[1])
            sibling = _next_sibling(name)
            if module.bias is None and len(found) > 1 and isinstance(modules.get(sibling), torch.nn.BatchNorm2d):
                norm = modules[sibling]
                put(f"{sibling}.bias", found[1])
                put(f"{sibling}.weight", np.ones(norm.num_features, np.float32))
                put(f"{sibling}.running_mean", np.zeros(norm.num_features, np.float32))
                put(f"{sibling}.running_var", np.full(norm.num_features, 1.0 - norm.eps, np.float32))
                resolved.add(f"{sibling}.num_batches_tracked")
    unresolved = [key for key in state if key not in resolved and not key.endswith("num_batches_tracked")]
    return state, unresolved


def check_against_onnx(model: torch.nn.Module, bundle) -> float:
    """Max abs difference of the probabilities, torch (camera contract) vs ONNX Runtime; raises if too big."""
    import onnxruntime as ort

    from .onnx_export import CameraInputModel

    spec = bundle.manifest.input
    image = np.random.default_rng(0).integers(0, 256, (1, spec.height, spec.width, 3), dtype=np.uint8)
    session = ort.InferenceSession(str(bundle.model_file("fp32")), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    expected = session.run([bundle.manifest.outputs.probabilities], {name: image})[0]
    wrapped = CameraInputModel(model).eval()
    with torch.no_grad():
        got = wrapped(torch.from_numpy(image))[-1].numpy()
    difference = float(np.abs(got - expected).max())
    if difference > PARITY_TOLERANCE:
        raise WarmStartError(f"{bundle.path}: the weights read back from the ONNX graph do not reproduce it "
                             f"(max probability difference {difference:.2e} > {PARITY_TOLERANCE:g})")
    return difference


def folds_batchnorm(source: str | Path) -> bool:
    """Whether weights from ``source`` have BatchNorm folded into convolutions (a bundle's ONNX).

    Training from them keeps BatchNorm in eval mode: its statistics are the identity, and batch
    statistics would change the function learned so far.
    """
    return (resolve_source(source) / "manifest.json").is_file()


def load_initial_weights(model: torch.nn.Module, source: str | Path) -> str:
    """Load ``source``'s weights into ``model`` (same registered model and classes); returns a one-line report."""
    path = resolve_source(source)
    described = source_description(path)
    if described["classes"] != list(model.classes):
        raise WarmStartError(f"{path}: classes {described['classes']} differ from the model's {list(model.classes)}")
    if described["kind"] == "run":
        state = torch.load(str(path / "best.pt"), map_location="cpu", weights_only=False)["model"]
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise WarmStartError(f"{path / 'best.pt'}: does not fit the model ({str(exc).splitlines()[0]})") from exc
        return f"initial weights: {path / 'best.pt'}"
    from holevision.runtime.bundle import load_bundle

    bundle = load_bundle(path)            # sha256-verified: a damaged file is named, not trained from
    onnx_path = bundle.model_file("fp32")
    state, unresolved = state_from_onnx(onnx_path, model)
    model.load_state_dict(state)
    model.eval()
    try:
        difference = check_against_onnx(model, bundle)
    except WarmStartError as exc:
        if unresolved:
            raise WarmStartError(f"{exc}; not in the file: {', '.join(unresolved[:8])}") from exc
        raise
    return (f"initial weights: {onnx_path} (read back from ONNX; max probability difference {difference:.1e}; "
            f"{len(unresolved)} unused tensors kept)")
