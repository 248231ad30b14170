"""The emulator's clock: simulated minutes that run at a fixed speed, or only when told.

Every request reads the clock once and the engine is run up to that minute, so a manual
clock makes the emulator exactly reproducible: nothing moves between two requests.
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone
from typing import Callable


class Clock:
    """Simulated minutes since the emulator started, anchored to a wall-clock `epoch` so that
    ARM timestamps (`timeCreated`, `startTime`) read naturally."""

    manual = False

    def __init__(self, epoch: datetime | None = None):
        self.epoch = epoch or datetime.now(timezone.utc).replace(microsecond=0)

    def now(self) -> float:
        raise NotImplementedError

    def timestamp(self, minute: float) -> str:
        return (self.epoch + timedelta(minutes=minute)).isoformat()

    @property
    def retry_after_s(self) -> int | None:
        """What to put in `Retry-After`: None leaves the client's own polling interval."""
        return None


class SpeedClock(Clock):
    """`speed` simulated minutes per real second (`--speed`, default 60)."""

    def __init__(self, speed: float = 60.0, timer: Callable[[], float] = time.monotonic,
                 epoch: datetime | None = None):
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a finite number > 0, got {speed}")
        super().__init__(epoch)
        self.speed, self._timer, self._start = speed, timer, timer()

    def now(self) -> float:
        return (self._timer() - self._start) * self.speed

    @property
    def retry_after_s(self) -> int:
        return 1  # the shortest whole second: `speed` simulated minutes


class ManualClock(Clock):
    """Moves only on `advance` (`POST /_emulator/advance?minutes=M`): exact, fast tests."""

    manual = True

    def __init__(self, epoch: datetime | None = None):
        super().__init__(epoch)
        self._now = 0.0

    def now(self) -> float:
        return self._now

    def advance(self, minutes: float) -> float:
        if not (math.isfinite(minutes) and minutes >= 0):
            raise ValueError(f"minutes must be a finite number >= 0, got {minutes}")
        self._now += minutes
        return self._now
