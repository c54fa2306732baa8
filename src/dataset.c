/* dataset: meta.csv / ASVspoof 2019 LA protocol readers, split.csv reader. */
#include "adfd/dataset.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adfd/csv.h"
#include "adfd/util.h"

/* Open-addressing hash from a name to an index, so that duplicates and speakers are found in
 * constant time on data sets of 100k clips. Keys are borrowed, not copied. */
typedef struct {
    const char **keys;
    int *values;
    size_t capacity; /* power of two, at least twice the count */
    size_t count;
} name_index;

static uint64_t name_hash(const char *s) {
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void name_index_init(name_index *ix) {
    ix->capacity = 64;
    ix->count = 0;
    ix->keys = callocCheck(ix->capacity, sizeof *ix->keys);
    ix->values = callocCheck(ix->capacity, sizeof *ix->values);
}

static void name_index_free(name_index *ix) {
    free(ix->keys);
    free(ix->values);
}

static size_t name_index_slot(const name_index *ix, const char *key) {
    size_t i = (size_t)name_hash(key) & (ix->capacity - 1);
    while (ix->keys[i] && strcmp(ix->keys[i], key))
        i = (i + 1) & (ix->capacity - 1);
    return i;
}

static int name_index_find(const name_index *ix, const char *key) {
    size_t i = name_index_slot(ix, key);
    return ix->keys[i] ? ix->values[i] : -1;
}

static void name_index_put(name_index *ix, const char *key, int value) {
    if (2 * (ix->count + 1) > ix->capacity) {
        name_index bigger = {callocCheck(2 * ix->capacity, sizeof(char *)),
                             callocCheck(2 * ix->capacity, sizeof(int)), 2 * ix->capacity, 0};
        for (size_t i = 0; i < ix->capacity; i++)
            if (ix->keys[i]) name_index_put(&bigger, ix->keys[i], ix->values[i]);
        name_index_free(ix);
        *ix = bigger;
    }
    size_t i = name_index_slot(ix, key);
    if (!ix->keys[i]) ix->count++;
    ix->keys[i] = key;
    ix->values[i] = value;
}

const char *label_name(int label) {
    return label == LABEL_SPOOF ? "spoof" : "bona-fide";
}

const char *split_name(int split) {
    switch (split) {
    case SPLIT_TRAIN:
        return "train";
    case SPLIT_TEST:
        return "test";
    case SPLIT_HOLDOUT:
        return "holdout";
    default:
        return "unassigned";
    }
}

int split_from_name(const char *name) {
    for (int s = SPLIT_TRAIN; s <= SPLIT_HOLDOUT; s++)
        if (!strcmp(name, split_name(s))) return s;
    return -2;
}

static int label_from_meta(const char *text) {
    if (!strcmp(text, "spoof")) return LABEL_SPOOF;
    if (!strcmp(text, "bona-fide")) return LABEL_BONAFIDE;
    return -1;
}

int dataset_find_speaker(const dataset *ds, const char *name) {
    for (int i = 0; i < ds->n_speakers; i++)
        if (!strcmp(ds->speakers[i], name)) return i;
    return -1;
}

void dataset_clip_path(const dataset *ds, int clip, char *out, size_t out_size) {
    if (ds->format == DATASET_PROTOCOL) {
        char name[ADFD_FILE_MAX + 16];
        snprintf(name, sizeof name, "flac/%s.flac", ds->clips[clip].file);
        path_join(out, out_size, ds->audio_dir, name);
    } else {
        path_join(out, out_size, ds->audio_dir, ds->clips[clip].file);
    }
}

void dataset_free(dataset *ds) {
    for (int i = 0; i < ds->n_clips; i++)
        free(ds->clips[i].file);
    for (int i = 0; i < ds->n_speakers; i++)
        free(ds->speakers[i]);
    free(ds->clips);
    free(ds->speakers);
    memset(ds, 0, sizeof *ds);
}

/* Builder state while reading: the tables grow, and two indexes catch duplicate files and find
 * speakers. */
typedef struct {
    dataset *ds;
    int clips_capacity, speakers_capacity;
    name_index files, speakers;
} dataset_builder;

static void builder_init(dataset_builder *b, dataset *ds) {
    memset(b, 0, sizeof *b);
    b->ds = ds;
    name_index_init(&b->files);
    name_index_init(&b->speakers);
}

static void builder_free(dataset_builder *b) {
    name_index_free(&b->files);
    name_index_free(&b->speakers);
}

/* Adds one clip after checking it; messages are "SOURCE:LINE: ...". */
static int builder_add(dataset_builder *b, int line, const char *file, const char *speaker,
                       int label) {
    dataset *ds = b->ds;
    const char *src = ds->source_path;
    if (!file[0]) return adfd_fail("%s:%d: empty file name", src, line);
    if (!speaker[0]) return adfd_fail("%s:%d: empty speaker name", src, line);
    if (strlen(file) >= ADFD_FILE_MAX)
        return adfd_fail("%s:%d: file name longer than %d bytes", src, line, ADFD_FILE_MAX - 1);
    if (strlen(speaker) >= ADFD_SPEAKER_MAX)
        return adfd_fail("%s:%d: speaker name longer than %d bytes", src, line,
                         ADFD_SPEAKER_MAX - 1);
    int first = name_index_find(&b->files, file);
    if (first >= 0)
        return adfd_fail("%s:%d: duplicate file '%s' (first listed on line %d)", src, line, file,
                         ds->clips[first].line);
    if (ds->n_clips == b->clips_capacity) {
        b->clips_capacity = b->clips_capacity ? 2 * b->clips_capacity : 1024;
        clip_entry *grown = realloc(ds->clips, (size_t)b->clips_capacity * sizeof *grown);
        if (!grown) adfd_die(__FILE__, __LINE__, "out of memory reading %s", src);
        ds->clips = grown;
    }
    clip_entry *c = &ds->clips[ds->n_clips];
    *c = (clip_entry){adfd_strdup(file), -1, label, SPLIT_UNASSIGNED, line};
    ds->n_clips++; /* owned by ds from here on, so dataset_free releases it on any error */
    char path[8192];
    dataset_clip_path(ds, ds->n_clips - 1, path, sizeof path);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return adfd_fail("%s:%d: audio file '%s' not found (%s: %s)", src, line, file, path,
                         stat(path, &st) != 0 ? strerror(errno) : "not a regular file");
    name_index_put(&b->files, c->file, ds->n_clips - 1);
    int s = name_index_find(&b->speakers, speaker);
    if (s < 0) {
        if (ds->n_speakers == b->speakers_capacity) {
            b->speakers_capacity = b->speakers_capacity ? 2 * b->speakers_capacity : 64;
            char **grown = realloc(ds->speakers, (size_t)b->speakers_capacity * sizeof *grown);
            if (!grown) adfd_die(__FILE__, __LINE__, "out of memory reading %s", src);
            ds->speakers = grown;
        }
        s = ds->n_speakers++;
        ds->speakers[s] = adfd_strdup(speaker);
        name_index_put(&b->speakers, ds->speakers[s], s);
    }
    c->speaker = s;
    return 0;
}

static int set_paths(dataset *ds, const char *source, const char *audio_dir) {
    memset(ds, 0, sizeof *ds);
    if (strlen(source) >= sizeof ds->source_path || strlen(audio_dir) >= sizeof ds->audio_dir)
        return adfd_fail("%s: path too long", source);
    strcpy(ds->source_path, source);
    strcpy(ds->audio_dir, audio_dir);
    return 0;
}

/* Finds the named columns in a header record; -1 + message naming the first one missing. */
static int find_columns(const csv_reader *r, const char *const *names, int n, int *columns) {
    for (int k = 0; k < n; k++) {
        columns[k] = -1;
        for (int f = 0; f < r->n_fields; f++) {
            if (strcmp(r->fields[f], names[k])) continue;
            if (columns[k] >= 0)
                return adfd_fail("%s:%d: column '%s' appears twice", r->path, r->record_line,
                                 names[k]);
            columns[k] = f;
        }
    }
    for (int k = 0; k < n; k++) {
        if (columns[k] >= 0) continue;
        char wanted[256] = "", found[1024] = "";
        for (int j = 0; j < n; j++)
            snprintf(wanted + strlen(wanted), sizeof wanted - strlen(wanted), "%s%s", j ? "," : "",
                     names[j]);
        for (int f = 0; f < r->n_fields; f++)
            snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s", f ? "," : "",
                     r->fields[f]);
        return adfd_fail("%s:%d: missing column '%s' (the header must name %s; it is '%s')",
                         r->path, r->record_line, names[k], wanted, found);
    }
    return 0;
}

