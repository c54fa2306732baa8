/* Decoding + mixing + resampling throughput of audio_load on the files given on the command line
 * (each decoded REPEATS times); prints seconds of audio decoded per second of wall time. */
#include <stdio.h>
#include <stdlib.h>

#include "adfd/audio.h"
#include "adfd/util.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_audio REPEATS FILE...\n");
        return 2;
    }
    int repeats = atoi(argv[1]);
    double audio_seconds = 0;
    double start = adfd_seconds();
    for (int r = 0; r < repeats; r++) {
        for (int i = 2; i < argc; i++) {
            float *x;
            int64_t n;
            if (audio_load(argv[i], &x, &n) != 0) {
                fprintf(stderr, "%s\n", adfd_error());
                return 1;
            }
            audio_seconds += (double)n / ADFD_SAMPLE_RATE;
            free(x);
        }
    }
    double wall = adfd_seconds() - start;
    printf("adfd audio_load: %.1f s of audio in %.3f s = %.0f x real time\n", audio_seconds, wall,
           audio_seconds / wall);
    return 0;
}
