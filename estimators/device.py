"""Which torch device scoring and training run on: one rule for the library, the CLI and the workers.

``auto`` is CUDA when torch sees a GPU, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` name one.
The device never enters a protocol (its hash is the same on every device); results record it. On CUDA,
float32 convolutions and matrix products run in IEEE float32, never TensorFloat-32, so a score on a GPU
differs from the CPU's by rounding alone.
"""

from __future__ import annotations

import re

DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"
DEVICE_HELP = "auto (CUDA when available, else the CPU), cpu, cuda or cuda:N"


class DeviceError(ValueError):
    """A device name that is malformed or names hardware this machine lacks."""


def check_device_name(name: str) -> str:
    """``name`` if it is a device name (torch-free: the API and the CLI check it before importing torch)."""
    if not isinstance(name, str) or not re.fullmatch(DEVICE_PATTERN, name):
        raise DeviceError(f"device must be {DEVICE_HELP}; got {name!r}")
    return name


def resolve_device(name: str = "auto") -> str:
    """The concrete device for ``name``: ``auto`` becomes ``cuda`` or ``cpu``; a CUDA device that this
    machine does not have is an error rather than a silent fall-back to the CPU."""
    import torch

    check_device_name(name)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} requested but CUDA is not available here")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if name != "cpu" and torch.cuda.is_available():
        use_ieee_float32()
    return name


def use_ieee_float32() -> None:
    """Turn off TensorFloat-32 for this process's CUDA convolutions and matrix products. cuDNN uses it for
    float32 convolutions by default on Ampere and later GPUs; its 10-bit mantissa moved gradient-based
    scores of NB201 cells by up to 4 % (ntk_cond, a condition number, by 20 %) against the CPU on an H200."""
    import torch

    torch.backends.cudnn.conv.fp32_precision = "ieee"  # type: ignore[attr-defined]  # not in torch's stubs
    torch.backends.cuda.matmul.fp32_precision = "ieee"
