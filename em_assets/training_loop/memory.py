"""Peak memory of a training window, for the metrics every trained model records."""

from __future__ import annotations

import torch

from em_assets import process_memory


class PeakMemory:
    """Peak resident memory of this process over a window (Linux: reset via clear_refs,
    elsewhere the lifetime peak), plus peak CUDA allocation when on GPU."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.window_reset = False

    def reset(self) -> None:
        # through process_memory, so a CLI stage around the training keeps its own peak
        self.window_reset = process_memory.reset_peak()
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_rss_bytes(self) -> int:
        return process_memory.current_peak_bytes()

    def peak_cuda_bytes(self) -> int | None:
        if self.device is not None and self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return None
