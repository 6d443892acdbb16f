#!/usr/bin/env python3
"""A stand-in for an outside SR tool: Lanczos upsampling with Pillow, shard in, shard out.

It knows nothing of the suite. The only contract is the shard layout: read a float32 LR array
of shape (N, h, w) in [0, 1] and write a float32 SR array of shape (N, h*s, w*s).
"""

import argparse
import os

import numpy as np
from PIL import Image


def upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    n, h, w = lr.shape
    out = np.empty((n, h * scale, w * scale), dtype=np.float32)
    for i in range(n):
        image = Image.fromarray(np.asarray(lr[i], dtype=np.float32), mode="F")
        out[i] = np.asarray(image.resize((w * scale, h * scale), Image.Resampling.LANCZOS))
    return np.clip(out, 0.0, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--inputs", nargs="+", required=True)
    parser.add_argument("--outputs", nargs="+", required=True)
    args = parser.parse_args()
    for src, dst in zip(args.inputs, args.outputs, strict=True):
        sr = upscale(np.load(src, mmap_mode="r"), args.scale)
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        tmp = f"{dst}.part.npy"
        np.save(tmp, sr)
        os.replace(tmp, dst)
        print(f"{src} -> {dst}: {sr.shape}")


if __name__ == "__main__":
    main()
