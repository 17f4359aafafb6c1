"""`holevision run --config FILE`: the 24/7 service."""

from __future__ import annotations

import argparse


def register(registry) -> None:
    p = registry.command(
        "run", help="run the service: camera -> holes -> journal -> ZeroMQ / Modbus (systemd Type=notify)",
        examples="  holevision run --config /etc/holevision/holevision.toml\n"
                 "  holevision run --config cell.toml --frames 100      stop after 100 results (commissioning)\n"
                 "  holevision config example > cell.toml               a config to start from",
    )
    p.add_argument("--config", required=True, help="TOML config (see `holevision config example`)")
    p.add_argument("--frames", type=int, default=None, help="stop after this many results (default: run until SIGTERM)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from holevision.runtime.config import load_config
    from holevision.runtime.service import build_service

    config = load_config(args.config)
    logging.getLogger("holevision").setLevel(min(logging.getLogger().level, logging.INFO))
    service = build_service(config, config_path=str(args.config)).start()
    log = logging.getLogger("holevision.run")
    log.info("running: source=%s trigger=%s model=%s", config.source.kind, config.trigger.mode,
             service.pipeline.model_name)
    produced = service.run(max_frames=args.frames)
    log.info("stopped after %d results; journal flushed", produced)
    return 0
