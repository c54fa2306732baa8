/* analyze_clip against references built from the lower layers by hand: the mel spectrogram of the
 * whole (trimmed) signal sliced at every window offset and scored one window at a time, the
 * window times computed from the known layout of a synthetic clip, the clip score from the
 * aggregate formulas, and the top-window selection on hand-made scores. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adfd/analyze.h"
#include "adfd/audio.h"
#include "adfd/util.h"
#include "check.h"

static const double PI = 3.14159265358979323846;

/* Speech-like test signal: two gliding tones under an on/off envelope plus noise. */
static float *synth_clip(int64_t n, uint64_t seed, float level) {
    float *x = mallocCheck(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / ADFD_SAMPLE_RATE;
        double envelope = 0.5 + 0.5 * sin(2 * PI * 3.0 * t);
        double tone = sin(2 * PI * (220 + 40 * t) * t) + 0.5 * sin(2 * PI * 1375 * t);
        x[i] = level * (float)(envelope * tone + 0.3 * (rng_uniform(seed, 0, i) - 0.5));
    }
    return x;
}

/* Scores of windows of cf frames at hop frames over the spectrogram of signal[len], padded on the
 * right with `silence` to a multiple of cf frames (the seed rule) when pad is set. */
static int reference_scores(cnn_model *m, mel_frontend *fe, const float *signal, int64_t len,
                            int hop, float **scores, int32_t **offsets) {
    const feature_params *p = &m->features;
    int cf = p->chunk_frames, nm = p->n_mels;
    int64_t frames = mel_frontend_frames(fe, len);
    int64_t padded = p->repeat_pad ? frames : (frames + cf - 1) / cf * cf;
    float *mel = mallocCheck(sizeof(float) * nm * frames);
    mel_spectrogram(fe, signal, len, mel);
    int count = (int)((padded - cf) / hop + 1);
    int tail = (int64_t)(count - 1) * hop + cf < padded;
    int total = count + tail;
    *scores = mallocCheck(sizeof(float) * total);
    *offsets = mallocCheck(sizeof(int32_t) * total);
    float *window = mallocCheck(sizeof(float) * nm * cf);
    for (int w = 0; w < total; w++) {
        int64_t o = w < count ? (int64_t)w * hop : padded - cf;
        for (int b = 0; b < nm; b++)
            for (int t = 0; t < cf; t++)
                window[b * cf + t] =
                    o + t < frames ? mel[b * frames + o + t] : (p->log_db ? -100.0f : 0.0f);
        (*offsets)[w] = (int32_t)o;
        model_predict(m, window, 1, &(*scores)[w]);
    }
    free(window);
    free(mel);
    return total;
}

static void compare_with_reference(cnn_model *m, const float *x, int64_t n, int64_t begin,
                                   int64_t end, int hop, const char *what) {
    analyzer az;
    CHECK(analyzer_init(&az, m, hop, NULL) == 0, "%s: %s", what, adfd_error());
    analyze_result r;
    CHECK(analyze_clip(&az, x, n, &r) == 0, "%s: %s", what, adfd_error());
    float *ref;
    int32_t *ref_off;
    int n_ref = reference_scores(m, az.frontend, x + begin, end - begin, hop, &ref, &ref_off);
    CHECK(r.n_windows == n_ref, "%s: %d windows, reference %d", what, r.n_windows, n_ref);
    double fs = (double)m->features.hop_length / m->features.sample_rate;
    CHECK_CLOSE(r.trim_seconds, (double)begin / 16000, 0, 1e-9);
    CHECK_CLOSE(r.seconds, (double)n / 16000, 0, 1e-9);
    double sum_sq = 0;
    for (int i = 0; i < r.n_windows && i < n_ref; i++) {
        CHECK(r.windows[i].offset_frames == ref_off[i], "%s: window %d offset %d, want %d", what, i,
              r.windows[i].offset_frames, ref_off[i]);
        CHECK_CLOSE(r.windows[i].score, ref[i], 1e-5, 1e-6);
        double start = (double)begin / 16000 + ref_off[i] * fs;
        CHECK_CLOSE(r.windows[i].start_seconds, start, 0, 1e-9);
        CHECK_CLOSE(r.windows[i].end_seconds, fmin(start + 80 * fs, (double)n / 16000), 0, 1e-9);
        sum_sq += (double)ref[i] * ref[i];
    }
    CHECK_CLOSE(r.clip_score, sqrt(sum_sq / n_ref), 1e-5, 1e-7);
    CHECK(r.is_spoof == (r.clip_score >= m->threshold), "%s: verdict", what);
    printf("%s: %d windows, clip score %.6f, first window %.6f\n", what, r.n_windows, r.clip_score,
           r.n_windows ? r.windows[0].score : 0);
    free(ref);
    free(ref_off);
    analyze_result_free(&r);
    analyzer_free(&az);
}

