/* dataset: reading a data set's clip list (In-the-Wild meta.csv or an ASVspoof 2019 LA protocol)
 * and applying a split.csv to it. Owns the clip/speaker tables every later stage starts from.
 *
 * Contract used by prepare/split (keep these names and meanings):
 *  - labels: 0 bona fide ("bona-fide"), 1 spoof ("spoof");
 *  - splits: 0 train, 1 test, 2 holdout ("train", "test", "holdout"), -1 not yet assigned;
 *  - clip.file is the name as written in the meta/protocol; dataset_clip_path() gives the path. */
#ifndef ADFD_DATASET_H
#define ADFD_DATASET_H

#include <stddef.h>
#include <stdint.h>

enum { LABEL_BONAFIDE = 0, LABEL_SPOOF = 1 };
enum { SPLIT_UNASSIGNED = -1, SPLIT_TRAIN = 0, SPLIT_TEST = 1, SPLIT_HOLDOUT = 2 };
/* Where clip files live: DIR/FILE for a meta.csv, AUDIO/flac/FILE.flac for a protocol. */
enum { DATASET_META = 0, DATASET_PROTOCOL = 1 };
/* Fixed-length string sizes (with the NUL) used in HDF5 files; longer names are an input error. */
#define ADFD_FILE_MAX 256
#define ADFD_SPEAKER_MAX 128

typedef struct {
    char *file;  /* as named in the source, relative to the audio folder */
    int speaker; /* index into dataset.speakers */
    int label;   /* LABEL_* */
    int split;   /* SPLIT_* */
    int line;    /* line of the source file, for messages */
} clip_entry;

typedef struct {
    clip_entry *clips;
    int n_clips;
    char **speakers; /* in order of first appearance */
    int n_speakers;
    char audio_dir[4096];   /* clip files are resolved against this folder */
    char source_path[4096]; /* meta.csv or the protocol file */
    int format;             /* DATASET_META or DATASET_PROTOCOL */
} dataset;

/* DIR/meta.csv (file,speaker,label; RFC 4180; CRLF ok); every named file must exist in DIR.
 * Errors (-1 + adfd_fail) name the file and line. Columns may come in any order; extra columns
 * are ignored; blank lines are skipped; a UTF-8 byte-order mark is allowed. */
int dataset_load_meta(dataset *ds, const char *data_dir);
/* ASVspoof 2019 LA protocol "SPEAKER FILE - SYSTEM KEY"; audio in AUDIO_DIR/flac/FILE.flac.
 * Both loaders leave *ds empty on failure (dataset_free on it is harmless). */
int dataset_load_protocol(dataset *ds, const char *protocol_path, const char *audio_dir);
/* Reads split.csv (file,speaker,label,split) and sets clip.split; every clip must be listed with
 * the same speaker and label, and every listed file must be a clip of the data set. On failure
 * every clip is left SPLIT_UNASSIGNED. */
int dataset_apply_split(dataset *ds, const char *split_csv);
void dataset_clip_path(const dataset *ds, int clip, char *out, size_t out_size);
int dataset_find_speaker(const dataset *ds, const char *name); /* index or -1 */
const char *label_name(int label);                             /* "bona-fide" / "spoof" */
const char *split_name(int split);                             /* "train" / "test" / "holdout" */
int split_from_name(const char *name);                         /* SPLIT_* or -2 if unknown */
void dataset_free(dataset *ds);

#endif
