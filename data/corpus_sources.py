"""Real speech of the demo corpus: which Debian package files belong to which speaker, their
channel, language and transcript. Everything is listed with `dpkg -L` and sorted, so the same
packages give the same list on any machine."""
import gzip
import os
import re
import subprocess

ASTERISK_DOC = "/usr/share/doc/asterisk-core-sounds-%s/core-sounds-%s.txt.gz"
KTUBERLING = "/usr/share/ktuberling/sounds"

# espeak-ng language of each source language (Galician, Low German and Walloon have no espeak-ng
# voice: the closest one speaks their words).
ESPEAK_LANG = {
    "ca": "ca", "da": "da", "de": "de", "el": "el", "en": "en-us", "es": "es-419", "fi": "fi",
    "fr": "fr-fr", "ga": "ga", "gl": "pt", "it": "it", "lt": "lt", "nds": "de", "nl": "nl",
    "nn": "nb", "pt": "pt", "ro": "ro", "ru": "ru", "sl": "sl", "sr": "sr", "sv": "sv", "uk": "uk",
    "wa": "fr-fr",
}

# One speaker per person. Allison recorded both the US English and the Mexican Spanish prompts.
# Channels: "g722" 16 kHz G.722; "gsm" 8 kHz GSM 06.10; "pcm8k" 8 kHz PCM; "pcm" whatever rate the
# file has, stored losslessly; "vorbis"/"opus" lossy files at their own rate.
ASTERISK_SPEAKERS = [
    ("en_US_f_Allison", "g722", [("asterisk-core-sounds-en-g722", "en_US_f_Allison", "en"),
                                 ("asterisk-core-sounds-es-g722", "es_MX_f_Allison", "es")]),
    ("fr_CA_f_June", "g722", [("asterisk-core-sounds-fr-g722", "fr_CA_f_June", "fr")]),
    ("it_IT_m_Carlo", "g722", [("asterisk-core-sounds-it-g722", "it_IT_m_Carlo", "it")]),
    ("ru_RU_f_IvrvoiceRU", "g722", [("asterisk-core-sounds-ru-g722", "ru_RU_f_IvrvoiceRU", "ru")]),
    ("it_IT_f_Menardi", "pcm8k", [("asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi", "it")]),
    ("es_CO", "gsm", [("asterisk-prompt-es-co", "es", "es")]),
    ("fr_FR_f_Armelle", "gsm", [("asterisk-prompt-fr-armelle", "fr", "fr")]),
]


def package_files(package):
    out = subprocess.run(["dpkg", "-L", package], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if out.returncode != 0:
        raise RuntimeError("package %s is not installed (scripts/install-deps.sh installs it)"
                           % package)
    return sorted(p for p in out.stdout.decode().splitlines() if os.path.isfile(p))


def clean_transcript(text):
    """Drops bracketed descriptions ("[this is an error beep tone]", "dot [.]"); None if nothing
    speakable is left, so tones, beeps and silences are left out."""
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = " ".join(text.split())
    return text if re.search(r"\w", text) else None


def load_transcripts(lang, cache_dir):
    """name -> text from core-sounds-LANG.txt.gz (installed doc folder, else CACHE_DIR)."""
    path = ASTERISK_DOC % (lang, lang)
    if not os.path.exists(path):
        path = os.path.join(cache_dir, "core-sounds-%s.txt.gz" % lang)
    if not os.path.exists(path):
        raise RuntimeError("%s: transcript missing (make_corpus.sh fetches it)" % path)
    table = {}
    with gzip.open(path, "rt", encoding="utf-8-sig") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            table[name.strip()] = text.strip()
    return table


def asterisk_speakers(cache_dir):
    speakers = []
    for speaker, channel, parts in ASTERISK_SPEAKERS:
        items = []
        for package, folder, lang in parts:
            transcripts = load_transcripts(lang, cache_dir)
            root = "/usr/share/asterisk/sounds/%s/" % folder
            for path in package_files(package):
                if not path.startswith(root) or not re.search(r"\.(g722|gsm|wav)$", path):
                    continue
                name = os.path.splitext(path[len(root):])[0]
                if name.startswith("silence/"):
                    continue
                text = clean_transcript(transcripts.get(name, ""))
                if text is None:  # tones, beeps, and prompts with no transcript to check
                    continue
                items.append({"key": "%s/%s" % (folder, name), "path": path, "lang": lang,
                              "text": text})
        speakers.append({"name": speaker, "channel": channel, "items": items})
    return speakers


KTUBERLING_PREFIX = r"^(patata_|egypte?_|butterflies_|tux-)"


def ktuberling_word(stem, english_names):
    """The spoken word of a file when its name is that word in its own language; None when the
    file is named after an English sound name (many languages do that) or after a Tux."""
    words = re.sub(KTUBERLING_PREFIX, "", stem).replace("-", " ").replace("_", " ").split()
    if not words or any(w.lower() in english_names or not w.isalpha() for w in words):
        return None
    return " ".join(words)


def ktuberling_speakers():
    files = [p for p in package_files("ktuberling-data") if p.startswith(KTUBERLING + "/")]
    themes = {}
    for path in files:
        if path.endswith(".soundtheme"):
            lang = os.path.basename(path)[: -len(".soundtheme")]
            with open(path, encoding="utf-8") as f:
                themes[lang] = {os.path.basename(fname): name for name, fname in
                                re.findall(r'<sound\s+name="([^"]+)"\s+file="([^"]+)"', f.read())}
    english = [n for theme in themes.values() for n in theme.values()]
    english += [os.path.basename(p) for p in files if p.startswith(KTUBERLING + "/en/")]
    english_names = {w.lower() for n in english for w in re.split(r"[-_. ]", n) if w} | {"tux"}
    speakers = []
    # Only the languages of ESPEAK_LANG: sr@latin and the other Serbian folders repeat sr.
    for lang in sorted(ESPEAK_LANG):
        folder = "%s/%s/" % (KTUBERLING, lang)
        audio = [p for p in files if p.startswith(folder) and re.search(r"\.(ogg|wav|opus)$", p)]
        if not audio:
            continue
        items = []
        for path in audio:
            stem = os.path.splitext(os.path.basename(path))[0]
            text = stem.replace("_", " ") if lang == "en" else ktuberling_word(stem, english_names)
            items.append({"key": "ktuberling/%s/%s" % (lang, stem), "path": path, "lang": lang,
                          "text": text})
        ext = os.path.splitext(audio[0])[1]
        channel = {".ogg": "vorbis", ".opus": "opus", ".wav": "pcm"}[ext]
        speakers.append({"name": "ktuberling_" + lang, "channel": channel, "items": items})
    return speakers


def all_speakers(cache_dir):
    return asterisk_speakers(cache_dir) + ktuberling_speakers()
