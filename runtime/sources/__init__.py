"""Frame sources (OpenCV capture, video file, image folder, synthetic parts, GenICam) and the capture thread.

``open_source(config.source)`` builds one; ``CaptureThread`` runs it, numbers and timestamps frames,
flags repeated (frozen) frames and reopens a lost camera with backoff.
"""