/* Reads the header of a CSV table whose first line must name the given columns. */
static int read_header(csv_reader *r, const char *const *names, int n, int *columns) {
    int got = csv_next(r);
    if (got < 0) return -1;
    if (got == 0) {
        char wanted[256] = "";
        for (int j = 0; j < n; j++)
            snprintf(wanted + strlen(wanted), sizeof wanted - strlen(wanted), "%s%s", j ? "," : "",
                     names[j]);
        return adfd_fail("%s:1: empty file (expected the header '%s' and one row per clip)",
                         r->path, wanted);
    }
    return find_columns(r, names, n, columns);
}

static int check_field_count(const csv_reader *r, int want) {
    if (r->n_fields == want) return 0;
    return adfd_fail("%s:%d: expected %d fields (as in the header), found %d (a field holding a "
                     "comma must be quoted: \"Obama, Barack\")",
                     r->path, r->record_line, want, r->n_fields);
}

int dataset_load_meta(dataset *ds, const char *data_dir) {
    char source[4096 + 16];
    path_join(source, sizeof source, data_dir, "meta.csv");
    if (set_paths(ds, source, data_dir) != 0) return -1;
    ds->format = DATASET_META;
    csv_reader r;
    if (csv_open(&r, source) != 0) return -1;
    static const char *const names[] = {"file", "speaker", "label"};
    int col[3];
    dataset_builder b;
    builder_init(&b, ds);
    int rc = read_header(&r, names, 3, col);
    int header_fields = r.n_fields;
    while (rc == 0) {
        int got = csv_next(&r);
        if (got <= 0) {
            rc = got;
            break;
        }
        if ((rc = check_field_count(&r, header_fields)) != 0) break;
        int label = label_from_meta(r.fields[col[2]]);
        if (label < 0) {
            rc = adfd_fail("%s:%d: unknown label '%s' (expected 'spoof' or 'bona-fide')", source,
                           r.record_line, r.fields[col[2]]);
            break;
        }
        rc = builder_add(&b, r.record_line, r.fields[col[0]], r.fields[col[1]], label);
    }
    if (rc == 0 && ds->n_clips == 0)
        rc = adfd_fail("%s:%d: no clips: the file has a header but no rows", source, r.line);
    builder_free(&b);
    csv_close(&r);
    if (rc != 0) dataset_free(ds);
    return rc;
}

