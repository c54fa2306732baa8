/* dataset + csv: meta.csv (RFC 4180 quoting, UTF-8, CRLF), ASVspoof protocol, split.csv, and
 * every bad input the reader must refuse with "file:line: message". Expected values are written
 * by hand next to the inputs. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adfd/csv.h"
#include "adfd/dataset.h"
#include "adfd/util.h"
#include "check.h"

#define DIR "test_dataset_files"

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    fputs(text, fp);
    fclose(fp);
}

/* Touches the audio files the tables below name (the reader only checks that they exist). */
static void make_audio_files(void) {
    const char *names[] = {"a.wav", "b \"quoted\".wav", "c.wav", "d,e.wav", "sub/f.flac"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, DIR "/%s", names[i]);
        write_file(path, "x");
    }
}

static void test_meta_quoting(void) {
    /* BOM, CRLF, a quoted comma, doubled quotes, UTF-8 names, a blank line, no final newline. */
    write_file(DIR "/meta.csv", "\xEF\xBB\xBF"
                                "file,speaker,label\r\n"
                                "a.wav,\"Obama, Barack\",spoof\r\n"
                                "\"b \"\"quoted\"\".wav\",Zoë Ñandú,bona-fide\r\n"
                                "\r\n"
                                "\"d,e.wav\",\"Obama, Barack\",bona-fide\r\n"
                                "sub/f.flac,李小龍,spoof");
    dataset ds;
    CHECK(dataset_load_meta(&ds, DIR) == 0, "%s", adfd_error());
    CHECK(ds.n_clips == 4, "%d clips", ds.n_clips);
    CHECK(ds.n_speakers == 3, "%d speakers", ds.n_speakers);
    if (ds.n_clips != 4 || ds.n_speakers != 3) return;
    CHECK(!strcmp(ds.clips[0].file, "a.wav"), "%s", ds.clips[0].file);
    CHECK(!strcmp(ds.clips[1].file, "b \"quoted\".wav"), "%s", ds.clips[1].file);
    CHECK(!strcmp(ds.clips[2].file, "d,e.wav"), "%s", ds.clips[2].file);
    CHECK(!strcmp(ds.speakers[0], "Obama, Barack"), "%s", ds.speakers[0]);
    CHECK(!strcmp(ds.speakers[1], "Zo\xC3\xAB \xC3\x91\x61nd\xC3\xBA"), "%s", ds.speakers[1]);
    CHECK(!strcmp(ds.speakers[2], "\xE6\x9D\x8E\xE5\xB0\x8F\xE9\xBE\x8D"), "%s", ds.speakers[2]);
    int want_speaker[] = {0, 1, 0, 2}, want_label[] = {1, 0, 0, 1}, want_line[] = {2, 3, 5, 6};
    for (int i = 0; i < 4; i++) {
        CHECK(ds.clips[i].speaker == want_speaker[i], "clip %d speaker %d", i, ds.clips[i].speaker);
        CHECK(ds.clips[i].label == want_label[i], "clip %d label %d", i, ds.clips[i].label);
        CHECK(ds.clips[i].line == want_line[i], "clip %d line %d", i, ds.clips[i].line);
        CHECK(ds.clips[i].split == SPLIT_UNASSIGNED, "clip %d split", i);
    }
    char path[8192];
    dataset_clip_path(&ds, 3, path, sizeof path);
    CHECK(!strcmp(path, DIR "/sub/f.flac"), "%s", path);
    CHECK(dataset_find_speaker(&ds, "Obama, Barack") == 0, "find");
    CHECK(dataset_find_speaker(&ds, "Obama") == -1, "find missing");
    dataset_free(&ds);

    /* Columns in another order plus an extra column; LF line ends. */
    write_file(DIR "/meta.csv", "label,extra,file,speaker\nspoof,1,a.wav,A\nbona-fide,,c.wav,B\n");
    CHECK(dataset_load_meta(&ds, DIR) == 0, "%s", adfd_error());
    CHECK(ds.n_clips == 2 && ds.clips[1].label == LABEL_BONAFIDE &&
              !strcmp(ds.clips[1].file, "c.wav"),
          "reordered columns");
    CHECK(ds.n_speakers == 2 && !strcmp(ds.speakers[1], "B"), "reordered speakers");
    dataset_free(&ds);
}

