/* Memory soak: push N frames (cycling through a raw clip of 8-bit grey frames) through one tracker
 * and print the resident set size every `every` frames. Flat RSS after the first frames = no
 * per-frame growth.   edgetan-soak MODEL FRAMES.raw WIDTH HEIGHT N [EVERY] */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "edgetan.h"

static long rss_kib(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) { if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0; fclose(f); }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: edgetan-soak MODEL FRAMES.raw W H N [EVERY]\n"); return 2; }
    int w = atoi(argv[3]), h = atoi(argv[4]);
    long n = atol(argv[5]), every = argc > 6 ? atol(argv[6]) : 1000;
    FILE *f = fopen(argv[2], "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", argv[2]); return 2; }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f), fsz = (long)w * h, nf = bytes / fsz;
    fseek(f, 0, SEEK_SET);
    unsigned char *clip = malloc((size_t)bytes);
    if (nf < 1 || fread(clip, 1, (size_t)bytes, f) != (size_t)bytes) { fprintf(stderr, "short clip\n"); return 2; }
    fclose(f);
    et_tracker *t = NULL;
    if (et_open(argv[1], NULL, &t) != ET_OK) { fprintf(stderr, "%s\n", et_last_error(NULL)); return 1; }
    et_result r;
    et_volumes v;
    int states[4] = {0, 0, 0, 0};
    for (long i = 0; i < n; ++i) {
        et_frame fr = {clip + (i % nf) * fsz, w, h, 0, ET_GRAY8};
        if (et_push(t, &fr, &r) != ET_OK) { fprintf(stderr, "frame %ld: %s\n", i, et_last_error(t)); return 1; }
        et_frame_volumes(&r, &v);
        states[r.state]++;
        if ((i + 1) % every == 0 || i == 0) printf("frames %ld rss_kib %ld\n", i + 1, rss_kib());
        fflush(stdout);
    }
    printf("states detect %d track %d redetect %d lost %d\n", states[0], states[1], states[2], states[3]);
    et_close(t);
    free(clip);
    return 0;
}
