"""Time budget of a tiled job: refuse at once what cannot finish, stop cleanly what turns out
slower than estimated, never be killed by the function's timeout.

Pure logic: the caller supplies the milliseconds the function has left (the Lambda
context's `get_remaining_time_in_millis`; local mode's runtime gives the same) and what
the job measured so far.

The cost of a frame (a tile or the whole-image pass; each is inferred at imgsz) grows with
the model-input pixels, imgsz squared. Before the first tiled job of a process the estimate
uses `DEFAULT_MS_PER_INPUT_MEGAPIXEL`, measured on one vCPU (what the default 1769 MB
function has) with the demo model; after it, the rate that job measured (`TileCost`), so a
larger model or a slower CPU calibrates the estimate of the next job. During a job, the
projection uses the rate measured so far in that job.
"""

from __future__ import annotations

from dataclasses import dataclass

from segjob_core.errors import InvalidParams, TimeBudgetExceeded

# Inference + postprocess of one frame per megapixel of model input (imgsz squared), in
# batches, with one thread: 400 is ~41 ms a tile at 320 px. Measured with the demo model on
# one core of the development machine (bench/segment_bench.py's mixed scene, 40 tiles of
# 640 px + the whole-image pass, `TileCost` after the job): 714-760 under a load average of
# 4-5 on 2 cores, about half of that idle. Optimistic on purpose: the up-front check refuses
# only what clearly cannot finish; the check after each batch, with measured times, stops
# what turns out slower.
DEFAULT_MS_PER_INPUT_MEGAPIXEL = 400.0
# Kept back for what follows the tiles: the merge, the annotated image (drawn, encoded and
# uploaded at full size) and result.json; a fixed part and a part per frame megapixel.
FINISH_MS = 2_000.0
FINISH_MS_PER_FRAME_MEGAPIXEL = 60.0


def frame_ms(imgsz: int, ms_per_input_megapixel: float) -> float:
    """Estimated milliseconds of one frame inferred at imgsz."""
    return ms_per_input_megapixel * imgsz * imgsz / 1e6


def finish_ms(frame_pixels: int) -> float:
    """Milliseconds kept back for merging, annotating and writing the results."""
    return FINISH_MS + FINISH_MS_PER_FRAME_MEGAPIXEL * frame_pixels / 1e6


class TileCost:
    """The per-process calibration: ms per input megapixel, the default until a tiled job
    measured its own.

    A rate measured at one imgsz is trusted at that imgsz only: the cost per input pixel
    grows with the frame, so a rate from small frames waved through a job of large ones that
    could not finish (seen in a CI run: after jobs of 256 px tiles, 225 tiles at imgsz 2048
    started, then measured 588 ms a frame and stopped with TimeBudgetExceeded). At another
    imgsz the estimate takes the default or the measured rate, whichever is higher (a slower
    CPU or a larger model shows at every size)."""

    def __init__(self, ms_per_input_megapixel: float = DEFAULT_MS_PER_INPUT_MEGAPIXEL) -> None:
        self.ms_per_input_megapixel = ms_per_input_megapixel
        self.measured_at: int | None = None  # the imgsz of the rate; None: any (given, not measured)

    def record(self, frames: int, elapsed_ms: float, imgsz: int) -> None:
        """A job inferred `frames` frames at imgsz in `elapsed_ms`: the next estimate uses this rate."""
        if frames > 0 and elapsed_ms > 0:
            self.ms_per_input_megapixel = elapsed_ms / frames / (imgsz * imgsz / 1e6)
            self.measured_at = imgsz

    def rate(self, imgsz: int) -> float:
        """Ms per input megapixel to estimate a job at imgsz with."""
        if self.measured_at in (None, imgsz):
            return self.ms_per_input_megapixel
        return max(self.ms_per_input_megapixel, DEFAULT_MS_PER_INPUT_MEGAPIXEL)


@dataclass(frozen=True)
class TimeBudget:
    """One tiled job's plan: `frames` to infer at `imgsz` in a frame of `frame_pixels`."""

    frames: int
    imgsz: int
    frame_pixels: int

    def estimate_ms(self, ms_per_input_megapixel: float) -> float:
        """Estimated milliseconds from the first frame to the written results."""
        return self.frames * frame_ms(self.imgsz, ms_per_input_megapixel) + finish_ms(self.frame_pixels)

    def check_start(self, remaining_ms: float | None, ms_per_input_megapixel: float) -> None:
        """InvalidParams, naming the estimate, when the job cannot finish in `remaining_ms`
        (None: no deadline known, nothing to check)."""
        if remaining_ms is None:
            return
        estimate = self.estimate_ms(ms_per_input_megapixel)
        if estimate > remaining_ms:
            raise InvalidParams(
                f"{self.frames - 1} tiles (+ the whole-image pass) at imgsz {self.imgsz} are estimated to take "
                f"{estimate / 1000:.1f} s (~{frame_ms(self.imgsz, ms_per_input_megapixel):.0f} ms a frame), "
                f"but the function has {remaining_ms / 1000:.1f} s left: use larger tiles, less overlap, a smaller "
                f"imgsz, or a longer SegmentTimeout"
            )

    def check_progress(self, done: int, elapsed_ms: float, remaining_ms: float | None) -> None:
        """After `done` frames in `elapsed_ms`: TimeBudgetExceeded when the rest, at the rate
        measured so far, would not finish in `remaining_ms` (stop now, cleanly, not at the
        timeout)."""
        if remaining_ms is None or done <= 0 or done >= self.frames:
            return
        per_frame = elapsed_ms / done
        needed = (self.frames - done) * per_frame + finish_ms(self.frame_pixels)
        if needed > remaining_ms:
            raise TimeBudgetExceeded(
                f"stopped after {done - 1} of {self.frames - 1} tiles: the rest needs about {needed / 1000:.1f} s "
                f"at the measured {per_frame:.0f} ms a frame, but the function has {remaining_ms / 1000:.1f} s "
                f"left; use larger tiles, a smaller imgsz, or a longer SegmentTimeout"
            )
