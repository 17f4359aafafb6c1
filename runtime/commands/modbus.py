"""`holevision modbus map`: the register map the PLC programmer needs."""

from __future__ import annotations

import argparse


def register(registry) -> None:
    registry.group("modbus", help="Modbus TCP register map",
                   examples="  holevision modbus map\n  holevision modbus map --max-holes 16 --word-order CDAB")
    p = registry.command("map", group="modbus", help="print the holding-register map and the handshake",
                         examples="  holevision modbus map\n"
                                  "  holevision modbus map --config /etc/holevision/holevision.toml\n"
                                  "  holevision modbus map --max-holes 16 --word-order CDAB")
    p.add_argument("--config", help="take max_holes and word_order from this service config")
    p.add_argument("--max-holes", type=int, default=None, help="holes in the map (default 32 or the config's)")
    p.add_argument("--word-order", default=None, choices=["ABCD", "CDAB", "BADC", "DCBA"], help="float32 word order")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from holevision.runtime.publish.modbus_map import format_register_table

    max_holes, word_order = 32, "ABCD"
    if args.config:
        from holevision.runtime.config import load_config

        modbus = load_config(args.config).publish.modbus
        max_holes, word_order = modbus.max_holes, modbus.word_order
    max_holes = args.max_holes or max_holes
    if max_holes < 1:
        raise ValueError(f"--max-holes must be >= 1, got {max_holes}")
    print(format_register_table(max_holes, args.word_order or word_order))
    return 0