/* Each bad meta.csv must fail with exactly this message prefix. */
static void expect_meta_error(const char *meta, const char *want) {
    write_file(DIR "/meta.csv", meta);
    dataset ds;
    int rc = dataset_load_meta(&ds, DIR);
    CHECK(rc == -1, "accepted a bad meta.csv (want '%s')", want);
    CHECK(strstr(adfd_error(), want) != NULL, "message '%s' lacks '%s'", adfd_error(), want);
    if (rc == 0) dataset_free(&ds);
}

static void test_meta_errors(void) {
    const char *H = "file,speaker,label\r\n";
    char buf[1024];
#define WITH_HEADER(rows) (snprintf(buf, sizeof buf, "%s%s", H, rows), buf)
    expect_meta_error(WITH_HEADER("a.wav,A,spoof\r\nc.wav,B,fake\r\n"),
                      DIR "/meta.csv:3: unknown label 'fake'");
    expect_meta_error(WITH_HEADER("a.wav,A,Spoof\r\n"), DIR "/meta.csv:2: unknown label 'Spoof'");
    expect_meta_error("file,speaker\r\na.wav,A\r\n", DIR "/meta.csv:1: missing column 'label'");
    expect_meta_error("file,label,speakr\r\na.wav,spoof,A\r\n",
                      DIR "/meta.csv:1: missing column 'speaker'");
    expect_meta_error(WITH_HEADER("a.wav,Obama, Barack,spoof\r\n"),
                      DIR "/meta.csv:2: expected 3 fields (as in the header), found 4");
    expect_meta_error(WITH_HEADER("a.wav,A,spoof\r\nc.wav,spoof\r\n"),
                      DIR "/meta.csv:3: expected 3 fields (as in the header), found 2");
    expect_meta_error(WITH_HEADER("a.wav,A,spoof\r\nnope.wav,A,spoof\r\n"),
                      DIR "/meta.csv:3: audio file 'nope.wav' not found (" DIR "/nope.wav");
    expect_meta_error(WITH_HEADER("a.wav,A,spoof\r\nc.wav,A,spoof\r\na.wav,B,bona-fide\r\n"),
                      DIR "/meta.csv:4: duplicate file 'a.wav' (first listed on line 2)");
    expect_meta_error("", DIR "/meta.csv:1: empty file");
    expect_meta_error("\r\n\r\n", DIR "/meta.csv:1: empty file");
    expect_meta_error(H, DIR "/meta.csv:2: no clips");
    /* The quote opened on line 3 runs to the end of the file (line 5). */
    expect_meta_error(WITH_HEADER("a.wav,A,spoof\r\nc.wav,\"Obama, Barack,spoof\r\nx\r\n"),
                      DIR "/meta.csv:5: unterminated quote (the quoted field opened on line 3");
    expect_meta_error(WITH_HEADER("a.wav,\"A\"x,spoof\r\n"),
                      DIR "/meta.csv:2: unexpected text after a closing quote");
    expect_meta_error(WITH_HEADER("a.wav,A\"x,spoof\r\n"),
                      DIR "/meta.csv:2: quote inside an unquoted field");
    expect_meta_error(WITH_HEADER("a.wav,A,spoof\r\nc.wav,Zo\xEB,spoof\r\n"),
                      DIR "/meta.csv:3: invalid UTF-8");
    expect_meta_error(WITH_HEADER(",A,spoof\r\n"), DIR "/meta.csv:2: empty file name");
#undef WITH_HEADER
    dataset ds;
    CHECK(dataset_load_meta(&ds, DIR "/no-such-dir") == -1, "missing folder");
    CHECK(strstr(adfd_error(), DIR "/no-such-dir/meta.csv: cannot open") != NULL, "%s",
          adfd_error());
}