static void make_model(cnn_model *m, const char *preset, uint64_t seed) {
    feature_params fp;
    feature_params_preset(&fp, preset);
    CHECK(model_create(m, 3, 0.2f, &fp, seed) == 0, "model_create: %s", adfd_error());
    for (int b = 0; b < ADFD_N_MELS; b++) {
        m->band_mean[b] = fp.log_db ? -55.0f + 0.1f * b : 0.0f;
        m->band_std[b] = fp.log_db ? 18.0f : 1.0f;
    }
    m->threshold = 0.5f;
    snprintf(m->aggregate, sizeof m->aggregate, "rms");
}

static void test_seed_preset(void) {
    cnn_model m;
    make_model(&m, "seed", 11);
    int64_t n = 16000 * 3 + 3700; /* 3.23 s: a zero-padded tail for the seed rule */
    float *x = synth_clip(n, 5, 0.2f);
    compare_with_reference(&m, x, n, 0, n, 40, "seed, hop 40");
    compare_with_reference(&m, x, n, 0, n, 80, "seed, hop 80 (eval's chunks)");
    compare_with_reference(&m, x, n, 0, n, 27, "seed, hop 27");
    free(x);
    model_free(&m);
}

/* Leading 0.7 s and trailing 0.3 s of silence: the default preset trims them (blocks of 200
 * samples), and the window times must still count from the start of the decoded clip. */
static void test_default_preset_trimmed(void) {
    cnn_model m;
    make_model(&m, "default", 12);
    int64_t lead = 11200, body = 16000 * 2 + 5000, trail = 4800, n = lead + body + trail;
    float *x = callocCheck(n, sizeof(float));
    float *speech = synth_clip(body, 6, 0.3f);
    memcpy(x + lead, speech, sizeof(float) * body);
    compare_with_reference(&m, x, n, lead, lead + body, 40, "default, trimmed, hop 40");
    free(speech);
    free(x);
    model_free(&m);
}

static void test_short_clips(void) {
    const char *presets[] = {"seed", "default"};
    for (int i = 0; i < 2; i++) {
        cnn_model m;
        make_model(&m, presets[i], 13);
        analyzer az;
        analyzer_init(&az, &m, 40, NULL);
        int64_t n = 6400; /* 0.4 s */
        float *x = synth_clip(n, 7, 0.2f);
        analyze_result r;
        CHECK(analyze_clip(&az, x, n, &r) == 0, "short %s: %s", presets[i], adfd_error());
        CHECK(r.padded == 1, "short %s clip flagged as padded", presets[i]);
        CHECK(r.n_windows == 1, "short %s clip: %d windows", presets[i], r.n_windows);
        CHECK_CLOSE(r.windows[0].start_seconds, 0.0, 0, 1e-12);
        CHECK_CLOSE(r.windows[0].end_seconds, 0.4, 0, 1e-9);
        analyze_result_free(&r);
        /* exactly one window's worth of samples is not padded */
        int64_t full = 79 * 200;
        float *y = synth_clip(full, 8, 0.2f);
        CHECK(analyze_clip(&az, y, full, &r) == 0, "%s", adfd_error());
        CHECK(r.padded == 0 && r.n_windows == 1, "%s: 79 hops: padded %d, %d windows", presets[i],
              r.padded, r.n_windows);
        analyze_result_free(&r);
        free(y);
        free(x);
        analyzer_free(&az);
        model_free(&m);
    }
}

static void test_aggregates_and_errors(void) {
    cnn_model m;
    make_model(&m, "seed", 14);
    int64_t n = 16000 * 4;
    float *x = synth_clip(n, 9, 0.25f);
    const char *names[] = {"rms", "mean", "max"};
    for (int a = 0; a < 3; a++) {
        analyzer az;
        CHECK(analyzer_init(&az, &m, 40, names[a]) == 0, "%s", adfd_error());
        analyze_result r;
        analyze_clip(&az, x, n, &r);
        double sum = 0, sum_sq = 0, mx = 0;
        for (int i = 0; i < r.n_windows; i++) {
            sum += r.windows[i].score;
            sum_sq += (double)r.windows[i].score * r.windows[i].score;
            mx = fmax(mx, r.windows[i].score);
        }
        double want = a == 0 ? sqrt(sum_sq / r.n_windows) : a == 1 ? sum / r.n_windows : mx;
        CHECK_CLOSE(r.clip_score, want, 1e-5, 1e-7);
        analyze_result_free(&r);
        analyzer_free(&az);
    }
    analyzer az;
    CHECK(analyzer_init(&az, &m, 40, "median") != 0, "unknown aggregate refused");
    CHECK(strstr(adfd_error(), "median") != NULL, "message names it: %s", adfd_error());
    CHECK(analyzer_init(&az, &m, 0, NULL) != 0, "hop 0 refused");
    CHECK(analyzer_init(&az, &m, 40, NULL) == 0, "%s", adfd_error());
    analyze_result r;
    CHECK(analyze_clip(&az, x, 0, &r) != 0, "an empty clip is an error");
    analyzer_free(&az);
    CHECK(analyze_hop_frames(&m.features, 0.5) == 40, "0.5 s = 40 frames");
    CHECK(analyze_hop_frames(&m.features, 0.33) == 26, "0.33 s rounds to 26 frames");
    CHECK(analyze_hop_frames(&m.features, 0.001) == 1, "at least one frame");
    CHECK_CLOSE(analyze_window_seconds(&m.features), 1.0, 0, 1e-12);
    free(x);
    model_free(&m);
}

