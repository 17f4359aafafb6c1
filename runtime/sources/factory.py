"""Build a FrameSource from the ``[source]`` config section."""

from __future__ import annotations

from collections.abc import Callable

from holevision.runtime.sources.base import FrameSource


def source_factory(source_config) -> Callable[[], FrameSource]:
    """A function that makes a fresh source (the capture thread calls it again to reopen)."""
    kind = source_config.kind
    uri = source_config.uri
    if kind == "synthetic":
        from holevision.runtime.sources.synthetic import SyntheticSource

        # keep the frame counter across reopens so a reconnect does not replay the same parts
        style = source_config.synthetic_style
        source = SyntheticSource(source_config.seed, source_config.width, source_config.height,
                                 style="photo" if style == "discs" else style,
                                 renderer="discs" if style == "discs" else "auto")
        return lambda: source
    if kind in ("opencv", "video"):
        from holevision.runtime.sources.opencv_capture import OpenCVSource

        if not uri:
            raise ValueError(f"source.uri: required for source.kind = {kind!r} (camera index, /dev/videoN, URL or file)")
        return lambda: OpenCVSource(uri, loop=source_config.loop, width=source_config.width,
                                    height=source_config.height)
    if kind == "folder":
        from holevision.runtime.sources.folder import FolderSource

        if not uri:
            raise ValueError("source.uri: required for source.kind = 'folder' (the image folder)")
        return lambda: FolderSource(uri, loop=source_config.loop)
    if kind == "genicam":
        from holevision.runtime.sources.genicam import GenICamSource

        if not uri:
            raise ValueError("source.uri: required for source.kind = 'genicam' (PRODUCER.cti[#SERIAL])")
        return lambda: GenICamSource(uri)
    raise ValueError(f"source.kind: unknown kind {kind!r}")
