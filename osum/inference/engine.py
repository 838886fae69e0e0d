"""The inference engine: every answer of every entry point (``Osum.run``/``answer``, ``osum infer``, ``osum eval``,
``osum serve``) is planned and produced here.

Dimension legend: N samples at 16 kHz, T mel frames, T1 encoder frames, B clips in a batch.

A request is a list of :class:`Query` (clip x task x prompt). The engine

1. checks every task and prompt before any audio is touched (unknown task, empty or over-long prompt);
2. plans each clip once (:mod:`osum.inference.vad`, :mod:`osum.inference.long_audio`): where its speech is, the
   pieces a long clip is cut into at pauses, whether it holds speech at all (the no-speech guard);
3. answers the pieces with the model's way of answering, each clip's features and encoder pass shared by all its
   tasks, in length-sorted batches:

   - an osum model (Whisper encoder -> adaptor -> LLM): greedy/beam/sampled generation, then every label value
     scored given the transcript (:mod:`osum.inference.labels`);
   - an osum model with a transcriber (``sources.transcriber``): one Whisper decode per clip gives the transcript,
     the LLM writes what follows it (:mod:`osum.inference.transcriber`);
   - a stage-1 Whisper with label heads: one decode and one read of the heads per clip;

   with the guards of :mod:`osum.inference.guards` (loops, a token cap by the audio's length);
4. stitches a cut clip's answers into one in its own time, keeps word times inside the clip and out of pauses, and
   attaches the scores (``no_speech_prob``, ``avg_logprob``, ``compression_ratio``, ``label_probs``).

A padded batch gives the same answers as each clip alone, and planning never changes a clip that fits the window
and holds speech: it is decoded whole, as the original OSUM decodes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from transformers import PreTrainedTokenizerBase

from osum.codec import LLMCodec, WhisperCodec
from osum.config import ModelConfig
from osum.data.audio import SAMPLE_RATE, log_mel_spectrogram
from osum.data.collate import collate, pad_frames
from osum.data.pitch import pitch_features
from osum.errors import ConfigError, TaskError
from osum.inference.decoding import DecodingOptions, generate
from osum.inference.guards import loop_start, token_cap
from osum.inference.labels import LabelAnswer, LabelQuery, score_labels, thresholded
from osum.inference.long_audio import Piece, compression_ratio, fit_to_speech, plan_pieces, stitch, tidy_words
from osum.inference.transcriber import (
    MEL_FRAMES_PER_SECOND,
    Transcriber,
    Transcription,
    answer_after,
    answer_prefix,
)
from osum.inference.vad import default_detector
from osum.inference.word_times import word_times
from osum.model.osum import OsumModel
from osum.model.whisper_tasks import WhisperTaskModel
from osum.tasks import LABEL_FIELDS, PromptTable, Task, TaskResult, get_task
from osum.tasks.base import Word, normalize_text
from osum.tasks.srwt import format_words
from osum.vocabulary import VOCAL_ANSWER_FIELDS

_T = TypeVar("_T")


@dataclass(frozen=True)
class Query:
    """One question about one clip: a 16 kHz mono waveform ``(N,)`` (see ``load_audio``), a task and an optional
    instruction that replaces the task's prompt (the task then only says how to parse the answer)."""

    audio: torch.Tensor
    task: str | Task = "asr"
    prompt: str | None = None


