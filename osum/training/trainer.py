"""One training loop for every engine: a single process, DDP under ``torchrun`` (gloo on CPU, nccl on GPU), or
DeepSpeed ZeRO (``train.engine=deepspeed``; see :mod:`osum.training.engines`).

``Trainer.fit`` reads like the recipe: load the start model -> choose what trains -> optimizer and schedule ->
(resume) -> plan batches per epoch -> forward/backward with gradient accumulation and clipping -> log -> save.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from osum.api import Osum, load
from osum.codec import TranscriptCodec
from osum.config import RunConfig, save_yaml
from osum.data.dataset import TrainingData
from osum.data.encoder_cache import fill_cache
from osum.data.sampler import shard_for_rank
from osum.errors import ConfigError
from osum.model.ctc import AuxiliaryCTC, CTCObjective
from osum.model.osum import OsumModel
from osum.runtime import DistInfo, dist_info
from osum.tasks import LABEL_FIELDS, load_prompts
from osum.training.engines import SHARD_DIR, Engine, autocast_dtype, build_engine, import_deepspeed
from osum.training.optim import build_optimizer, build_scheduler, param_groups, set_trainable
from osum.training.state import (
    Position,
    checkpoint_dir,
    latest_checkpoint,
    load_training_state,
    rng_state,
    save_training_state,
    set_rng_state,
)
from osum.training.warm_start import load_encoder_from, load_label_heads_from

log = logging.getLogger(__name__)

RANK_RNG_FILE = "rng_per_rank.pt"  # every rank's RNG state (trainer_state.pt holds rank 0's)
# the CTC pre-stage's own parameters (blank, logit scale) and its scored token ids (objective=ctc only)
CTC_HEAD_FILE = "ctc_head.safetensors"


class Trainer:
    def __init__(self, run: RunConfig, resume: bool = False) -> None:
        self.run, cfg = run, run.train
        self.dist: DistInfo = dist_info()
        self.out = Path(cfg.out_dir)
        self.device = self._setup_device()
        ckpt = latest_checkpoint(self.out) if resume else None
        if resume and ckpt is None:
            log.warning("--resume: no checkpoint in %s yet, starting from %s", self.out, cfg.init)
        self.osum: Osum = load(ckpt or cfg.init, device=self.device, dtype=torch.float32)
        model = self.osum.model
        model.config.trained = True  # what this run saves is a trained model (no "untrained adaptor" notes)
        if (
            cfg.init_encoder and ckpt is None
        ):  # stage 1's encoder starts stage 2 (a resumed run has it already)
            load_encoder_from(model, cfg.init_encoder)
        if cfg.label_tokens:
            self._add_label_tokens(model)
        if cfg.init_label_heads and ckpt is None:
            load_label_heads_from(model, cfg.init_label_heads)
        if run.data.prompts:  # saved with every checkpoint (Osum.save), so inference uses them too
            self.osum.prompts = self.osum.prompts.updated(load_prompts(run.data.prompts))
        codec = self.osum.codec(run.data.prompt_language, run.data.random_prompt)
        transcripts = None  # the CTC loss's targets beside the LM's (train.ctc_aux_weight)
        if cfg.objective == "ctc":
            codec = TranscriptCodec(codec)
        elif cfg.ctc_aux_weight > 0:
            if not isinstance(model, OsumModel):
                raise ConfigError("train.ctc_aux_weight needs an OSUM model (it scores the adaptor's frames)")
            transcripts = TranscriptCodec(codec)
        n_mels = model.config.encoder.n_mels
        pitch = model.config.label_pitch  # the label heads read F0 statistics of the audio
        self.data = TrainingData(
            run.data.train, run.data, codec, n_mels, transcripts, cfg.label_loss_weight, pitch
        )
        self.valid = (
            TrainingData(run.data.valid, run.data, codec, n_mels, transcripts, pitch=pitch)
            if run.data.valid
            else None
        )
        if not 0 <= cfg.stop_at <= cfg.max_steps:
            raise ConfigError(
                f"train.stop_at {cfg.stop_at}: must be between 0 (off) and train.max_steps ({cfg.max_steps})"
            )
        if "task_tokens" in cfg.train_modules and cfg.weight_decay:
            raise ConfigError(
                "train.train_modules has task_tokens: set train.weight_decay=0, or AdamW's decay also moves the "
                "pretrained token rows"
            )
        params = set_trainable(model, cfg.train_modules)
        if run.data.encoder_cache:
            self._fill_encoder_cache(model)
        groups = param_groups(model, params, cfg.lr_scales, cfg.lr)
        self.objective = self._objective(model, ckpt, transcripts)
        if self._ctc is not None:
            head = list(self._ctc.head_parameters().values())
            params += head
            groups.append({"params": head, "lr": cfg.lr})
        if cfg.grad_checkpointing:
            model.encoder.gradient_checkpointing = True
            if isinstance(model, OsumModel):
                model.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
                model.adaptor.gradient_checkpointing = True
        self.optimizer = build_optimizer(groups, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        self.engine: Engine = build_engine(
            self.objective, params, self.optimizer, self.scheduler, cfg, self.device, self.dist
        )
        self.position = Position()
        state = load_training_state(ckpt) if ckpt else None
        if state is not None:
            self.engine.load_optimizer_state(state, ckpt)
            self.position = Position(**state["position"])
            if self.dist.is_main:  # the steps after the checkpoint are trained (and logged) again
                trim_log(self.out / "train_log.jsonl", self.position.step)
            # last: nothing above may draw from the restored streams
            set_rng_state(self._own_rng(state, ckpt))
        else:
            torch.manual_seed(cfg.seed + self.dist.rank)
        self.params = params
        self._log_file = None
        self._tb = None
        self._saved_step = self.position.step

    def _fill_encoder_cache(self, model: torch.nn.Module) -> None:
        """data.encoder_cache: encode every train/valid clip not cached yet (rank 0; the others wait)."""
        if any(p.requires_grad for p in model.encoder.parameters()):
            raise ConfigError(
                "data.encoder_cache needs an encoder that does not train: drop 'encoder' (and encoder.* parts) "
                "from train.train_modules, or the cache"
            )
        if self.dist.is_main:
            clips = [u for data in (self.data, self.valid) if data is not None for u in data.utterances]
            fill_cache(self.data.cache, model.encoder, clips, progress=True)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def _add_label_tokens(self, model: torch.nn.Module) -> None:
        """train.label_tokens: give the init model label tokens when it has none, their class vectors set to the
        LLM's embeddings of the class names (a resumed run or an init that has them keeps its own)."""
        if not isinstance(model, OsumModel):
            raise ConfigError(
                "train.label_tokens: label tokens are read by an LLM; a Whisper (stage-1) model has none"
            )
        if model.label_tokens is not None:
            return
        torch.manual_seed(self.run.train.seed)  # the classifiers' start does not depend on what ran before
        tokens = model.add_label_tokens()
        codec = self.osum.codec(self.run.data.prompt_language, random_prompt=False)
        names = {f: [codec.ids(v) for v in LABEL_FIELDS[f].values] for f in tokens.fields}
        tokens.init_values(model.lm.get_input_embeddings().weight, names)
        log.info(
            "label tokens added to %s (untrained classifiers for %s)", self.run.train.init, ", ".join(names)
        )

    def _objective(
        self, model: torch.nn.Module, ckpt: Path | None, transcripts: TranscriptCodec | None
    ) -> torch.nn.Module:
        """What the engine runs: the model itself (``lm``), the CTC pre-stage around it (``ctc``), or ``lm``
        with the CTC loss beside it (``ctc_aux_weight > 0``, ``transcripts`` the CTC targets' codec)."""
        cfg = self.run.train
        if cfg.objective not in ("lm", "ctc"):
            raise ConfigError(f"train.objective {cfg.objective!r}: choose lm or ctc")
        if cfg.objective == "lm" and transcripts is None:
            return model
        if not isinstance(model, OsumModel):
            raise ConfigError(
                "train.objective=ctc trains an OSUM adaptor; a Whisper (stage-1) model has none"
            )
        if cfg.engine == "deepspeed":
            raise ConfigError(
                "the CTC objectives (train.objective=ctc, train.ctc_aux_weight) run with the single or ddp engine"
            )
        # score only the tokens the transcripts use (train + valid): the output layer is then ~15x cheaper
        vocab = {
            t
            for data in (self.data, self.valid)
            if data is not None
            for t in data.target_vocabulary(transcripts)
        }
        # the head's untrained parts: the same start, whatever ran before in this process
        torch.manual_seed(cfg.seed)
        objective = CTCObjective(
            model, sorted(vocab) or None, cfg.ctc_norm_weight, cfg.ctc_cosine_scale, cfg.ctc_attribute_weight
        ).to(self.device)
        # A resumed run continues its own head. A new run starts from its init's head when that has one (the
        # pre-stage's blank, label classifiers ...); only label classifiers switched on now may be missing from it.
        if ckpt is not None:
            self._load_head(objective, ckpt / CTC_HEAD_FILE, new_run=False)
        elif (Path(cfg.init) / CTC_HEAD_FILE).is_file():
            self._load_head(objective, Path(cfg.init) / CTC_HEAD_FILE, new_run=True)
        elif transcripts is not None:
            log.warning("%s has no %s: the auxiliary CTC head starts untrained", cfg.init, CTC_HEAD_FILE)
        return objective if transcripts is None else AuxiliaryCTC(objective, cfg.ctc_aux_weight)

    @staticmethod
    def _load_head(objective: CTCObjective, head: Path, new_run: bool) -> None:
        """Set the CTC head's own parameters from a head file. Every one must be there, except, for a ``new_run``,
        the label classifiers (``ctc_attribute_weight`` switched on after the run that wrote the file): those are
        named and start untrained."""
        if not head.is_file():
            raise ConfigError(f"{head} is missing: a CTC run's checkpoint has one")
        saved = load_file(head)
        own = objective.head_parameters()
        missing = sorted(set(own) - set(saved))
        fresh = [n for n in missing if n.startswith("attribute_heads.")] if new_run else []
        if len(fresh) < len(missing):
            raise ConfigError(
                f"{head} has no {', '.join(n for n in missing if n not in fresh)}: it was saved with other "
                "train.ctc_* settings than this run's"
            )
        if fresh:
            log.info("%s has no %s: they start untrained", head, ", ".join(fresh))
        for name, param in own.items():
            if name in fresh:
                continue
            if param.shape != saved[name].shape:
                raise ConfigError(
                    f"{head}: {name} has shape {tuple(saved[name].shape)}, this run's {tuple(param.shape)}"
                )
            param.data.copy_(saved[name])

    @property
    def _ctc(self) -> CTCObjective | None:
        """The CTC objective whose head this run trains and saves (the pre-stage, or the auxiliary loss's)."""
        if isinstance(self.objective, AuxiliaryCTC):
            return self.objective.ctc
        return self.objective if isinstance(self.objective, CTCObjective) else None

    def _own_rng(self, state: dict, ckpt: Path) -> dict:
        """This rank's RNG state from a checkpoint: each rank draws its own dropout masks."""
        if not self.dist.distributed:
            return state["rng"]
        path = ckpt / RANK_RNG_FILE
        states = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else []
        if len(states) != self.dist.world_size:
            log.warning(
                "%s: no RNG states for %d ranks; all ranks continue from rank 0's (not bit-exact)",
                ckpt,
                self.dist.world_size,
            )
            return state["rng"]
        return states[self.dist.rank]

    def _setup_device(self) -> torch.device:
        cfg = self.run.train
        if cfg.engine not in ("auto", "single", "ddp", "deepspeed"):
            raise ConfigError(f"train.engine {cfg.engine!r}: choose auto, single, ddp or deepspeed")
        if cfg.engine == "deepspeed":
            import_deepspeed()  # a missing install fails now, before the model is loaded
        if cfg.engine == "ddp" and not self.dist.distributed:
            raise ConfigError(
                "train.engine=ddp needs several processes: launch with torchrun --nproc_per_node N"
            )
        cuda = torch.cuda.is_available()
        device = torch.device("cuda", self.dist.local_rank) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        autocast_dtype(cfg.precision, device)  # a bad name fails now, not at the first batch
        backend = "nccl" if cuda else "gloo"
        if not torch.distributed.is_initialized():
            if self.dist.distributed:
                torch.distributed.init_process_group(backend)
            elif cfg.engine == "deepspeed":  # DeepSpeed wants a process group and a launcher's variables
                try:
                    torch.distributed.init_process_group(backend)
                except ValueError:
                    raise ConfigError(
                        "train.engine=deepspeed needs a launcher, also for one process: "
                        "torchrun --nproc_per_node N (N may be 1) or the deepspeed launcher"
                    ) from None
        return device

    # ------------------------------------------------------------------------------------------------ loop

    def _loader(self, epoch: int, start: int) -> torch.utils.data.DataLoader:
        batches = shard_for_rank(self.data.plan(epoch), self.dist.rank, self.dist.world_size)
        subset = self.data.batch_set(batches[start:], epoch)
        # An explicit generator keeps the DataLoader from drawing on the global RNG (dropout's), so a resumed
        # run's random stream is exactly the uninterrupted run's.
        return torch.utils.data.DataLoader(
            subset,
            batch_size=None,
            shuffle=False,
            num_workers=self.run.data.num_workers,
            generator=torch.Generator().manual_seed(epoch),
            persistent_workers=False,
        )

    def fit(self) -> Position:
        cfg, pos = self.run.train, self.position
        model = self.objective.train()
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_yaml(self.run, self.out / "run.yaml")
        bar = self._progress(pos.step)
        micro, t0, window = 0, time.time(), {"loss": 0.0, "n": 0, "audio_s": 0.0, "utts": 0, "skipped": 0}
        engine = self.engine
        end = cfg.last_step
        while pos.step < end and pos.epoch < cfg.max_epochs:
            for batch, bad in self._loader(pos.epoch, pos.batch):
                batch = batch.to(self.device) if batch is not None else None
                micro += 1
                sync = micro % cfg.grad_accum == 0
                with engine.accumulating(sync):
                    loss = engine.forward(batch)
                    engine.backward(loss)
                pos.batch += 1
                window["loss"] += loss.item()
                window["n"] += 1
                window["skipped"] += bad
                if batch is not None:
                    window["audio_s"] += float(batch.feat_lengths.sum()) / 100
                    window["utts"] += batch.feat_lengths.shape[0]
                if not sync:
                    continue
                grad_norm = engine.step()
                pos.step += 1
                if pos.step % cfg.log_every == 0 or pos.step == end:
                    self._log(pos, window, float(grad_norm), time.time() - t0, bar)
                    window, t0 = {"loss": 0.0, "n": 0, "audio_s": 0.0, "utts": 0, "skipped": 0}, time.time()
                if cfg.valid_every and pos.step % cfg.valid_every == 0:
                    self.validate()
                if pos.step % cfg.save_every == 0 or pos.step == end:
                    if not cfg.valid_every:
                        self.validate()
                    self.save()
                if pos.step >= end:
                    break
            else:
                pos.epoch, pos.batch = pos.epoch + 1, 0
                continue
            break
        if self._saved_step != pos.step:  # stopped by max_epochs between checkpoints
            self.save()
        if bar is not None:
            bar.close()
        if self._tb:
            self._tb.close()
        model.eval()
        return pos

    def close(self) -> None:
        """Drop the training engine, which holds the process group (DDP's reducer, DeepSpeed), so that
        ``destroy_process_group`` frees the group while the interpreter is alive. A group still referenced at
        interpreter exit is torn down during finalization, where gloo's threads can abort the process
        ("terminate called without an active exception") after a run that succeeded. The trained weights stay
        in ``self.osum``/``self.params``; ``fit`` cannot be called again."""
        self.engine = None  # type: ignore[assignment]
        gc.collect()

    # ----------------------------------------------------------------------------------------- side jobs

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean loss over the validation manifests (no SpecAugment), logged as ``valid_loss`` by rank 0.

        Other ranks take part only when a forward pass needs them all (ZeRO-3). The RNG state is saved and
        restored around it, so validating never changes the training run.
        """
        if self.valid is None or not (self.dist.is_main or self.engine.collective_forward):
            return None
        rng, model = rng_state(), self.objective
        model.eval()
        total, label_total, n = 0.0, 0.0, 0
        for batch, _ in self.valid.batch_set(self.valid.plan(0), epoch=0, train=False):
            if batch is None:
                continue
            with self.engine.autocast():
                out = model(batch.to(self.device), full_logits=False)
            # the LM part alone (curves of runs with and without auxiliary losses compare); for the CTC pre-stage,
            # its loss without the label tokens' classifiers
            lm_loss = getattr(out, "lm_loss", None)
            label_loss = getattr(out, "label_loss", None)
            main = out.loss if lm_loss is None else lm_loss
            if lm_loss is None and label_loss is not None:
                main = main - label_loss
            total += main.item()
            label_total += 0.0 if label_loss is None else label_loss.item()
            n += 1
        model.train()
        set_rng_state(rng)
        loss = total / max(n, 1)
        if not self.dist.is_main:
            return None
        record = {"step": self.position.step, "valid_loss": loss, "valid_batches": n, "time": time.time()}
        if label_total:  # the label tokens' classifiers (not in valid_loss, which stays the LM loss)
            record["valid_label_loss"] = label_total / max(n, 1)
        self._write(record)
        return loss

    def _write(self, record: dict) -> None:
        if self._log_file is None:
            self._log_file = open(self.out / "train_log.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._log_file.write(json.dumps(record) + "\n")
        self._log_file.flush()

    def save(self) -> Path | None:
        """Checkpoint: full float32 weights + trainer state from rank 0; all ranks wait for it.

        A sharded engine (DeepSpeed) first writes its partitioned state from every rank into a staging folder,
        which rank 0 moves into the step directory before that is renamed into place, so the checkpoint stays
        all-or-nothing.
        """
        path = None
        self._saved_step = self.position.step
        final = checkpoint_dir(self.out, self.position.step)
        staging = final.with_name(final.name + ".shards")  # not matched by latest_checkpoint's pattern
        if self.engine.sharded:
            if self.dist.is_main:
                shutil.rmtree(staging, ignore_errors=True)
            self._barrier()
            self.engine.save_shards(staging)
            self._barrier()
        weights = self.engine.full_state_dict()  # collective for ZeRO-3; None: the live model is complete
        rngs = [None] * self.dist.world_size
        if self.dist.distributed:
            torch.distributed.all_gather_object(rngs, rng_state())

        def write(folder: Path) -> None:
            if weights is None:
                self.osum.save(folder)
            else:
                self._save_weights(weights, folder)
            if self.engine.sharded:
                shutil.move(staging, folder / SHARD_DIR)
            ctc = self._ctc
            if ctc is not None:
                head = {n: p.detach().cpu().contiguous() for n, p in ctc.head_parameters().items()}
                head["vocab"] = ctc.vocab.cpu()
                head["cosine_scale"] = torch.tensor(float(ctc.cosine_scale))  # 0: dot product
                save_file(head, folder / CTC_HEAD_FILE)
            if self.dist.distributed:
                torch.save(rngs, folder / RANK_RNG_FILE)

        if self.dist.is_main:
            path = save_training_state(
                self.out, self.position, write, *self.engine.optimizer_state(), self.run.train.keep_last
            )
        self._barrier()
        return path

    def _save_weights(self, weights: dict[str, torch.Tensor], folder: Path) -> None:
        """Write gathered weights as an ordinary osum checkpoint, through a model built on the meta device."""
        source = self.osum.model
        with torch.device("meta"):
            model = type(source)(source.config)
        model.load_state_dict(weights, strict=True, assign=True)
        Osum(model, self.osum.tokenizer, self.osum.prompts).save(folder)

    def _barrier(self) -> None:
        if torch.distributed.is_initialized():
            torch.distributed.barrier()

    def _progress(self, initial: int):
        if not self.dist.is_main:
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.run.train.last_step,
            initial=initial,
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )

    def _log(self, pos: Position, window: dict, grad_norm: float, seconds: float, bar) -> None:
        if not self.dist.is_main:
            return
        n = max(window["n"], 1)
        record = {
            "step": pos.step,
            "epoch": pos.epoch,
            "loss": window["loss"] / n,
            "lr": self.engine.lr(),
            "grad_norm": grad_norm if math.isfinite(grad_norm) else None,
            "audio_seconds_per_second": window["audio_s"] * self.dist.world_size / max(seconds, 1e-9),
            "utterances_per_second": window["utts"] * self.dist.world_size / max(seconds, 1e-9),
            "seconds_per_step": seconds / max(window["n"] / self.run.train.grad_accum, 1e-9),
            "skipped_utterances": window["skipped"],
            "time": time.time(),
        }
        self._write(record)
        self._tensorboard(record)
        if bar is not None:
            bar.n = pos.step
            bar.set_postfix(
                loss=f"{record['loss']:.3f}",
                lr=f"{record['lr']:.2e}",
                audio_x=f"{record['audio_seconds_per_second']:.1f}",
            )
            bar.refresh()

    def _tensorboard(self, record: dict) -> None:
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional: JSONL logs are always written
                self._tb = False
                log.warning("tensorboard is not installed; logging to train_log.jsonl only")
                return
            self._tb = SummaryWriter(str(self.out / "tensorboard"))
        if self._tb:
            for key in ("loss", "lr", "grad_norm", "audio_seconds_per_second"):
                if record[key] is not None:
                    self._tb.add_scalar(f"train/{key}", record[key], record["step"])


def trim_log(path: Path, step: int) -> int:
    """Drop the records of ``train_log.jsonl`` after ``step`` (a resumed run trains those steps again) and a line
    torn by a kill -> how many records were dropped."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] > step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        tmp.replace(path)
    return dropped
