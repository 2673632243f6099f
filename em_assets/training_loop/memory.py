"""Peak memory of a training window, for the metrics every trained model records."""

from __future__ import annotations

import resource

import torch


class PeakMemory:
    """Peak resident memory of this process over a window (Linux: reset via clear_refs,
    elsewhere the lifetime peak), plus peak CUDA allocation when on GPU."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.window_reset = False

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # resets VmHWM to the current RSS
            self.window_reset = True
        except OSError:
            self.window_reset = False
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_rss_bytes(self) -> int:
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def peak_cuda_bytes(self) -> int | None:
        if self.device is not None and self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return None