class Engine:
    """Answers :class:`Query` lists with one model, its tokenizer and prompt sets (see the module docstring)."""

    def __init__(
        self,
        model: OsumModel | WhisperTaskModel,
        tokenizer: PreTrainedTokenizerBase,
        prompts: PromptTable,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.prompts = prompts
        self._transcriber: Transcriber | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.encoder.conv1.weight.device

    @property
    def transcriber(self) -> Transcriber | None:
        """The frozen Whisper that writes the transcripts (``sources.transcriber``; not in OSUM), built on first
        use: a model loaded for training never builds it."""
        source = self.config.sources.transcriber if isinstance(self.model, OsumModel) else ""
        if source and self._transcriber is None:
            self._transcriber = Transcriber.build(source, self.model.encoder)  # type: ignore[union-attr]
        return self._transcriber

    def codec(self, language: str | None = None, random_prompt: bool = True) -> LLMCodec | WhisperCodec:
        """How this model's prompts and targets become token ids (``language`` defaults to the model's own)."""
        if self.config.architecture == "whisper":
            d = self.config.decoder
            return WhisperCodec(self.tokenizer, d.eot_token_id, d.label_heads)
        return LLMCodec(
            self.tokenizer,
            self.prompts,
            self.config.llm.eos_token_id,
            language or self.config.prompt_language,
            random_prompt,
        )

    def task(self, name: str | Task) -> Task:
        """The registry task ``name`` with this model's prompt set applied."""
        return get_task(name, prompts=self.prompts)

    def answer(
        self,
        queries: Sequence[Query],
        options: DecodingOptions | None = None,
        progress: bool = False,
        language: str | None = None,
    ) -> list[TaskResult]:
        """Answer each query (its own clip, task and prompt) -> one :class:`TaskResult` per query, in order.

        The general form of :meth:`osum.Osum.run`, for callers whose clips ask different things (the HTTP server batches
        the queries of many requests into one call). Queries that share one waveform object get its features
        once. ``language`` picks the prompt language (default: the model's).

        Guards (each switchable in ``options``): a clip in which the voice activity detector finds no speech gets
        empty answers (``skip_silence``; a model with a speech classifier may still answer it without words, e.g.
        VED naming a lone cough, or SAP the age of a voice the detector missed); every answer carries
        ``no_speech_prob`` when the detector ran. A clip longer than the encoder's window is cut at pauses into
        pieces, answered piece by piece and stitched (:mod:`osum.inference.long_audio`): one transcript, segments
        and word times in the clip's time.
        """
        options = options or DecodingOptions()
        for query in queries:
            self.task(query.task)
            if query.prompt is not None:
                self.check_prompt(query.prompt, options)
        window = int(self.config.max_audio_seconds * SAMPLE_RATE)
        plans: dict[int, _ClipPlan] = {}
        for query in queries:
            if id(query.audio) not in plans:
                plans[id(query.audio)] = self._plan(query.audio, window, options)
        pieces = [Query(w, q.task, q.prompt) for q in queries for w in plans[id(q.audio)].waves]
        answers = iter(self._answer_pieces(pieces, options, progress, language) if pieces else [])
        results = []
        for query in queries:
            plan, task = plans[id(query.audio)], self.task(query.task)
            got = [_tidy(next(answers), p.seconds) for p in plan.pieces]
            if plan.split:
                result = stitch(task, plan.pieces, got, task.parse(""))
            else:
                result = got[0] if got else task.parse("")
            if plan.gated and normalize_text(result.transcript or ""):
                result = self._without_words(task, result, options)
            if result.words and plan.regions:
                words = tidy_words(fit_to_speech(result.words, plan.regions), plan.seconds)
                result = dataclasses.replace(result, words=tuple(words))
            results.append(dataclasses.replace(result, no_speech_prob=plan.no_speech_prob))
        return results

    def check_prompt(self, prompt: str, options: DecodingOptions) -> None:
        """TaskError when ``prompt`` is empty or has more tokens than ``options.max_prompt_tokens``."""
        if not prompt.strip():
            raise TaskError("the prompt is empty")
        n = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if n > options.max_prompt_tokens:
            raise TaskError(
                f"the prompt has {n} tokens; the limit is {options.max_prompt_tokens} "
                "(DecodingOptions.max_prompt_tokens, osum infer --max-prompt-tokens)"
            )

    def _plan(self, wave: torch.Tensor, window: int, options: DecodingOptions) -> _ClipPlan:
        """Where speech is in ``wave`` ``(N,)`` and how it is cut into pieces of at most ``window`` samples."""
        n = int(wave.shape[0])
        if not options.skip_silence and n <= window:
            return _ClipPlan([Piece(0, n)], [wave], None, False, n / SAMPLE_RATE)
        speech = default_detector()(wave)
        pieces = plan_pieces(wave, speech, window, options.skip_silence)
        gated = not pieces and n <= window and self._hears_vocal_sounds
        if gated:
            pieces = [Piece(0, n)]
        waves = [wave if (p.start, p.end) == (0, n) else wave[p.start : p.end] for p in pieces]
        regions = [(a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in speech.regions]
        return _ClipPlan(
            pieces, waves, round(speech.no_speech_prob(), 4), n > window, n / SAMPLE_RATE, regions, gated
        )

    @property
    def _hears_vocal_sounds(self) -> bool:
        """A trained model whose classifiers tell a vocal sound without words from silence and noise (the
        speech field): a clip the voice activity detector finds silent still goes to it. The detector hears no
        speech in a lone cough or laugh, and skipping those clips left VED unanswered on 11 of 14 lone events of
        the synthetic test split while the classifier named all 14 (RESULTS.md section 17)."""
        return self.config.trained and "speech" in self.config.label_fields

    def _answer_pieces(
        self,
        queries: Sequence[Query],
        options: DecodingOptions,
        progress: bool,
        language: str | None,
    ) -> list[TaskResult]:
        """Answer queries whose clips fit the encoder's window, with the model's way of answering."""
        if self.config.architecture == "whisper" and self.config.decoder.label_heads:
            return self._answer_with_heads(queries, options, progress)
        if self.transcriber is not None:
            return self._answer_with_transcriber(queries, options, progress, language)
        codec = self.codec(language)
        n_mels = self.config.encoder.n_mels
        feats: dict[int, torch.Tensor] = {}
        prompts: dict[tuple[str, str | None], list[int]] = {}  # tokenised once per (task, prompt)
        items: list[tuple[int, torch.Tensor, Task, list[int]]] = []
        for index, query in enumerate(queries):
            task = self.task(query.task)
            key = id(query.audio)
            if key not in feats:
                feats[key] = log_mel_spectrogram(query.audio, n_mels)
            ids = prompts.get((task.name, query.prompt))
            if ids is None:
                ids = prompts[task.name, query.prompt] = codec.prompt_ids(task, prompt=query.prompt)
            items.append((index, feats[key], task, ids))
        items.sort(key=lambda it: -it[1].shape[0])  # similar lengths together: less padding
        results: list[TaskResult | None] = [None] * len(items)
        batches = list(_chunks(items, options.batch_size))
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="decoding", unit="batch")
        for chunk in batches:
            batch = collate([it[1] for it in chunk], [it[3] for it in chunk], [[] for _ in chunk])
            caps = [_cap(it[2], it[1].shape[0], options) for it in chunk]
            ids, means = generate(self.model, batch.to(self.device), options, caps=caps)
            for (index, _, task, _), row, mean in zip(chunk, ids, means, strict=True):
                text = codec.decode(row)
                results[index] = dataclasses.replace(
                    task.parse(text), avg_logprob=mean, compression_ratio=compression_ratio(text)
                )
        labelled = [it for it in items if it[2].label_fields and isinstance(self.model, OsumModel)]
        # every label value's probability given the transcript (the answer stays the generated one)
        if labelled:
            queries_ = []
            for index, feat, task, ids in labelled:
                heard = normalize_text(results[index].transcript or "") if task.has_transcript else ""  # type: ignore[union-attr]
                queries_.append(LabelQuery(feat, ids, task, heard, answer_prefix(codec, task, heard)))  # type: ignore[arg-type]
            scored = score_labels(self.model, codec, queries_, rows_per_pass=4 * options.batch_size)  # type: ignore[arg-type]
            for (index, *_), got in zip(labelled, scored, strict=True):
                r = results[index]
                assert r is not None
                labels = thresholded(dict(r.labels), got.probs, options.min_label_prob)
                results[index] = dataclasses.replace(r, labels=labels, label_probs=got.probs)
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def _answer_with_heads(
        self, queries: Sequence[Query], options: DecodingOptions, progress: bool
    ) -> list[TaskResult]:
        """A stage-1 Whisper with label heads: per clip one encoder pass, one decode with Whisper's own prompt and
        one read of the label heads, whatever tasks it is asked. Each task's answer is that transcript followed by
        the task's labels in the ASR+X format; an empty transcript (no speech) gets no labels. SRWT's word times
        come from the alignment heads' cross-attention (:mod:`osum.inference.word_times`)."""
        if options.num_beams > 1:
            raise ConfigError(
                "beam search is not available for Whisper (stage-1) models yet: use num_beams=1"
            )
        if any(query.prompt is not None for query in queries):
            raise TaskError("a Whisper (stage-1) model takes a task, not a free-text prompt")
        tasks = [self.task(query.task) for query in queries]
        clip_of, waves = _clips(queries)
        timed = {i for i, t in zip(clip_of, tasks, strict=True) if t.name == "srwt"}  # clips asked for word times
        feats = [log_mel_spectrogram(w, self.config.encoder.n_mels) for w in waves]
        pitch = [pitch_features(w) for w in waves] if self.config.label_pitch else None
        codec = self.codec()
        prompt = codec.prompt_ids(self.task("asr"))  # Whisper's own prompt: the same for every task
        transcripts: list[str] = [""] * len(waves)
        labels: list[dict[str, str]] = [{} for _ in waves]
        probs: list[dict[str, dict[str, float]]] = [{} for _ in waves]
        scores: list[float | None] = [None] * len(waves)
        words: list[list[Word]] = [[] for _ in waves]
        vocal = [False] * len(waves)  # the speech head heard a vocal sound without words
        order = sorted(range(len(waves)), key=lambda i: -feats[i].shape[0])
        chunks = list(_chunks(order, options.batch_size))
        if progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc="decoding", unit="batch")
        model: WhisperTaskModel = self.model  # type: ignore[assignment]
        if options.do_sample and options.seed is not None:
            torch.manual_seed(options.seed)
        for chunk in chunks:
            batch = collate([feats[i] for i in chunk], [prompt] * len(chunk), [[] for _ in chunk]).to(
                self.device
            )
            encoded = model.encode(batch)
            caps = [token_cap(feats[i].shape[0] / MEL_FRAMES_PER_SECOND) for i in chunk]
            ids, means = model.decode(
                batch,
                options.max_new_tokens,
                options.do_sample,
                options.temperature,
                options.top_k,
                encoded,
                caps=caps if options.stop_loops else None,
                loop_start=loop_start if options.stop_loops else None,
            )
            logits = model.label_logits(*encoded, _stack(pitch, chunk, self.device))
            for row, i in enumerate(chunk):
                for f, v in logits.items():
                    p = v[row].float().softmax(-1).tolist()
                    probs[i][f] = dict(zip(LABEL_FIELDS[f].values, p, strict=True))
                    labels[i][f] = LABEL_FIELDS[f].values[int(v[row].argmax())]
                # the model's own speech head (label_fields has "speech"; trained heads only): no words, no text
                heard = labels[i].get("speech") if self.config.trained else None
                vocal[i] = heard == "vocal"
                transcripts[i] = "" if heard in ("none", "vocal") else codec.decode(ids[row])
                scores[i] = means[row]
                if i in timed and transcripts[i]:
                    weights = model.alignment_weights(prompt, ids[row], encoded[0][row : row + 1])
                    pieces = [self.tokenizer.decode([t]) for t in ids[row]]
                    words[i] = word_times(weights, int(encoded[1][row]), pieces)
        results = []
        for i, task in zip(clip_of, tasks, strict=True):
            text = transcripts[i]
            lone_event = vocal[i] and _answers_vocal(task)  # a vocal sound without words, and a task that names it
            if task.name == "srwt" and words[i]:
                text = format_words(words[i])
            elif normalize_text(text):  # speech: the task's labels follow the transcript, as in its targets
                body = text if task.has_transcript else ""
                text = body + "".join(f"<{labels[i][f.name]}>" for f in task.label_fields)
            elif lone_event:  # its label alone, as in VED's targets
                text = "".join(f"<{labels[i][f.name]}>" for f in task.label_fields)
            parsed = task.parse(text)
            mine = {f.name: probs[i][f.name] for f in task.label_fields if f.name in probs[i]}
            if (normalize_text(transcripts[i]) or lone_event) and mine:
                parsed = dataclasses.replace(
                    parsed,
                    labels=thresholded(dict(parsed.labels), mine, options.min_label_prob),
                    label_probs=mine,
                )
            results.append(
                dataclasses.replace(
                    parsed,
                    avg_logprob=scores[i] if transcripts[i] else None,
                    compression_ratio=compression_ratio(transcripts[i]),
                )
            )
        return results

    @torch.inference_mode()
    def _answer_with_transcriber(
        self, queries: Sequence[Query], options: DecodingOptions, progress: bool, language: str | None
    ) -> list[TaskResult]:
        """An osum model with ``sources.transcriber`` (:mod:`osum.inference.transcriber`): per clip one encoder
        pass and one Whisper decode; ASR and SRWT answer with that transcript (SRWT's word times from the
        alignment heads); every other query goes through the LLM with its answer forced to start with the
        transcript. A clip the model's speech head calls speech-free, or whose transcript is empty, gets empty
        answers."""
        if self.transcriber is None:
            raise RuntimeError("this model has no transcriber")
        model: OsumModel = self.model  # type: ignore[assignment]
        codec = self.codec(language)
        tasks = [self.task(query.task) for query in queries]
        clip_of, waves = _clips(queries)
        timed = {i for i, t in zip(clip_of, tasks, strict=True) if t.name == "srwt"}
        feats = [log_mel_spectrogram(w, self.config.encoder.n_mels) for w in waves]
        pitch = [pitch_features(w) for w in waves] if self.config.label_pitch else None
        order = sorted(range(len(waves)), key=lambda i: -feats[i].shape[0])
        heard: list[Transcription | None] = [None] * len(waves)
        silent = [False] * len(waves)
        vocal: list[dict[str, dict[str, float]] | None] = [None] * len(waves)  # a lone vocal event: its labels
        chunks = list(_chunks(order, options.batch_size))
        if progress:
            from tqdm import tqdm

            chunks = tqdm(chunks, desc="transcribing", unit="batch")
        speech_head = (
            self.config.trained and model.label_tokens is not None and "speech" in model.label_tokens.fields
        )
        fusion = self.config.trained and self.config.label_fusion and model.label_tokens is not None
        priors: list[dict[str, torch.Tensor] | None] = [None] * len(waves)  # classifiers' log-probs per clip
        for chunk in chunks:
            done = self.transcriber.transcribe(
                [feats[i] for i in chunk],
                options.max_new_tokens,
                [i in timed for i in chunk],
                options.stop_loops,
            )
            for i, t in zip(chunk, done, strict=True):
                heard[i] = t
            if speech_head or fusion:  # the model's own classifiers on the same frames
                frames = pad_frames([t.frames for t in done]).float()
                lengths = torch.tensor([t.frames.shape[0] for t in done], device=frames.device)
                logits, _ = model.label_tokens(frames, lengths, _stack(pitch, chunk, self.device))
                if speech_head:
                    values = LABEL_FIELDS["speech"].values
                    for j, i in enumerate(chunk):
                        heard_as = values[int(logits["speech"][j].argmax())]
                        silent[i] = heard_as in ("none", "vocal")
                        if heard_as == "vocal":
                            vocal[i] = {
                                f: dict(zip(LABEL_FIELDS[f].values, logits[f][j].float().softmax(-1).tolist(), strict=True))
                                for f in VOCAL_ANSWER_FIELDS
                                if f in logits
                            }
                if fusion:
                    for j, i in enumerate(chunk):
                        priors[i] = {f: x[j].float().log_softmax(-1).cpu() for f, x in logits.items()}
        results: list[TaskResult | None] = [None] * len(queries)
        rows: list[
            tuple[int, int, Task, list[int], list[int]]
        ] = []  # (query, clip, task, prompt, forced prefix)
        for q, (query, task, i) in enumerate(zip(queries, tasks, clip_of, strict=True)):
            t = heard[i]
            assert t is not None
            if vocal[i] is not None and _answers_vocal(task) and all(f.name in vocal[i] for f in task.label_fields):
                results[q] = self._vocal_result(task, vocal[i], options)
            elif silent[i] or (task.has_transcript and not normalize_text(t.text)):
                results[q] = task.parse("")
            elif task.name in ("asr", "srwt") and query.prompt is None:
                parsed = task.parse(format_words(t.words) if task.name == "srwt" and t.words else t.text)
                results[q] = dataclasses.replace(
                    parsed, avg_logprob=t.avg_logprob, compression_ratio=compression_ratio(t.text)
                )
            else:
                prefix = answer_prefix(codec, task, normalize_text(t.text) if task.has_transcript else "")
                rows.append((q, i, task, codec.prompt_ids(task, prompt=query.prompt), prefix))
        label_rows = [r for r in rows if tasks[r[0]].label_fields]
        if label_rows:  # labels: every value scored given the transcript (osum.inference.labels)
            scored = score_labels(
                model,
                codec,  # type: ignore[arg-type]
                [
                    LabelQuery(
                        feats[i],
                        prompt,
                        task,
                        normalize_text(heard[i].text),  # type: ignore[union-attr]
                        prefix,
                        heard[i].frames,  # type: ignore[union-attr]
                        pitch[i] if pitch is not None else None,
                        priors[i],
                    )
                    for _, i, task, prompt, prefix in label_rows
                ],
                rows_per_pass=4 * options.batch_size,
                llm_weight=self.config.label_llm_weight,
            )
            for (q, i, task, _, prefix), got in zip(label_rows, scored, strict=True):
                text = heard[i].text  # type: ignore[union-attr]
                results[q] = self._label_result(task, text, codec, prefix, got, options)
        rows = [r for r in rows if not tasks[r[0]].label_fields]
        rows.sort(key=lambda r: -feats[r[1]].shape[0])
        llm_chunks = list(_chunks(rows, options.batch_size))
        if progress and llm_chunks:
            from tqdm import tqdm

            llm_chunks = tqdm(llm_chunks, desc="answering", unit="batch")
        for chunk in llm_chunks:
            batch = collate(
                [feats[r[1]] for r in chunk],
                [r[3] for r in chunk],
                [[] for _ in chunk],
                encoder_frames=[heard[r[1]].frames for r in chunk],  # type: ignore[union-attr]
                pitch=[pitch[r[1]] for r in chunk] if pitch is not None else None,
            )
            ids, _ = generate(model, batch.to(self.device), options, [r[4] for r in chunk])
            for (q, i, task, _, prefix), row in zip(chunk, ids, strict=True):
                if not task.has_transcript:
                    results[q] = task.parse(codec.decode(row))
                    continue
                text = heard[i].text  # type: ignore[union-attr]
                results[q] = task.parse(text + answer_after(codec, normalize_text(text), prefix, row))
        return [r for r in results if r is not None]

    @classmethod
    def _without_words(cls, task: Task, result: TaskResult, options: DecodingOptions) -> TaskResult:
        """The answer to a clip where the voice activity detector heard no speech but the model's speech
        classifier did, and the model wrote words: the guard stands against the words (they may be invented:
        "Thank you very much." for a codec-mangled clip), but the classifiers' labels of the voice are kept, as
        for a lone vocal sound. Before, such clips got no label at all (2 of the 11 age errors of the synthetic test
        split: a 470 Hz child and an AMR-coded clip, both read right by the classifiers; RESULTS.md section 18)."""
        probs = result.label_probs or {}
        if task.label_fields and all(f.name in probs for f in task.label_fields):
            return cls._vocal_result(task, {f.name: probs[f.name] for f in task.label_fields}, options)
        return task.parse("")

    @staticmethod
    def _vocal_result(
        task: Task, probs: dict[str, dict[str, float]], options: DecodingOptions
    ) -> TaskResult:
        """An answer without words: the classifiers' labels alone (``probs``: ``{field: {value: probability}}``),
        as VED's target ``<cough>`` for a lone vocal event (:data:`VOCAL_ANSWER_FIELDS`) or a clip whose words the
        silence guard dropped (:meth:`_without_words`)."""
        mine = {f.name: probs[f.name] for f in task.label_fields}
        parsed = task.parse("".join(f"<{max(p, key=p.__getitem__)}>" for p in mine.values()))
        return dataclasses.replace(
            parsed, labels=thresholded(dict(parsed.labels), mine, options.min_label_prob), label_probs=mine
        )

    @staticmethod
    def _label_result(
        task: Task,
        transcript: str,
        codec: LLMCodec,
        prefix: list[int],
        got: LabelAnswer,
        options: DecodingOptions,
    ) -> TaskResult:
        """A label task's answer from its scored candidates: the transcript as heard, the best tags, every
        value's probability; a label below ``options.min_label_prob`` becomes None."""
        after = (
            answer_after(codec, normalize_text(transcript), prefix, got.after) if task.has_transcript else ""
        )
        text = (transcript + after) if task.has_transcript else codec.decode(prefix + got.after)
        parsed = task.parse(text)
        labels = thresholded(dict(parsed.labels), got.probs, options.min_label_prob)
        return dataclasses.replace(
            parsed,
            labels=labels,
            label_probs=got.probs,
            avg_logprob=got.avg_logprob,
            compression_ratio=compression_ratio(transcript) if task.has_transcript else None,
        )


