"""COCO run-length encoding (column-major), compressed string form and count lists, without pycocotools."""

from __future__ import annotations

import numpy as np


def rle_decode(counts, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask from COCO RLE ``counts`` (list of ints, or the compressed string)."""
    if isinstance(counts, (str, bytes)):
        counts = rle_string_to_counts(counts)
    counts = [int(c) for c in counts]
    total = height * width
    if sum(counts) != total:
        raise ValueError(f"RLE counts sum to {sum(counts)}, expected {height}x{width} = {total}")
    flat = np.zeros(total, dtype=bool)
    pos, value = 0, False
    for c in counts:
        if value:
            flat[pos:pos + c] = True
        pos += c
        value = not value
    return flat.reshape((width, height)).T


def rle_encode(mask: np.ndarray) -> list[int]:
    """COCO RLE counts (starting with a run of zeros) of a bool mask, column-major."""
    flat = np.asarray(mask, dtype=bool).T.ravel()
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0] + runs
    return [int(r) for r in runs]


def rle_string_to_counts(text) -> list[int]:
    """Decode pycocotools' compressed RLE string (LEB128-like, 5 bits per char, deltas from i-2)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    counts: list[int] = []
    p = 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            if p >= len(text):
                raise ValueError("RLE string ends in the middle of a number")
            c = ord(text[p]) - 48
            if c < 0 or c > 63:
                raise ValueError(f"RLE string has an invalid character {text[p]!r} at {p}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def counts_to_rle_string(counts: list[int]) -> str:
    """Encode counts as pycocotools' compressed RLE string."""
    out = []
    for i, x in enumerate(counts):
        x = int(x)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)