/* A long clip scored in pieces of one alignment unit gives the windows of one piece per clip:
 * same offsets, times and scores (only the batches of model_predict differ). */
static void test_pieces(const char *preset, int hop) {
    cnn_model m;
    make_model(&m, preset, 15);
    int64_t lead = 9000, body = 16000 * 23 + 3100, n = lead + body + 5000;
    float *x = callocCheck(n, sizeof(float));
    float *speech = synth_clip(body, 10, 0.3f);
    memcpy(x + lead, speech, sizeof(float) * body);
    analyzer whole, pieces;
    analyzer_init(&whole, &m, hop, NULL);
    analyzer_init(&pieces, &m, hop, NULL);
    whole.segment_frames = INT64_MAX / 4;
    pieces.segment_frames = 1;
    analyze_result rw, rp;
    CHECK(analyze_clip(&whole, x, n, &rw) == 0, "%s", adfd_error());
    CHECK(analyze_clip(&pieces, x, n, &rp) == 0, "%s", adfd_error());
    CHECK(rw.n_windows == rp.n_windows && rw.n_windows > 20,
          "%s hop %d: %d windows whole, %d in pieces", preset, hop, rw.n_windows, rp.n_windows);
    int worst = -1;
    for (int i = 0; i < rw.n_windows && i < rp.n_windows; i++) {
        int same = rw.windows[i].offset_frames == rp.windows[i].offset_frames &&
                   rw.windows[i].start_seconds == rp.windows[i].start_seconds &&
                   fabsf(rw.windows[i].score - rp.windows[i].score) <= 1e-6f;
        if (!same && worst < 0) worst = i;
    }
    CHECK(worst < 0, "%s hop %d: window %d differs: offset %d/%d score %.9g/%.9g", preset, hop,
          worst, worst >= 0 ? rw.windows[worst].offset_frames : 0,
          worst >= 0 ? rp.windows[worst].offset_frames : 0,
          worst >= 0 ? rw.windows[worst].score : 0, worst >= 0 ? rp.windows[worst].score : 0);
    CHECK_CLOSE(rw.clip_score, rp.clip_score, 1e-6, 1e-7);
    printf("pieces %s hop %d: %d windows agree\n", preset, hop, rw.n_windows);
    analyze_result_free(&rw);
    analyze_result_free(&rp);
    analyzer_free(&whole);
    analyzer_free(&pieces);
    free(speech);
    free(x);
    model_free(&m);
}

static void test_top_windows(void) {
    float scores[] = {0.1f, 0.9f, 0.5f, 0.9f, 0.3f, 0.95f};
    analyze_window w[6];
    for (int i = 0; i < 6; i++)
        w[i] = (analyze_window){.offset_frames = 40 * i, .score = scores[i]};
    analyze_result r = {.windows = w, .n_windows = 6};
    int idx[8];
    CHECK(analyze_top_windows(&r, 3, idx) == 3, "k = 3");
    CHECK(idx[0] == 5 && idx[1] == 1 && idx[2] == 3, "top 3 = 5,1,3 got %d,%d,%d", idx[0], idx[1],
          idx[2]);
    CHECK(analyze_top_windows(&r, 8, idx) == 6, "k > n gives n");
    int want[] = {5, 1, 3, 2, 4, 0};
    for (int i = 0; i < 6; i++)
        CHECK(idx[i] == want[i], "rank %d: %d, want %d", i, idx[i], want[i]);
    CHECK(analyze_top_windows(&r, 0, idx) == 0, "k = 0");
}

static void check_json_string(const char *in, const char *want) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    json_write_string(f, in);
    fclose(f);
    CHECK(!strcmp(buf, want), "JSON of '%s': %s, want %s", in, buf, want);
    free(buf);
}

static void test_json_strings(void) {
    check_json_string("a.wav", "\"a.wav\"");
    check_json_string("say \"hi\"\\x\n\t\x01", "\"say \\\"hi\\\"\\\\x\\n\\t\\u0001\"");
    check_json_string("Gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x8e\xa4",
                      "\"Gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x8e\xa4\"");
    check_json_string("latin1 \xe9t\xe9", "\"latin1 \\ufffdt\\ufffd\"");
    check_json_string("cut \xe2\x82", "\"cut \\ufffd\\ufffd\"");
}

int main(void) {
    test_seed_preset();
    test_default_preset_trimmed();
    test_short_clips();
    test_aggregates_and_errors();
    int hops[] = {40, 27, 80, 7};
    for (int h = 0; h < 4; h++) {
        test_pieces("seed", hops[h]);
        test_pieces("default", hops[h]);
    }
    test_top_windows();
    test_json_strings();
    return check_exit_status("test_analyze_windows");
}
