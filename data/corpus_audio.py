"""Signal helpers of the demo corpus builder: running external coders on many clips at once,
trimming, noise, loudness, WAV output. Audio is float32 in [-1, 1] unless a name says int16.

External tools cost 20-170 ms per start (ffmpeg is the slow one), so clips are concatenated with
silent gaps, passed through a tool once, and cut apart again at their known offsets; the tool's
delay (codecs add a few hundred samples) is measured by cross-correlation on the batch."""
import hashlib
import subprocess
import wave

import numpy as np

SR = 16000
GAP_SECONDS = 0.3  # longer than any coder's delay or reverb tail we keep


def clip_rng(*key):
    """A numpy Generator that depends only on the key (seed, speaker, clip, purpose)."""
    digest = hashlib.sha256("/".join(str(k) for k in key).encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))


def run(cmd, stdin_bytes=None):
    """Runs a command; a failure raises with the command line and its stderr."""
    proc = subprocess.run(cmd, input=stdin_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), proc.returncode,
                                                proc.stderr.decode(errors="replace")[-500:]))
    return proc.stdout


def to_s16(x):
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")


def from_s16(raw):
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def estimate_delay(x, y, max_lag, window=1 << 18):
    """Lag d (0 <= d <= max_lag) that best aligns y[d:] with x: FFT cross-correlation over the
    first WINDOW samples (the delay of a coder is constant)."""
    n = min(len(x), len(y), window)
    if n == 0:
        return 0
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(y[:n], size) * np.conj(np.fft.rfft(x[:n], size)), size)
    return int(np.argmax(corr[: max_lag + 1]))


def batch_through(clips, coder, rate_in, rate_out=None, align=True, frame=1):
    """Passes every clip through CODER (a function from raw s16le mono at RATE_IN to raw s16le
    mono at RATE_OUT) in one call. Each clip is padded to a multiple of FRAME samples and followed
    by a silent gap; its output has the length of its input (scaled by the rate ratio). ALIGN
    measures and removes the coder's delay (same-rate coders only)."""
    if not clips:
        return []
    rate_out = rate_out or rate_in
    gap = int(GAP_SECONDS * rate_in)
    gap += (-gap) % frame
    parts, offsets, pos = [], [], 0
    for c in clips:
        padded = len(c) + (-len(c)) % frame
        offsets.append(pos)
        parts.append(np.pad(c, (0, padded - len(c) + gap)))
        pos += padded + gap
    x = np.concatenate(parts).astype(np.float32)
    y = from_s16(coder(to_s16(x).tobytes()))
    delay = estimate_delay(x, y, gap // 2) if align and rate_out == rate_in else 0
    ratio = rate_out / rate_in
    out = []
    for c, off in zip(clips, offsets):
        start = int(round(off * ratio)) + delay
        n = int(round(len(c) * ratio))
        seg = y[start:start + n]
        out.append(np.pad(seg, (0, n - len(seg))).astype(np.float32))
    return out


def pipeline(*cmds):
    """A coder that runs the commands one after the other on the bytes."""
    def coder(pcm):
        for cmd in cmds:
            pcm = run(cmd, pcm)
        return pcm
    return coder


def sox_raw(rate):
    return ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", str(rate)]


def resample_batch(clips, rate_in, rate_out):
    if rate_in == rate_out:
        return [c.copy() for c in clips]
    cmd = ["sox", "-D"] + sox_raw(rate_in) + ["-"] + sox_raw(rate_out) + ["-", "rate", "-h"]
    return batch_through(clips, pipeline(cmd), rate_in, rate_out, align=False)


def ffmpeg_codec_batch(clips, rate, codec_args, fmt, frame=1):
    """Encode and decode with ffmpeg (G.722, Opus, Vorbis): two processes for the whole batch."""
    raw = ["-f", "s16le", "-ar", str(rate), "-ac", "1"]
    enc = ["ffmpeg", "-nostdin", "-v", "error"] + raw + ["-i", "-"] + codec_args + ["-f", fmt, "-"]
    dec = ["ffmpeg", "-nostdin", "-v", "error", "-f", fmt, "-i", "-"] + raw + ["-"]
    return batch_through(clips, pipeline(enc, dec), rate, frame=frame)


def sox_codec_batch(clips, rate, fmt_args):
    """Encode and decode with sox (MP3, GSM); FMT_ARGS name the format ("-t", "mp3", ...)."""
    fmt = fmt_args[fmt_args.index("-t") + 1]
    enc = ["sox", "-D"] + sox_raw(rate) + ["-"] + fmt_args + ["-"]
    dec = ["sox", "-D", "-t", fmt, "-"] + sox_raw(rate) + ["-"]
    return batch_through(clips, pipeline(enc, dec), rate, frame=160 if fmt == "gsm" else 1)


def trim_silence(x, rate, floor_db=-40.0, margin_seconds=0.05):
    """Cuts leading and trailing frames quieter than FLOOR_DB below the loudest 20 ms frame."""
    hop = rate // 50
    n = len(x) // hop
    if n == 0:
        return x
    energy = (x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1)
    db = 10 * np.log10(energy + 1e-12)
    loud = np.nonzero(db > db.max() + floor_db)[0]
    margin = int(margin_seconds * rate)
    start = max(0, loud[0] * hop - margin)
    end = min(len(x), (loud[-1] + 1) * hop + margin)
    return x[start:end]


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def add_noise(x, rng, snr_db):
    """White, pink or brown noise (spectral slope 0, -3, -6 dB/octave) at SNR_DB below the clip."""
    slope = rng.choice([0.0, 0.5, 1.0])
    size = 1 << int(np.ceil(np.log2(max(len(x), 2))))  # power-of-two FFT: clip lengths can be prime
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / freqs ** slope, size)[: len(x)]
    noise *= rms(x) / rms(noise) * 10 ** (-snr_db / 20)
    return (x + noise).astype(np.float32)


def normalise(x, target_dbfs):
    """Scales the clip to TARGET_DBFS RMS, then down if a peak would clip."""
    y = x * (10 ** (target_dbfs / 20) / rms(x))
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32)


def write_wav(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(to_s16(x).tobytes())


def decode_files(paths, rate, tmpdir, input_format=None, per_call=120):
    """Decodes audio files (any format ffmpeg reads; INPUT_FORMAT for headerless G.722/GSM) to mono
    float at RATE, many files per ffmpeg run."""
    out = []
    for first in range(0, len(paths), per_call):
        chunk = paths[first:first + per_call]
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
        for p in chunk:
            cmd += (["-f", input_format] if input_format else []) + ["-i", p]
        names = ["%s/dec%05d.raw" % (tmpdir, first + i) for i in range(len(chunk))]
        for i, name in enumerate(names):
            cmd += ["-map", "%d:a:0" % i, "-ac", "1", "-ar", str(rate), "-f", "s16le", name]
        run(cmd)
        for name in names:
            with open(name, "rb") as f:
                out.append(from_s16(f.read()))
    return out
