"""The batching worker with a real (tiny, random) model: batches form, answers do not change, failures stay with
their own request, cancelled jobs are skipped, and the queue is bounded."""

from __future__ import annotations

import pytest
import torch

import osum
from osum.api import Query
from osum.errors import TaskError
from osum.inference.decoding import DecodingOptions
from osum.serving.worker import BatchWorker, Job, QueueFull

OPTIONS = DecodingOptions(max_new_tokens=6)


@pytest.fixture(scope="module")
def model() -> osum.Osum:
    return osum.load("tiny", device="cpu")


def clip(seconds: float, seed: int) -> torch.Tensor:
    return 0.1 * torch.randn(int(16000 * seconds), generator=torch.Generator().manual_seed(seed))


def test_concurrent_jobs_are_batched_without_changing_answers(model):
    jobs = [Job([Query(clip(1 + 0.3 * i, i), "asr"), Query(clip(1 + 0.3 * i, i), "sgc")]) for i in range(5)]
    alone = [model.answer(j.queries, OPTIONS) for j in jobs]
    batches = []
    worker = BatchWorker(
        model, OPTIONS, max_batch_size=8, max_wait=0.5, on_batch=lambda *b: batches.append(b)
    )
    for job in jobs:  # queued before the worker starts: the first batch takes as many as fit
        worker.submit(job)
    worker.start()
    try:
        answers = [job.future.result(timeout=120) for job in jobs]
    finally:
        worker.stop()
    assert [[r.raw for r in a] for a in answers] == [[r.raw for r in a] for a in alone]
    assert batches == [(4, 8), (1, 2)]


def test_a_failing_request_does_not_fail_its_batch(model):
    good = Job([Query(clip(1.0, 1), "asr")])
    bad = Job([Query(clip(1.0, 2), "no-such-task")])
    worker = BatchWorker(model, OPTIONS, max_batch_size=8, max_wait=0.5)
    worker.submit(good)
    worker.submit(bad)
    worker.start()
    try:
        assert good.future.result(timeout=120)[0].task == "asr"
        with pytest.raises(TaskError, match="no-such-task"):
            bad.future.result(timeout=120)
    finally:
        worker.stop()


def test_cancelled_jobs_are_skipped_and_the_queue_is_bounded(model):
    seen = []
    worker = BatchWorker(
        model, OPTIONS, max_batch_size=8, max_wait=0.0, max_queue=2, on_batch=lambda *b: seen.append(b)
    )
    gave_up = Job([Query(clip(1.0, 3), "asr")] * 3)
    kept = Job([Query(clip(1.0, 4), "asr")])
    worker.submit(gave_up)
    worker.submit(kept)
    with pytest.raises(QueueFull, match="holds 2 requests"):
        worker.submit(Job([Query(clip(1.0, 5), "asr")]))
    assert worker.depth == 2
    gave_up.future.cancel()
    worker.start()
    try:
        kept.future.result(timeout=120)
    finally:
        worker.stop()
    assert seen == [(1, 1)]  # the cancelled job's three queries were never decoded


def test_stop_fails_what_is_still_queued(model):
    worker = BatchWorker(model, OPTIONS)
    job = Job([Query(clip(1.0, 6), "asr")])
    worker.submit(job)
    worker.start()
    worker.stop()
    # either the worker answered it before stopping, or it was failed: never left hanging
    assert job.future.done()
    with pytest.raises(RuntimeError, match="stopped"):
        worker.submit(Job([Query(clip(1.0, 7), "asr")]))