@dataclass
class _ClipPlan:
    """One clip's pieces (in samples), their waveforms, the detector's no-speech probability, whether the clip
    was cut (longer than the window), its length and its speech regions."""

    pieces: list[Piece]
    waves: list[torch.Tensor]
    no_speech_prob: float | None
    split: bool
    seconds: float
    regions: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # speech, in seconds
    # the detector found no speech, but the model's speech classifier may hear a vocal sound without words (a
    # cough): the clip is answered, and only an answer without words is kept
    gated: bool = False


def _answers_vocal(task: Task) -> bool:
    """Whether ``task`` answers a clip of a vocal event alone (the speech head's ``"vocal"``): it asks for
    labels, and only those a lone vocal sound has (:data:`VOCAL_ANSWER_FIELDS`: VED's event)."""
    return bool(task.label_fields) and all(f.name in VOCAL_ANSWER_FIELDS for f in task.label_fields)


def _cap(task: Task, mel_frames: int, options: DecodingOptions) -> int:
    """The most tokens ``task``'s answer about ``mel_frames`` of audio may have (a chat reply: the option's)."""
    if task.name == "sttc":
        return options.max_new_tokens
    return token_cap(mel_frames / MEL_FRAMES_PER_SECOND, timed=task.name == "srwt")


def _tidy(result: TaskResult, seconds: float) -> TaskResult:
    """Word times kept inside the piece, in order, none of zero length."""
    if not result.words:
        return result
    return dataclasses.replace(result, words=tuple(tidy_words(result.words, seconds)))


def _stack(
    pitch: list[torch.Tensor] | None, rows: Sequence[int], device: torch.device
) -> torch.Tensor | None:
    """The F0 statistics of clips ``rows`` as ``(B, 4)`` (None when the model reads none)."""
    return None if pitch is None else torch.stack([pitch[i] for i in rows]).to(device)


def _clips(queries: Sequence[Query]) -> tuple[list[int], list[torch.Tensor]]:
    """The clip of each query (queries sharing one waveform object share a clip) and the clips' waveforms."""
    index: dict[int, int] = {}
    waves: list[torch.Tensor] = []
    for query in queries:
        if id(query.audio) not in index:
            index[id(query.audio)] = len(waves)
            waves.append(query.audio)
    return [index[id(query.audio)] for query in queries], waves


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