/* Splits a protocol line into whitespace-separated tokens (in place); returns how many. */
static int split_tokens(char *line, char **tokens, int max_tokens) {
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p) return n;
        if (n < max_tokens) tokens[n] = p;
        n++;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p) *p++ = '\0';
    }
}

int dataset_load_protocol(dataset *ds, const char *protocol_path, const char *audio_dir) {
    if (set_paths(ds, protocol_path, audio_dir) != 0) return -1;
    ds->format = DATASET_PROTOCOL;
    char *text;
    size_t size;
    if (text_file_read(protocol_path, &text, &size) != 0) return -1;
    dataset_builder b;
    builder_init(&b, ds);
    int rc = 0, line = 0;
    for (char *next = text; rc == 0 && next && *next;) {
        char *this_line = next;
        next = strchr(next, '\n');
        if (next) *next++ = '\0';
        line++;
        char *tok[5];
        int n = split_tokens(this_line, tok, 5);
        if (n == 0) continue;
        if (n != 5) {
            rc = adfd_fail("%s:%d: expected 5 fields 'SPEAKER FILE - SYSTEM KEY' "
                           "(LA_0079 LA_T_1138215 - - bonafide), found %d",
                           protocol_path, line, n);
            break;
        }
        int label = !strcmp(tok[4], "spoof")      ? LABEL_SPOOF
                    : !strcmp(tok[4], "bonafide") ? LABEL_BONAFIDE
                                                  : -1;
        if (label < 0) {
            rc = adfd_fail("%s:%d: unknown key '%s' (expected 'bonafide' or 'spoof')",
                           protocol_path, line, tok[4]);
            break;
        }
        rc = builder_add(&b, line, tok[1], tok[0], label);
    }
    if (rc == 0 && ds->n_clips == 0)
        rc = adfd_fail("%s:%d: empty protocol file (no 'SPEAKER FILE - SYSTEM KEY' lines)",
                       protocol_path, line + 1);
    builder_free(&b);
    free(text);
    if (rc != 0) dataset_free(ds);
    return rc;
}

