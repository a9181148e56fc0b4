/* Bad-input unit tests of the C API (plain C: proves the header is C). Run under ASan/UBSan by
 * tests/test_native.py when the sanitizer build is available. argv[1]: a valid model artifact;
 * argv[2]: a scratch folder for corrupt artifacts. Exit 0 = all passed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetan.h"

static int failures = 0;
#define EXPECT(cond, what)                                                   \
    do {                                                                     \
        if (!(cond)) { fprintf(stderr, "FAIL %s (line %d)\n", what, __LINE__); failures++; } \
        else printf("ok   %s\n", what);                                      \
    } while (0)

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: edgetan-unit-tests MODEL SCRATCH_DIR\n"); return 2; }
    char path[4096];
    et_tracker *t = NULL;
    et_result r;

    /* et_open: bad arguments and bad artifacts */
    EXPECT(et_open(NULL, NULL, &t) == ET_ERR_ARGUMENT && t == NULL && strlen(et_last_error(NULL)) > 0, "open NULL path");
    EXPECT(et_open(argv[1], NULL, NULL) == ET_ERR_ARGUMENT, "open NULL out");
    EXPECT(et_open("/nonexistent/model.xml", NULL, &t) == ET_ERR_MODEL && t == NULL, "open missing file");
    snprintf(path, sizeof path, "%s/garbage.xml", argv[2]);
    write_file(path, "this is not an IR");
    EXPECT(et_open(path, NULL, &t) == ET_ERR_MODEL && strstr(et_last_error(NULL), "not an OpenVINO IR"), "open non-XML .xml");
    snprintf(path, sizeof path, "%s/nobin.bin", argv[2]);
    remove(path);
    snprintf(path, sizeof path, "%s/nobin.xml", argv[2]);
    write_file(path, "<?xml version=\"1.0\"?><net name=\"x\" version=\"11\"></net>");
    EXPECT(et_open(path, NULL, &t) == ET_ERR_MODEL && strstr(et_last_error(NULL), ".bin missing"), "open IR without .bin");
    snprintf(path, sizeof path, "%s/nobin.bin", argv[2]);
    write_file(path, "");
    snprintf(path, sizeof path, "%s/nobin.xml", argv[2]);
    EXPECT(et_open(path, NULL, &t) == ET_ERR_MODEL, "open corrupt IR");
    snprintf(path, sizeof path, "%s/garbage.onnx", argv[2]);
    write_file(path, "\x08\x07garbage");
    EXPECT(et_open(path, NULL, &t) == ET_ERR_MODEL, "open corrupt ONNX");
    snprintf(path, sizeof path, "%s/model.txt", argv[2]);
    write_file(path, "x");
    EXPECT(et_open(path, NULL, &t) == ET_ERR_MODEL && strstr(et_last_error(NULL), "unknown artifact type"), "open wrong type");
    snprintf(path, sizeof path, "%s/model.engine", argv[2]);
    write_file(path, "x");
    EXPECT(et_open(path, NULL, &t) == ET_ERR_NOT_BUILT || et_open(path, NULL, &t) == ET_ERR_MODEL, "open TensorRT engine");
    printf("tensorrt: %s\n", et_last_error(NULL));

    /* a good tracker, then bad frames */
    EXPECT(et_open(argv[1], NULL, &t) == ET_OK && t != NULL, "open model");
    if (!t) { fprintf(stderr, "%s\n", et_last_error(NULL)); return 1; }
    unsigned char *px = calloc(64 * 64 * 4, 1);
    et_frame f = {px, 64, 64, 0, ET_GRAY8};
    EXPECT(et_push(NULL, &f, &r) == ET_ERR_ARGUMENT, "push NULL tracker");
    EXPECT(et_push(t, NULL, &r) == ET_ERR_ARGUMENT, "push NULL frame");
    EXPECT(et_push(t, &f, NULL) == ET_ERR_ARGUMENT, "push NULL result");
    et_frame nd = f; nd.data = NULL;
    EXPECT(et_push(t, &nd, &r) == ET_ERR_FRAME && strstr(et_last_error(t), "NULL"), "push NULL pixels");
    et_frame e0 = f; e0.width = 0;
    EXPECT(et_push(t, &e0, &r) == ET_ERR_FRAME && strstr(et_last_error(t), "empty"), "push empty frame");
    et_frame neg = f; neg.height = -5;
    EXPECT(et_push(t, &neg, &r) == ET_ERR_FRAME, "push negative height");
    et_frame huge = f; huge.width = 1 << 20;
    EXPECT(et_push(t, &huge, &r) == ET_ERR_FRAME, "push oversized frame");
    et_frame st = f; st.stride_bytes = 10;
    EXPECT(et_push(t, &st, &r) == ET_ERR_FRAME && strstr(et_last_error(t), "stride"), "push stride < row");
    et_frame bf = f; bf.format = (et_pixel_format)42;
    EXPECT(et_push(t, &bf, &r) == ET_ERR_FRAME, "push unknown format");
    /* a black frame is a valid frame: lost, reason blank frame */
    EXPECT(et_push(t, &f, &r) == ET_OK && r.state == ET_STATE_LOST && strcmp(r.reason, "blank frame") == 0, "push blank frame");
    /* noise frames of several formats and sizes: no crash, state in range */
    unsigned seed = 1;
    for (int i = 0; i < 64 * 64 * 4; ++i) { seed = seed * 1103515245u + 12345u; px[i] = (unsigned char)(seed >> 16); }
    et_frame bgr = {px, 40, 30, 0, ET_BGR8};
    EXPECT(et_push(t, &bgr, &r) == ET_OK && r.state <= ET_STATE_LOST, "push noise BGR");
    et_frame g16 = {px, 32, 32, 0, ET_GRAY16};
    EXPECT(et_push(t, &g16, &r) == ET_OK, "push noise GRAY16");
    et_frame bgra = {px, 16, 48, 0, ET_BGRA8};
    EXPECT(et_push(t, &bgra, &r) == ET_OK, "push noise BGRA");
    et_frame tiny = {px, 2, 2, 0, ET_GRAY8};
    EXPECT(et_push(t, &tiny, &r) == ET_OK, "push 2x2 frame");
    EXPECT(et_reset(t) == ET_OK && et_push(t, &f, &r) == ET_OK && r.index == 0, "reset restarts the index");
    EXPECT(et_reset(NULL) == ET_ERR_ARGUMENT, "reset NULL");
    float net_ms[3] = {-1.0f, -1.0f, -1.0f};
    EXPECT(et_time_network(t, 3, net_ms) == ET_OK && net_ms[0] > 0 && net_ms[1] > 0 && net_ms[2] > 0,
           "time the network alone");
    EXPECT(et_time_network(t, 2, NULL) == ET_OK, "time the network, times not wanted");
    EXPECT(et_time_network(t, 0, net_ms) == ET_ERR_ARGUMENT, "time the network 0 times");
    EXPECT(et_time_network(NULL, 1, net_ms) == ET_ERR_ARGUMENT, "time the network of NULL");
    EXPECT(et_push(t, &f, &r) == ET_OK && r.index == 1, "tracking goes on after timing the network");
    et_model_info info;
    EXPECT(et_info(t, &info) == ET_OK && info.window > 0 && strlen(info.model_name) > 0, "info");
    EXPECT(strlen(et_metadata_json(t)) > 2, "metadata json");
    et_close(t);
    et_close(NULL);
    free(px);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