static void test_protocol(void) {
    mkdir(DIR "/la", 0777);
    mkdir(DIR "/la/flac", 0777);
    write_file(DIR "/la/flac/LA_T_1138215.flac", "x");
    write_file(DIR "/la/flac/LA_T_1138216.flac", "x");
    write_file(DIR "/la/flac/LA_T_2000001.flac", "x");
    write_file(DIR "/proto.txt", "LA_0079 LA_T_1138215 - - bonafide\n"
                                 "LA_0079 LA_T_1138216 - A01 spoof\r\n"
                                 "\n"
                                 "LA_0080\tLA_T_2000001  -  A02 spoof\n");
    dataset ds;
    CHECK(dataset_load_protocol(&ds, DIR "/proto.txt", DIR "/la") == 0, "%s", adfd_error());
    CHECK(ds.n_clips == 3 && ds.n_speakers == 2, "%d clips %d speakers", ds.n_clips, ds.n_speakers);
    if (ds.n_clips == 3) {
        CHECK(ds.clips[0].label == LABEL_BONAFIDE && ds.clips[1].label == LABEL_SPOOF, "labels");
        CHECK(ds.clips[2].speaker == 1 && !strcmp(ds.speakers[1], "LA_0080"), "speaker");
        CHECK(ds.clips[2].line == 4, "line %d", ds.clips[2].line);
        CHECK(!strcmp(ds.clips[1].file, "LA_T_1138216"), "%s", ds.clips[1].file);
        char path[8192];
        dataset_clip_path(&ds, 1, path, sizeof path);
        CHECK(!strcmp(path, DIR "/la/flac/LA_T_1138216.flac"), "%s", path);
    }
    dataset_free(&ds);
    struct {
        const char *text, *want;
    } bad[] = {
        {"LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1138216 - A01\n",
         DIR "/proto.txt:2: expected 5 fields"},
        {"LA_0079 LA_T_1138215 - - genuine\n", DIR "/proto.txt:1: unknown key 'genuine'"},
        {"LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1138215 - - bonafide\n",
         DIR "/proto.txt:2: duplicate file 'LA_T_1138215' (first listed on line 1)"},
        {"LA_0079 LA_T_9 - - bonafide\n",
         DIR "/proto.txt:1: audio file 'LA_T_9' not found (" DIR "/la/flac/LA_T_9.flac"},
        {"", DIR "/proto.txt:1: empty protocol file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(DIR "/proto.txt", bad[i].text);
        int rc = dataset_load_protocol(&ds, DIR "/proto.txt", DIR "/la");
        CHECK(rc == -1, "accepted bad protocol %zu", i);
        CHECK(strstr(adfd_error(), bad[i].want) != NULL, "'%s' lacks '%s'", adfd_error(),
              bad[i].want);
        if (rc == 0) dataset_free(&ds);
    }
}

static void expect_split(dataset *ds, const char *text, const char *want_error) {
    write_file(DIR "/split.csv", text);
    int rc = dataset_apply_split(ds, DIR "/split.csv");
    if (!want_error) {
        CHECK(rc == 0, "%s", adfd_error());
        return;
    }
    CHECK(rc == -1, "accepted a bad split.csv (want '%s')", want_error);
    CHECK(strstr(adfd_error(), want_error) != NULL, "'%s' lacks '%s'", adfd_error(), want_error);
    for (int i = 0; i < ds->n_clips; i++)
        CHECK(ds->clips[i].split == SPLIT_UNASSIGNED, "clip %d left assigned after an error", i);
}

static void test_apply_split(void) {
    write_file(DIR "/meta.csv", "file,speaker,label\n"
                                "a.wav,\"Obama, Barack\",spoof\n"
                                "c.wav,B,bona-fide\n"
                                "\"d,e.wav\",\"Obama, Barack\",bona-fide\n");
    dataset ds;
    CHECK(dataset_load_meta(&ds, DIR) == 0, "%s", adfd_error());
    expect_split(&ds,
                 "file,speaker,label,split\r\n\"d,e.wav\",\"Obama, Barack\",bona-fide,holdout\r\n"
                 "a.wav,\"Obama, Barack\",spoof,holdout\r\nc.wav,B,bona-fide,test\r\n",
                 NULL);
    CHECK(ds.clips[0].split == SPLIT_HOLDOUT && ds.clips[1].split == SPLIT_TEST &&
              ds.clips[2].split == SPLIT_HOLDOUT,
          "splits %d %d %d", ds.clips[0].split, ds.clips[1].split, ds.clips[2].split);
    const char *H = "file,speaker,label,split\n";
    char buf[1024];
#define WITH_HEADER(rows) (snprintf(buf, sizeof buf, "%s%s", H, rows), buf)
    expect_split(&ds, WITH_HEADER("a.wav,\"Obama, Barack\",spoof,train\nc.wav,B,bona-fide,test\n"),
                 DIR "/split.csv: clip 'd,e.wav' (" DIR "/meta.csv:4) is not listed");
    expect_split(&ds, WITH_HEADER("x.wav,B,spoof,train\n"),
                 DIR "/split.csv:2: 'x.wav' is not a clip of " DIR "/meta.csv");
    expect_split(&ds, WITH_HEADER("c.wav,C,bona-fide,test\n"),
                 DIR "/split.csv:2: 'c.wav' has speaker 'C' here but 'B'");
    expect_split(&ds, WITH_HEADER("c.wav,B,spoof,test\n"),
                 DIR "/split.csv:2: 'c.wav' has label 'spoof' here but 'bona-fide'");
    expect_split(&ds, WITH_HEADER("c.wav,B,bona-fide,dev\n"),
                 DIR "/split.csv:2: unknown split 'dev'");
    expect_split(&ds, WITH_HEADER("c.wav,B,bona-fide,test\nc.wav,B,bona-fide,test\n"),
                 DIR "/split.csv:3: duplicate file 'c.wav' (first listed on line 2)");
    expect_split(&ds, "file,speaker,label\nc.wav,B,bona-fide\n",
                 DIR "/split.csv:1: missing column 'split'");
    expect_split(&ds, "", DIR "/split.csv:1: empty file");
#undef WITH_HEADER
    dataset_free(&ds);
}

static void test_write_field(void) {
    FILE *fp = fopen(DIR "/fields.csv", "wb");
    const char *fields[] = {"plain", "Obama, Barack", "say \"hi\"", "two\nlines", "Zoë", ""};
    for (int i = 0; i < 6; i++) {
        if (i) fputc(',', fp);
        csv_write_field(fp, fields[i]);
    }
    fputs("\r\n", fp);
    fclose(fp);
    char *text;
    size_t size;
    CHECK(text_file_read(DIR "/fields.csv", &text, &size) == 0, "%s", adfd_error());
    const char *want = "plain,\"Obama, Barack\",\"say \"\"hi\"\"\",\"two\nlines\",Zoë,\r\n";
    CHECK(!strcmp(text, want), "wrote '%s'", text);
    free(text);
    csv_reader r;
    CHECK(csv_open(&r, DIR "/fields.csv") == 0, "%s", adfd_error());
    CHECK(csv_next(&r) == 1 && r.n_fields == 6, "%d fields", r.n_fields);
    for (int i = 0; i < 6 && i < r.n_fields; i++)
        CHECK(!strcmp(r.fields[i], fields[i]), "field %d '%s'", i, r.fields[i]);
    CHECK(csv_next(&r) == 0, "one record");
    csv_close(&r);
}

int main(void) {
    mkdir(DIR, 0777);
    mkdir(DIR "/sub", 0777);
    make_audio_files();
    test_meta_quoting();
    test_meta_errors();
    test_protocol();
    test_apply_split();
    test_write_field();
    CHECK(!strcmp(label_name(LABEL_SPOOF), "spoof") && !strcmp(label_name(0), "bona-fide"), "lbl");
    CHECK(split_from_name("holdout") == SPLIT_HOLDOUT && split_from_name("x") == -2, "split name");
    return check_exit_status("test_dataset");
}
