"""Tests of the audio front end: loading/resampling, Whisper log-mel parity, batching and error messages."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import WhisperFeatureExtractor
from transformers.audio_utils import spectrogram, window_function

from osum.data.audio import (
    HOP_LENGTH,
    SAMPLE_RATE,
    batch_log_mel,
    load_audio,
    log_mel_spectrogram,
    mel_filters,
    num_mel_frames,
)
from osum.errors import AudioError, AudioFormatError, AudioTooLongError

FIXTURE_DIR = Path(
    os.environ.get(
        "OSUM_REFERENCE_FIXTURE",
        Path(__file__).resolve().parents[2].parent / "shared/fixtures/osum_reference",
    )
)


def _chirp(n: int, sr: int = SAMPLE_RATE, f0: float = 100.0, f1: float = 6000.0) -> np.ndarray:
    t = np.arange(n) / sr
    dur = n / sr
    return (0.4 * np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / dur * t**2))).astype(np.float32)


def _tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def _peak_hz(wave: torch.Tensor, sr: int = SAMPLE_RATE) -> float:
    spec = np.abs(np.fft.rfft(wave.numpy().astype(np.float64)))
    return float(np.argmax(spec)) * sr / wave.shape[0]


def _test_waves() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        (0.1 * rng.standard_normal(16_037)).astype(np.float32),
        _chirp(23_999),
        _chirp(3_201, f0=3000.0, f1=300.0) + (0.01 * rng.standard_normal(3_201)).astype(np.float32),
        (0.3 * rng.standard_normal(999)).astype(np.float32),
    ]


# ---------------------------------------------------------------- log-mel features


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_whisper_feature_extractor(n_mels: int) -> None:
    extractor = WhisperFeatureExtractor(feature_size=n_mels)
    for wave in _test_waves():
        ref = extractor(wave, sampling_rate=SAMPLE_RATE, padding="longest", return_tensors="np")
        ref = ref["input_features"]
        assert ref.shape == (1, n_mels, len(wave) // HOP_LENGTH)
        out = log_mel_spectrogram(torch.from_numpy(wave), n_mels)
        assert out.shape == (len(wave) // HOP_LENGTH, n_mels)
        assert out.dtype == torch.float32
        np.testing.assert_allclose(out.numpy(), ref[0].T, rtol=0, atol=1e-4)


@pytest.mark.parametrize("n", [160, 170, 200, 201])
def test_log_mel_of_waves_shorter_than_the_reflect_pad(n: int) -> None:
    # torch.stft(center=True) refuses 160..200 samples (pad 200 >= length); numpy's reflect padding (which the
    # transformers numpy spectrogram uses) keeps reflecting. Compare with that public numpy implementation.
    wave = _chirp(n, f0=500.0, f1=2500.0)
    power = spectrogram(
        wave.astype(np.float64),
        window_function(400, "hann"),
        frame_length=400,
        hop_length=160,
        power=2.0,
        mel_filters=mel_filters(80).numpy().astype(np.float64),
        log_mel="log10",
    )[:, :-1]
    ref = (np.maximum(power, power.max() - 8.0) + 4.0) / 4.0
    out = log_mel_spectrogram(torch.from_numpy(wave))
    assert out.shape == (1, 80)
    np.testing.assert_allclose(out.numpy(), ref.T, rtol=0, atol=1e-4)


@pytest.mark.parametrize("fname", ["single.npz", "single_short.npz"])
def test_log_mel_matches_osum_reference_fixture(fname: str) -> None:
    path = FIXTURE_DIR / fname
    if not path.is_file():
        pytest.fail(
            f"OSUM reference fixture {path} is missing; set OSUM_REFERENCE_FIXTURE to the folder holding "
            "single.npz and single_short.npz"
        )
    data = np.load(path)
    out = log_mel_spectrogram(torch.from_numpy(data["wave"]))
    assert out.shape == data["mel"].shape
    assert out.shape[0] == num_mel_frames(len(data["wave"]))
    np.testing.assert_allclose(out.numpy(), data["mel"], rtol=0, atol=1e-4)


def test_log_mel_is_float32_for_other_input_dtypes() -> None:
    wave = torch.from_numpy(_chirp(4_000))
    ref = log_mel_spectrogram(wave)
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        out = log_mel_spectrogram(wave.to(dtype))
        assert out.dtype == torch.float32
        assert out.shape == ref.shape
    torch.testing.assert_close(log_mel_spectrogram(wave.double()), ref, rtol=0, atol=1e-5)
    # Whisper's normalisation: values lie within 8/4 = 2 of the maximum.
    assert float(ref.max() - ref.min()) <= 2.0 + 1e-6


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_log_mel_on_cuda_matches_cpu() -> None:
    wave = torch.from_numpy(_chirp(12_345))
    out = log_mel_spectrogram(wave.cuda(), 128)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), log_mel_spectrogram(wave, 128), rtol=0, atol=1e-4)
    feats, lengths = batch_log_mel([wave.cuda(), wave[:5000].cuda()])
    assert feats.device.type == "cuda" and lengths.device.type == "cuda"


def test_mel_filters_cached_and_shaped() -> None:
    assert mel_filters(80).shape == (201, 80)
    assert mel_filters(128).shape == (201, 128)
    assert mel_filters(80) is mel_filters(80)
    assert mel_filters(80).dtype == torch.float32


def test_num_mel_frames() -> None:
    assert [num_mel_frames(n) for n in (0, 159, 160, 319, 320, 16000)] == [0, 0, 1, 1, 2, 100]


# ---------------------------------------------------------------- batching


def test_batch_log_mel_rows_equal_single_results_exactly() -> None:
    waves = [torch.from_numpy(w) for w in _test_waves()]
    for n_mels in (80, 128):
        feats, lengths = batch_log_mel(waves, n_mels)
        t_max = max(len(w) // HOP_LENGTH for w in waves)
        assert feats.shape == (len(waves), t_max, n_mels)
        assert feats.dtype == torch.float32
        assert lengths.dtype == torch.int64
        assert lengths.tolist() == [len(w) // HOP_LENGTH for w in waves]
        for b, wave in enumerate(waves):
            single = log_mel_spectrogram(wave, n_mels)
            assert torch.equal(feats[b, : lengths[b]], single)
            assert torch.count_nonzero(feats[b, lengths[b] :]) == 0


def test_batch_log_mel_errors_name_the_item() -> None:
    with pytest.raises(AudioError, match=r"batch item 1: .*too short"):
        batch_log_mel([torch.zeros(1600), torch.zeros(100)])
    with pytest.raises(AudioError, match="at least one"):
        batch_log_mel([])


# ---------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("ext", "fmt", "subtype", "atol"),
    [
        ("wav", "WAV", "PCM_16", 1 / 32768),
        ("wav", "WAV", "FLOAT", 0.0),
        ("flac", "FLAC", "PCM_24", 1 / 2**23),
        ("ogg", "OGG", "VORBIS", None),
        ("mp3", "MP3", "MPEG_LAYER_III", None),
    ],
)
def test_load_audio_formats(tmp_path: Path, ext: str, fmt: str, subtype: str, atol: float | None) -> None:
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    tone = _tone(1.0, SAMPLE_RATE)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, tone, SAMPLE_RATE, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.ndim == 1
    assert torch.equal(wave, load_audio(str(path)))
    if atol is not None:  # lossless: the samples come back (up to quantisation)
        assert wave.shape == (len(tone),)
        np.testing.assert_allclose(wave.numpy(), tone, rtol=0, atol=atol + 1e-7)
    else:  # lossy codecs may add encoder delay/padding; the tone must survive
        assert abs(wave.shape[0] - len(tone)) < 0.1 * SAMPLE_RATE
        assert abs(_peak_hz(wave) - 440.0) < 2.0
        assert 0.3 < float(wave.abs().max()) < 0.7


def test_load_audio_int16_pcm_is_scaled(tmp_path: Path) -> None:
    pcm = np.array([0, 16384, -32768, 32767, -16384] * 100, dtype=np.int16)
    path = tmp_path / "pcm.wav"
    sf.write(path, pcm, SAMPLE_RATE, subtype="PCM_16")
    expected = pcm.astype(np.float32) / 32768.0
    np.testing.assert_array_equal(load_audio(path).numpy(), expected)
    # The same PCM as an array is scaled the same way.
    np.testing.assert_array_equal(load_audio(pcm, SAMPLE_RATE).numpy(), expected)


def test_load_audio_stereo_is_averaged(tmp_path: Path) -> None:
    left = _tone(0.5, SAMPLE_RATE, 440.0, 0.4)
    right = _tone(0.5, SAMPLE_RATE, 1000.0, 0.2)
    stereo = np.stack([left, right], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, SAMPLE_RATE, subtype="FLOAT")
    expected = (left + right) / 2
    np.testing.assert_allclose(load_audio(path).numpy(), expected, rtol=0, atol=1e-7)
    np.testing.assert_allclose(load_audio(stereo, SAMPLE_RATE).numpy(), expected, rtol=0, atol=1e-7)
    np.testing.assert_allclose(
        load_audio(torch.from_numpy(stereo), SAMPLE_RATE).numpy(), expected, rtol=0, atol=1e-7
    )


@pytest.mark.parametrize("sr", [22050, 44100, 8000])
def test_load_audio_resamples_to_16k(tmp_path: Path, sr: int) -> None:
    tone = _tone(1.3, sr)
    path = tmp_path / f"tone_{sr}.flac"
    sf.write(path, tone, sr)
    for wave in (load_audio(path), load_audio(tone, sr)):
        assert abs(wave.shape[0] - len(tone) * SAMPLE_RATE / sr) <= 1
        assert abs(_peak_hz(wave) - 440.0) < 1.5
        # The level survives resampling (steady-state amplitude of the 0.5 tone).
        assert 0.48 < float(wave[1000:-1000].abs().max()) < 0.52


def test_load_audio_array_inputs() -> None:
    tone = _tone(0.25, SAMPLE_RATE)
    out = load_audio(tone, SAMPLE_RATE)
    np.testing.assert_array_equal(out.numpy(), tone)
    out64 = load_audio(torch.from_numpy(tone).double(), sample_rate=16000)
    assert out64.dtype == torch.float32
    np.testing.assert_allclose(out64.numpy(), tone, rtol=0, atol=1e-7)
    with pytest.raises(AudioError, match=r"clip_7: sample_rate is required"):
        load_audio(tone, name="clip_7")
    with pytest.raises(AudioError, match=r"<array>: sample_rate is required"):
        load_audio(torch.from_numpy(tone))


# ---------------------------------------------------------------- errors


def test_error_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nothere\.wav: file not found"):
        load_audio(tmp_path / "nothere.wav")


def test_error_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    msg = str(err.value)
    assert "x.wav" in msg and "cannot read audio" in msg and "Format not recognised" in msg


def test_error_empty_wav(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match=r"empty\.wav: the audio is empty \(0 samples\)"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"blank: the audio is empty"):
        load_audio(np.zeros(0, np.float32), SAMPLE_RATE, name="blank")


def test_error_nan_and_inf_samples(tmp_path: Path) -> None:
    wave = _tone(0.1, SAMPLE_RATE)
    wave[37] = np.nan
    with pytest.raises(AudioError, match=r"utt_nan: contains NaN or infinite samples .*first at sample 37"):
        load_audio(wave, SAMPLE_RATE, name="utt_nan")
    wave[37] = np.inf
    path = tmp_path / "inf.wav"
    sf.write(path, wave, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"inf\.wav: contains NaN or infinite"):
        load_audio(path)
    with pytest.raises(AudioError, match="NaN or infinite"):
        log_mel_spectrogram(torch.from_numpy(wave))


def test_error_longer_than_max_seconds(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, _tone(3.12, 8000), 8000)
    with pytest.raises(AudioError, match=r"long\.wav: 3\.1 s is longer than the 3\.0 s this model accepts"):
        load_audio(path, max_seconds=3.0)
    assert load_audio(path, max_seconds=3.2).shape[0] == round(3.12 * SAMPLE_RATE)
    # Close calls print enough decimals to tell the two numbers apart.
    with pytest.raises(AudioError, match=r"arr: 3\.04 s is longer than the 3\.00 s"):
        load_audio(_tone(3.04, SAMPLE_RATE), SAMPLE_RATE, max_seconds=3.0, name="arr")


def test_bytes_of_a_file_are_decoded_in_memory_and_never_taken_as_a_path(tmp_path: Path) -> None:
    path = tmp_path / "tone.flac"
    sf.write(path, _tone(0.5, 22050), 22050)
    from_bytes = load_audio(path.read_bytes(), name="upload.flac")
    assert torch.equal(from_bytes, load_audio(path))
    with pytest.raises(AudioFormatError, match=r"<bytes>: cannot read audio \(not a format"):
        load_audio(str(path).encode())  # a path given as bytes is data, not a file name
    with pytest.raises(AudioError, match=r"up\.wav: the file is empty \(0 bytes\)"):
        load_audio(b"", name="up.wav")
    with pytest.raises(AudioTooLongError) as err:
        load_audio(path.read_bytes(), max_seconds=0.25)
    assert (round(err.value.seconds, 2), err.value.limit) == (0.5, 0.25)


def test_error_too_short_for_one_frame(tmp_path: Path) -> None:
    path = tmp_path / "blip.wav"
    sf.write(path, _tone(0.005, SAMPLE_RATE), SAMPLE_RATE)
    wave = load_audio(path)  # loading works; 80 samples just give no frames
    with pytest.raises(AudioError, match=r"too short: 80 samples \(5\.0 ms\) give no frames.*160 samples"):
        log_mel_spectrogram(wave)


def test_error_bad_sample_rate_shape_and_dtype() -> None:
    tone = _tone(0.1, SAMPLE_RATE)
    for rate in (0, -16000):
        with pytest.raises(AudioError, match=rf"utt: bad sample rate {rate}"):
            load_audio(tone, rate, name="utt")
    with pytest.raises(AudioError, match=r"utt: expected shape \(N,\) or \(N, C\), got \(1, 2, 1600\)"):
        load_audio(np.zeros((1, 2, 1600), np.float32), SAMPLE_RATE, name="utt")
    with pytest.raises(AudioError, match=r"utt: shape \(2, 1600\) .*channels-last"):
        load_audio(np.zeros((2, 1600), np.float32), SAMPLE_RATE, name="utt")
    with pytest.raises(AudioError, match=r"utt: unsupported sample dtype complex64"):
        load_audio(np.zeros(1600, np.complex64), SAMPLE_RATE, name="utt")
    with pytest.raises(AudioError, match=r"expected a mono wave of shape \(N,\)"):
        log_mel_spectrogram(torch.zeros(2, 1600))


def test_error_file_rate_disagrees_with_sample_rate(tmp_path: Path) -> None:
    path = tmp_path / "r22.wav"
    sf.write(path, _tone(0.2, 22050), 22050)
    with pytest.raises(AudioError, match=r"r22\.wav: sample_rate=16000 was given but the file is 22050 Hz"):
        load_audio(path, 16000)
    assert load_audio(path, 22050).shape[0] == round(0.2 * SAMPLE_RATE)


def test_load_audio_does_not_alias_the_input_array() -> None:
    tone = _tone(0.1, SAMPLE_RATE)
    tensor = torch.from_numpy(tone.copy())
    for source in (tone, tensor):
        out = load_audio(source, SAMPLE_RATE)
        out.zero_()
    assert np.abs(tone).max() > 0.4 and float(tensor.abs().max()) > 0.4