int dataset_apply_split(dataset *ds, const char *split_csv) {
    for (int i = 0; i < ds->n_clips; i++)
        ds->clips[i].split = SPLIT_UNASSIGNED;
    csv_reader r;
    if (csv_open(&r, split_csv) != 0) return -1;
    name_index files;
    name_index_init(&files);
    for (int i = 0; i < ds->n_clips; i++)
        name_index_put(&files, ds->clips[i].file, i);
    int *listed_on = callocCheck((size_t)ds->n_clips, sizeof(int));
    static const char *const names[] = {"file", "speaker", "label", "split"};
    int col[4];
    int rc = read_header(&r, names, 4, col);
    int header_fields = r.n_fields;
    while (rc == 0) {
        int got = csv_next(&r);
        if (got <= 0) {
            rc = got;
            break;
        }
        if ((rc = check_field_count(&r, header_fields)) != 0) break;
        const char *file = r.fields[col[0]], *speaker = r.fields[col[1]];
        const char *label = r.fields[col[2]], *split = r.fields[col[3]];
        int c = name_index_find(&files, file);
        int s = split_from_name(split);
        if (c < 0)
            rc = adfd_fail("%s:%d: '%s' is not a clip of %s", split_csv, r.record_line, file,
                           ds->source_path);
        else if (listed_on[c])
            rc = adfd_fail("%s:%d: duplicate file '%s' (first listed on line %d)", split_csv,
                           r.record_line, file, listed_on[c]);
        else if (strcmp(speaker, ds->speakers[ds->clips[c].speaker]))
            rc = adfd_fail("%s:%d: '%s' has speaker '%s' here but '%s' in %s", split_csv,
                           r.record_line, file, speaker, ds->speakers[ds->clips[c].speaker],
                           ds->source_path);
        else if (strcmp(label, label_name(ds->clips[c].label)))
            rc = adfd_fail("%s:%d: '%s' has label '%s' here but '%s' in %s", split_csv,
                           r.record_line, file, label, label_name(ds->clips[c].label),
                           ds->source_path);
        else if (s < 0)
            rc = adfd_fail("%s:%d: unknown split '%s' (expected train, test or holdout)", split_csv,
                           r.record_line, split);
        else {
            ds->clips[c].split = s;
            listed_on[c] = r.record_line;
        }
    }
    for (int i = 0; rc == 0 && i < ds->n_clips; i++)
        if (!listed_on[i])
            rc = adfd_fail("%s: clip '%s' (%s:%d) is not listed: the split was made for another "
                           "data set",
                           split_csv, ds->clips[i].file, ds->source_path, ds->clips[i].line);
    if (rc != 0)
        for (int i = 0; i < ds->n_clips; i++)
            ds->clips[i].split = SPLIT_UNASSIGNED;
    free(listed_on);
    name_index_free(&files);
    csv_close(&r);
    return rc;
}
