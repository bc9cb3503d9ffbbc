"""Micro-batching: single images from concurrent requests run together in one inference thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Collects single images from concurrent requests into batches for one inference thread.

    Example:
        >>> batcher = MicroBatcher(lambda images: np.zeros((len(images), 2)), max_batch=8, wait_ms=2)
    """

    def __init__(self, infer: Callable[[list[Any]], np.ndarray], max_batch: int = 32, wait_ms: float = 5.0) -> None:
        self.infer = infer
        self.max_batch = max(1, int(max_batch))
        self.wait = max(0.0, wait_ms) / 1000
        self.queue: asyncio.Queue | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transferlab-infer")
        self.batches: list[int] = []  # sizes of the batches run (for tests and statistics)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, images: list[Any]) -> np.ndarray:
        """Probabilities [len(images), C] of these images, computed with whatever else is waiting."""
        assert self.queue is not None, "MicroBatcher.start() was not awaited"
        loop = asyncio.get_running_loop()
        futures = []
        for image in images:
            future = loop.create_future()
            await self.queue.put((image, future))
            futures.append(future)
        return np.stack(await asyncio.gather(*futures))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.wait
            while len(batch) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0 and self.queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), max(remaining, 0)) if remaining > 0
                                 else self.queue.get_nowait())
                except (TimeoutError, asyncio.QueueEmpty):
                    break
            live = [(image, future) for image, future in batch if not future.cancelled()]
            if not live:
                continue
            self.batches.append(len(live))
            try:
                probs = await loop.run_in_executor(self.executor, self.infer, [image for image, _ in live])
            except Exception as e:  # noqa: BLE001 - handed to the waiting requests
                for _, future in live:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), row in zip(live, probs):
                if not future.done():
                    future.set_result(row)
