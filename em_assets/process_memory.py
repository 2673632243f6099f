"""Peak resident memory (RSS) of this process over nested windows: a CLI stage, and a training
loop inside it. Linux resets the kernel's peak (VmHWM) through /proc/self/clear_refs; a reset
inside a window would lose that window's earlier peak, so every reset first carries the peak so
far into the windows still open. Elsewhere the peak is the lifetime one (ru_maxrss)."""

from __future__ import annotations

import resource

_open: list[PeakWindow] = []


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status in bytes; None where there is none (not Linux)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def current_peak_bytes() -> int:
    """The kernel's peak RSS since the last reset (VmHWM), else the lifetime peak."""
    peak = _status_bytes("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    """The RSS now (VmRSS); 0 where the kernel does not say."""
    return _status_bytes("VmRSS") or 0


def reset_peak() -> bool:
    """Start a new peak at the current RSS, keeping the peak so far in every open window;
    False where the kernel cannot reset it (the peak then stays the lifetime one)."""
    so_far = current_peak_bytes()
    for window in _open:
        window.carried = max(window.carried, so_far)
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


class PeakWindow:
    """``with PeakWindow() as window: ...`` then ``window.peak_bytes``: the highest RSS inside."""

    def __init__(self) -> None:
        self.carried = 0
        self.final: int | None = None

    def __enter__(self) -> PeakWindow:
        reset_peak()
        _open.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self.final = self.peak_bytes
        _open.remove(self)

    @property
    def peak_bytes(self) -> int:
        return self.final if self.final is not None else max(self.carried, current_peak_bytes())
