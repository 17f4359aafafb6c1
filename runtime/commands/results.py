"""`holevision results tail`: the last results from the journal."""

from __future__ import annotations

import argparse


def register(registry) -> None:
    registry.group("results", help="read the results journal",
                   examples="  holevision results tail --state-dir /var/lib/holevision")
    p = registry.command("tail", group="results", help="print the last results (table or JSON lines)",
                         examples="  holevision results tail\n"
                                  "  holevision results tail -n 50 --verdict NG\n"
                                  "  holevision results tail --config /etc/holevision/holevision.toml --json")
    p.add_argument("-n", "--count", type=int, default=20, help="how many (default 20)")
    p.add_argument("--state-dir", default=None, help="journal folder (default: the config's, or /var/lib/holevision)")
    p.add_argument("--config", default=None, help="take the state directory from this service config")
    p.add_argument("--verdict", choices=["OK", "NG", "NONE"], help="only results with this verdict")
    p.add_argument("--camera", help="only this camera")
    p.add_argument("--json", action="store_true", help="one result message (schema v1) per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from holevision.runtime.journal import Journal

    state_dir = args.state_dir
    if state_dir is None and args.config:
        from holevision.runtime.config import load_config

        state_dir = load_config(args.config).journal.state_dir
    with Journal(state_dir or "/var/lib/holevision").open(readonly=True) as journal:
        rows = journal.tail(args.count, camera=args.camera, verdict=args.verdict)
    if args.json:
        for row in rows:
            row.pop("_image_path", None)
            print(json.dumps(row))
        return 0
    print(f"{'seq':>8} {'trigger':>7} {'camera':<8} {'capture time (UTC)':<26} {'verdict':<7} {'holes':>5} "
          f"{'ms':>6}  error / NG image")
    for row in rows:
        ms = (row["done_epoch"] - row["capture_epoch"]) * 1000
        note = (row.get("error") or {}).get("message", "") or (row.get("_image_path") or "")
        trigger = "" if row["trigger_id"] is None else row["trigger_id"]
        print(f"{row['seq']:>8} {trigger:>7} {row['camera']:<8} {row['capture_time'][:26]:<26} "
              f"{row['verdict'] or '-':<7} {len(row['holes']):>5} {ms:>6.1f}  {note}")
    return 0
