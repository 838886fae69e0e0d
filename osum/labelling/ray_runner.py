"""``osum label --ray [ADDRESS]``: the same labelling on a Ray cluster (optional extra ``osum[ray]``).

Ray Data runs three stages: the driver lists the clips still to label (input order, recorded ones skipped), tasks
decode their audio (:func:`_decode`), and a pool of actors, each holding one model (one GPU each when the cluster
has GPUs, else ``cpus_per_worker`` CPU threads), answers every task for a batch of clips (:class:`Labeller`). The
driver receives the records in input order and appends them to the same records file as a single process does
(flushed and synced per batch), so ``--resume`` and the record format are the same.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from osum.data.manifest import Utterance
from osum.errors import OsumError
from osum.inference.decoding import DecodingOptions
from osum.labelling.records import RecordFile, Summary, model_info
from osum.labelling.runner import PendingClips, answer_clips, read_clip

MAX_BLOCKS = 4096  # input partitions: one per actor call, up to this many


def import_ray():
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise OsumError("osum label --ray needs Ray: pip install 'osum[ray]'") from None
    return ray


def start_ray(address: str | None, cpus: int | None = None):
    """Connect to the cluster at ``address`` ("auto": the one this machine belongs to), or start a local Ray
    instance when ``address`` is None or "local" (``cpus``: its CPU count, default all) -> the ray module."""
    ray = import_ray()
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our progress bar reports; Ray's would repeat it
    ray.data.DataContext.get_current().enable_progress_bars = False
    if not ray.is_initialized():
        if address in (None, "local"):
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


def _decode(batch: dict[str, np.ndarray], max_seconds: float | None) -> dict[str, Any]:
    """Ray task: each clip's audio as float32 16 kHz samples (bytes), or its read error."""
    waves, errors = [], []
    for blob in batch["utterance"]:
        got = read_clip(pickle.loads(blob), max_seconds)
        waves.append(b"" if isinstance(got, str) else got.numpy().astype(np.float32).tobytes())
        errors.append(got if isinstance(got, str) else "")
    return {"index": batch["index"], "utterance": batch["utterance"], "wave": waves, "error": errors}


class Labeller:
    """Ray actor: one model; a batch of decoded clips -> their records (JSON-ready dicts, pickled). Records name
    the model as the worker loaded it (:func:`osum.labelling.records.model_info`)."""

    def __init__(
        self,
        model: str,
        dtype: str | None,
        tasks: Sequence[str],
        options: DecodingOptions,
        threads: int,
    ) -> None:
        import torch

        import osum

        torch.set_num_threads(max(1, threads))
        # Ray shows an actor only the GPU it was given
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = osum.load(model, device=device, dtype=dtype)
        self.tasks, self.options = list(tasks), options
        self.info = model_info(self.model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        clips = [
            (
                pickle.loads(u),
                str(error) if error else torch.from_numpy(np.frombuffer(blob, np.float32).copy()),
            )
            for u, blob, error in zip(batch["utterance"], batch["wave"], batch["error"], strict=True)
        ]
        records = answer_clips(self.model, clips, self.tasks, self.options, self.info)
        return {"index": batch["index"], "record": [pickle.dumps(r) for r in records]}


def label_with_ray(
    ray: Any,
    model: str,
    dtype: str | None,
    clips: Iterable[Utterance],
    tasks: Sequence[str],
    options: DecodingOptions,
    sink: RecordFile,
    *,
    max_seconds: float | None,
    workers: int,
    cpus_per_worker: int = 1,
    gpus_per_worker: float = 0.0,
    limit: int | None = None,
    chunk: int = 32,
    on_chunk: Callable[[Summary, int], None] | None = None,
) -> Summary:
    """Label every clip of ``clips`` not in ``sink.done`` on Ray and append the records in input order -> the
    summary. ``model``: a preset or a checkpoint path every worker can read; ``workers``: actors, each with
    ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs; ``chunk``: clips per actor call (and per append)."""
    if workers < 1:
        raise OsumError(f"--workers must be at least 1, got {workers}")
    summary = Summary()
    start = time.monotonic()
    todo = PendingClips(clips, sink.done, limit)
    rows = [{"index": index, "utterance": pickle.dumps(u)} for index, u in todo]
    summary.resumed = todo.resumed
    if not rows:
        return summary
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # records arrive in input order, as in one process
    # every worker gets clips, even from a short input
    per_call = max(1, min(chunk, -(-len(rows) // workers)))
    blocks = min(-(-len(rows) // per_call), MAX_BLOCKS)
    dataset = (
        ray.data.from_items(rows, override_num_blocks=blocks)
        .map_batches(_decode, fn_kwargs={"max_seconds": max_seconds}, batch_size=per_call, num_cpus=0)
        .map_batches(
            Labeller,
            fn_constructor_args=(model, dtype, list(tasks), options, cpus_per_worker),
            batch_size=per_call,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus_per_worker,
            num_gpus=gpus_per_worker,
        )
    )
    done = 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
        records = [pickle.loads(r) for r in batch["record"]]
        sink.write(records)
        for r in records:
            summary.add(r)
        done += len(records)
        summary.wall_seconds = time.monotonic() - start
        if on_chunk is not None:
            on_chunk(summary, todo.seen - len(rows) + done)
    summary.wall_seconds = time.monotonic() - start
    return summary
