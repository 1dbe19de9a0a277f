"""How much memory a device has free, to refuse a run that cannot fit before it allocates."""

from __future__ import annotations

from pathlib import Path

from evolora.errors import EvoloraError


def available_bytes(device) -> int | None:
    """Free memory on `device` (MemAvailable for cpu, free CUDA memory); None when unknown."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(needed: int, device, what: str, advice: str) -> None:
    """Raise an EvoloraError when `needed` bytes exceed 80% of what `device` has free."""
    free = available_bytes(device)
    if free is not None and needed > 0.8 * free:
        raise EvoloraError(
            f"{what} needs about {needed / 2**30:.1f} GiB on {device}, more than the "
            f"{free / 2**30:.1f} GiB free there; {advice}."
        )
