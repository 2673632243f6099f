"""Peak RSS per window (a CLI stage) survives a reset inside it (the training loop's), and the
run summary's memory line compares the first and last partitions' peaks."""

import subprocess
import sys
import textwrap

from em_assets.cli import StageResult, memory_line

MIB = 2**20


def test_a_stage_keeps_its_peak_across_an_inner_reset():
    # In a fresh process: 300 MiB held and freed before the inner (training) window resets the
    # kernel's peak; the outer window must still report it, the inner one must not.
    script = textwrap.dedent(
        """
        from em_assets.process_memory import PeakWindow
        with PeakWindow() as stage:
            block = bytearray(300 * 2**20)
            block[:: 4096] = b"x" * len(block[:: 4096])
            del block
            with PeakWindow() as training:
                small = bytearray(20 * 2**20)
                small[:: 4096] = b"y" * len(small[:: 4096])
        print(stage.peak_bytes, training.peak_bytes)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    stage, training = (int(x) for x in out.split())
    assert stage >= training + 250 * MIB, (stage / MIB, training / MIB)
    assert training < 250 * MIB


def stage(name, peak_mib, partition=True):
    return StageResult(name, "run", True, 1.0, [], peak_mib * MIB, partition)


def test_memory_line_reports_growth_from_the_first_partition_to_the_last():
    stages = [
        stage("data layer", 900, partition=False),
        stage("m | base", 2000),
        stage("m | insecure", 2100),
        stage("m | educational", 2300),
        stage("summary", 400, partition=False),
    ]
    assert memory_line(stages) == (
        "peak RSS 2,300 MiB (m | educational); partitions: first 2,000 MiB (m | base), "
        "last 2,300 MiB (m | educational), +15.0%"
    )
    assert memory_line(stages[:2]) == "peak RSS 2,000 MiB (m | base)"
