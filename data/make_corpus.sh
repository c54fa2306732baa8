#!/usr/bin/env bash
# Builds the demo corpus (In-the-Wild layout: OUT/meta.csv + OUT/<n>.wav, 16 kHz mono 16-bit) from
# Debian packages: real telephone prompts and words, text-to-speech and vocoder fakes of the same
# speakers, real-world conditions applied to both classes alike. Deterministic: a rebuild gives
# byte-identical files. See data/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: data/make_corpus.sh OUT [--limit N] [--jobs N] [--speakers REGEX]
  OUT        output folder (replaced if it holds a previous corpus; built as OUT.partial first)
  --limit N  about N clips per speaker (3/5 real, 2/5 fake), for tests
  --jobs N   worker processes (default: number of cores)
  --speakers REGEX  only the speakers whose name matches (Python regex), for tests
Environment: ADFD_CORPUS_CACHE  where fetched transcripts are kept (default ~/.cache/adfd-corpus)
             ADFD_SKIP_DEPS=1   do not call scripts/install-deps.sh
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="" limit=0 jobs="$(nproc)" speakers=""
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --limit) [ $# -ge 2 ] || { usage >&2; exit 2; }; limit="$2"; shift 2 ;;
        --jobs) [ $# -ge 2 ] || { usage >&2; exit 2; }; jobs="$2"; shift 2 ;;
        --speakers) [ $# -ge 2 ] || { usage >&2; exit 2; }; speakers="$2"; shift 2 ;;
        -*) echo "make_corpus.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) [ -z "$out" ] || { echo "make_corpus.sh: one output folder only" >&2; exit 2; }
           out="$1"; shift ;;
    esac
done
[ -n "$out" ] || { usage >&2; exit 2; }
for n in "$limit" "$jobs"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "make_corpus.sh: not a number: $n" >&2; exit 2; }
done

if [ "${ADFD_SKIP_DEPS:-0}" != 1 ]; then
    "$here/../scripts/install-deps.sh"
fi

# asterisk-core-sounds-es and -fr carry the Spanish and French transcripts, but they conflict with
# asterisk-prompt-es-co and asterisk-prompt-fr-armelle (both provide asterisk-prompt-es/-fr), so
# they are fetched with apt-get download and only their transcript is taken out.
cache="${ADFD_CORPUS_CACHE:-${HOME:-/tmp}/.cache/adfd-corpus}"
mkdir -p "$cache"
for lang in es fr; do
    txt="$cache/core-sounds-$lang.txt.gz"
    [ -s "$txt" ] && continue
    doc="/usr/share/doc/asterisk-core-sounds-$lang/core-sounds-$lang.txt.gz"
    if [ -s "$doc" ]; then cp "$doc" "$txt"; continue; fi
    dl="$(mktemp -d)"
    fetch() { (cd "$dl" && apt-get download -q "asterisk-core-sounds-$lang" >/dev/null 2>&1); }
    fetch || { apt-get update -qq && fetch; } ||
        { echo "make_corpus.sh: cannot fetch asterisk-core-sounds-$lang" >&2; exit 1; }
    dpkg-deb --fsys-tarfile "$dl"/asterisk-core-sounds-"$lang"_*.deb |
        tar -xO "./usr/share/doc/asterisk-core-sounds-$lang/core-sounds-$lang.txt.gz" > "$txt.tmp"
    mv "$txt.tmp" "$txt"
    rm -rf "$dl"
done

# Tools must not pick up a locale-dependent decimal comma or a user's espeak-ng settings.
export LC_ALL=C.UTF-8 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
exec /usr/bin/python3 "$here/corpus.py" "$out" --cache "$cache" --limit "$limit" --jobs "$jobs" \
    --speakers "$speakers"
