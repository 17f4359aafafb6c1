"""`holevision bundle info|verify`: what a model bundle is, and whether its files are intact."""

from __future__ import annotations

import argparse
import json


def register(registry) -> None:
    registry.group("bundle", help="inspect or verify a model bundle (folder with manifest.json)",
                   examples="  holevision bundle info                      the bundle shipped with holevision\n"
                            "  holevision bundle verify bundles/nano       exit status 1 if any file changed")
    p = registry.command("info", group="bundle", help="print a bundle's model, input contract, gates and provenance",
                         examples="  holevision bundle info\n"
                                  "  holevision bundle info bundles/nano --json")
    p.add_argument("bundle", nargs="?", default="default", help="bundle folder (default: the packaged default)")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(func=_info)
    p = registry.command("verify", group="bundle",
                         help="check every file against its sha256 in the manifest; non-zero exit names the file",
                         examples="  holevision bundle verify bundles/nano && echo intact\n"
                                  "  holevision bundle verify            the packaged default bundle")
    p.add_argument("bundle", nargs="?", default="default", help="bundle folder (default: the packaged default)")
    p.set_defaults(func=_verify)


def _path(text: str):
    from holevision.runtime.bundle import DEFAULT_BUNDLE_DIR

    return DEFAULT_BUNDLE_DIR if text == "default" else text


def _info(args: argparse.Namespace) -> int:
    from holevision.runtime.bundle import read_manifest
    from holevision.runtime.bundle_summary import describe_manifest

    manifest = read_manifest(_path(args.bundle))
    if args.json:
        print(json.dumps(manifest.model_dump(mode="json"), indent=2))
    else:
        print(describe_manifest(manifest, _path(args.bundle)))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from holevision.runtime.bundle import verify_bundle

    path = _path(args.bundle)
    problems = verify_bundle(path)
    if problems:
        for line in problems:
            print(line)
        print(f"{path}: FAILED ({len(problems)} problem{'s' if len(problems) > 1 else ''})")
        return 1
    print(f"{path}: OK (every file matches its sha256)")
    return 0
