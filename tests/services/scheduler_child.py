"""A scheduler in a process of its own, for tests/services/test_scheduler.py's SIGKILL test.

    python -m tests.services.scheduler_child STORE_URL FOLDER [POSTGRESQL_SCHEMA]

Its clock is the integer (epoch ms) in FOLDER/clock, so the test moves time; its one job kind,
`effect`, appends the tick to FOLDER/effects and then, for the tick named in FOLDER/hang, hangs
(the test kills the process there: the effect happened, the tick is claimed and not finished).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from coinwire.auth.abilities import Principal
from coinwire.services.scheduler import Job, Scheduler
from coinwire.store import Store


class Effect:
    name = "effect"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def check(self, params: dict[str, Any], user: Principal) -> dict[str, Any]:
        return {}

    async def run(self, job: Job, tick_ms: int) -> None:
        fd = os.open(self.folder / "effects", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{tick_ms}\n".encode())
        finally:
            os.close(fd)
        hang = self.folder / "hang"
        if hang.exists() and hang.read_text().strip() == str(tick_ms):
            await asyncio.sleep(3600)


async def main(url: str, folder: Path, schema: str | None) -> None:
    def clock() -> int:
        return int((folder / "clock").read_text())

    async with Store(url, schema=schema) as store:
        scheduler = Scheduler(store, {"effect": Effect(folder)}, clock, record_rates=False, max_wait=0.02)
        await scheduler.start()
        (folder / f"ready-{os.getpid()}").touch()
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
