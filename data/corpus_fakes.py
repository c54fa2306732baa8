"""Fakes of the demo corpus. Text-to-speech of a real clip's transcript (espeak-ng voice variants,
flite's English voices), and vocoder resynthesis of a real clip (SPTK pitch + mel-cepstrum + MLSA
filter; Codec2 at 8 kHz). Every function takes and returns float clips at the speaker's rate."""
import os
import subprocess
import wave

import numpy as np

import corpus_audio as A

SPTK_BIN = "/usr/libexec/sptk/bin"
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "Andy", "Annie", "Alicia", "Lee", "Michael",
                   "david", "linda", "paul", "steph", "john", "robert"]
FLITE_VOICES = ["slt", "rms", "awb", "kal16"]
CODEC2_MODES = ["3200", "2400", "1600", "1300"]
ESPEAK_DEFAULT_WPM = 175


def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise RuntimeError("%s: expected 16-bit output" % path)
        rate, channels = w.getframerate(), w.getnchannels()
        x = A.from_s16(w.readframes(w.getnframes()))
    return x.reshape(-1, channels).mean(axis=1), rate


def _speak(engine, voice, text, path, speed):
    """SPEED is words per minute for espeak-ng and a duration stretch for flite."""
    if engine == "flite":
        cmd = ["flite", "-voice", voice, "--setf", "duration_stretch=%.3f" % speed,
               "-t", text, "-o", path]
    else:
        cmd = ["espeak-ng", "-v", voice[0], "-p", str(voice[1]), "-s", str(int(speed)),
               "-w", path, text]
    A.run(cmd)
    return read_wav(path)


def tts(text, espeak_lang, english, target_seconds, rng, tmp_path):
    """Says TEXT in a seeded voice, re-spoken once at the speed that makes its speech last about as
    long as the real clip it copies (TARGET_SECONDS), so length does not give the class away."""
    if english and rng.random() < 0.35:
        engine, voice, speed = "flite", str(rng.choice(FLITE_VOICES)), 1.0
    else:
        variant = ESPEAK_VARIANTS[int(rng.integers(len(ESPEAK_VARIANTS)))]
        engine = "espeak-ng"
        voice = ("%s+%s" % (espeak_lang, variant), int(rng.integers(25, 76)))
        speed = ESPEAK_DEFAULT_WPM
    x, rate = _speak(engine, voice, text, tmp_path, speed)
    spoken = len(A.trim_silence(x, rate)) / rate
    want = target_seconds * rng.uniform(0.9, 1.1)
    if spoken > 0 and want > 0:
        if engine == "flite":
            speed = float(np.clip(want / spoken, 0.5, 2.0))
        else:
            speed = float(np.clip(ESPEAK_DEFAULT_WPM * spoken / want, 80, 450))
        x, rate = _speak(engine, voice, text, tmp_path, speed)
    os.unlink(tmp_path)
    return x, rate, "%s:%s" % (engine, voice if engine == "flite" else voice[0])


def _sptk_coder(rate, tmpdir):
    """Pitch (RAPT) and a 24th-order mel-cepstrum every 5 ms, pulse/noise excitation, MLSA
    synthesis. The mel-cepstrum is the FFT cepstrum warped by freqt (mcep gives the same envelope
    at 20 times the cost). 8 kHz speech gets a shorter frame, a lower order and its own alpha."""
    hop = rate // 200
    frame, order, alpha = (512, 24, 0.42) if rate == 16000 else (256, 20, 0.31)
    b = SPTK_BIN
    wav, f0, mc = (os.path.join(tmpdir, n) for n in ("sptk_in.f", "sptk_pitch.f", "sptk_mcep.f"))
    script = (
        f"set -eo pipefail; {b}/x2x +sf > {wav}; "
        f"{b}/pitch -a 0 -s {rate / 1000} -p {hop} -L 60 -H 400 {wav} > {f0}; "
        f"{b}/frame -l {frame} -p {hop} {wav} | {b}/window -l {frame} -L {frame} | "
        f"{b}/fftcep -l {frame} -m 40 -e 1 | {b}/freqt -m 40 -M {order} -A {alpha} > {mc}; "
        f"{b}/excite -p {hop} {f0} | {b}/mlsadf -m {order} -a {alpha} -p {hop} {mc}")

    def coder(pcm):
        y = np.frombuffer(A.run(["bash", "-c", script], pcm), dtype="<f4") / 32768.0
        return A.to_s16(y).tobytes()

    return coder


def sptk_vocode(clips, rate, tmpdir):
    return A.batch_through(clips, _sptk_coder(rate, tmpdir), rate, align=False)


def codec2_vocode(clips, rate, mode):
    """Codec2 works on 8 kHz speech: a 16 kHz speaker's clip comes back band-limited to 4 kHz."""
    narrow = A.resample_batch(clips, rate, 8000)
    coder = A.pipeline(["c2enc", mode, "-", "-"], ["c2dec", mode, "-", "-"])
    decoded = A.batch_through(narrow, coder, 8000, align=False, frame=320)
    return A.resample_batch(decoded, 8000, rate)


def check_tools():
    for tool in ["espeak-ng", "flite", "c2enc", "c2dec", "sox", "ffmpeg"]:
        if subprocess.run(["sh", "-c", "command -v " + tool], stdout=subprocess.DEVNULL).returncode:
            raise RuntimeError("%s: not found (scripts/install-deps.sh installs it)" % tool)
    if not os.path.exists(os.path.join(SPTK_BIN, "mlsadf")):
        raise RuntimeError("%s/mlsadf: not found (package sptk)" % SPTK_BIN)
