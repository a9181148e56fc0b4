/* libedgetan: the edge-tan LV tracker for device firmware (C API).
 *
 * One et_tracker = one video stream: it holds the previous frame's landmarks, the clip-level view,
 * the window widening and one inference request. et_push is not re-entrant: use one tracker per
 * stream and per thread (trackers share nothing, so several may run in parallel threads).
 *
 * Every function returns an et_status; nothing throws or aborts across this boundary. On an error
 * et_last_error(tracker) gives one line naming the problem (et_last_error(NULL): the last et_open
 * failure on this thread).
 *
 * Memory: the tracker's buffers (window input, network outputs, score maps, masks) are sized on
 * the first frame and reused; a frame of the same size allocates nothing in libedgetan itself.
 * et_result is a plain struct the caller owns; its mask pointer stays valid until the next
 * et_push / et_reset / et_close on the same tracker.
 */
#ifndef EDGETAN_H
#define EDGETAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ET_CONTOUR_POINTS 64   /* resampled contour length (TrackerConfig.contour_points) */
#define ET_NAME_LEN 32
#define ET_REASON_LEN 256

typedef enum {
    ET_OK = 0,
    ET_ERR_ARGUMENT = 1,    /* null pointer, bad option */
    ET_ERR_FRAME = 2,       /* empty, mis-sized or unsupported frame */
    ET_ERR_MODEL = 3,       /* missing, corrupt or non-edge-tan artifact */
    ET_ERR_RUNTIME = 4,     /* the inference runtime failed */
    ET_ERR_NOT_BUILT = 5,   /* a backend this library was built without (e.g. TensorRT) */
    ET_ERR_INTERNAL = 6
} et_status;

typedef enum { ET_GRAY8 = 0, ET_BGR8 = 1, ET_BGRA8 = 2, ET_GRAY16 = 3 } et_pixel_format;

typedef enum { ET_STATE_DETECT = 0, ET_STATE_TRACK = 1, ET_STATE_REDETECT = 2, ET_STATE_LOST = 3 } et_state;

typedef struct {
    const void *data;        /* first pixel of the first row */
    int width, height;
    int stride_bytes;        /* bytes between rows; 0 = packed */
    et_pixel_format format;
} et_frame;

typedef struct {
    const char *device;      /* OpenVINO device, NULL = "CPU" */
    int threads;             /* inference threads, 0 = runtime default */
} et_options;

typedef struct {
    int index;                        /* frames since the last reset */
    et_state state;
    int has_landmarks;
    float landmarks[6];               /* frame px: apex xy, annulus_left xy, annulus_right xy */
    int n_contour;                    /* 0 or ET_CONTOUR_POINTS */
    float contour[2 * ET_CONTOUR_POINTS];
    char view[ET_NAME_LEN];           /* clip-level view call ("" without a view head or when lost) */
    float view_prob;                  /* NaN when none */
    char view_frame[ET_NAME_LEN];     /* this frame's window alone */
    float confidence;
    float pass_shift;                 /* landmark disagreement of this frame's two passes (NaN: one pass) */
    int area_px;                      /* LV mask area in frame px */
    int mask_x, mask_y, mask_w, mask_h;   /* LV mask crop (uint8 {0,1}) placement in the frame */
    const uint8_t *mask;              /* mask_w*mask_h bytes, row-major; NULL when empty */
    float latency_ms, pre_ms, infer_ms, post_ms;
    char reason[ET_REASON_LEN];       /* why the first pass was rejected or the frame lost ("" if none) */
    float ood_score;                  /* out-of-domain score of this frame's last window (edge_tan/runtime/ood.py):
                                         ~1 like the training windows; NaN on a blank frame or without a gate */
    float ood_threshold;              /* the artifact's clip threshold for the median of ood_score over a
                                         clip (above: unreliable, adapt the model); NaN without a gate */
} et_result;

typedef struct {
    char model_name[64];
    char precision[16];
    char input_norm[16];
    char backend[32];
    int window;
    int n_views;
} et_model_info;

/* Clinical measures (edge_tan/runtime/clinical.py, single plane): per frame the LV area and the Simpson
 * (20 disks) and area-length volumes in px^3, from a result's mask and landmarks; per clip ED/ES from
 * the area curve and EF. The caller keeps the per-frame curve (e.g. a ring buffer over the last beats):
 * the tracker itself keeps no history. */
#define ET_MAX_EVENTS 256

typedef struct {
    double area_px, simpson_px3, area_length_px3;   /* volumes NaN when the frame has no LV */
} et_volumes;

typedef struct {
    int found;                        /* 0: the LV was never found (no EF) */
    double ef_percent;                /* Simpson single plane, mean over beats; NaN without an ED/ES pair */
    double ef_area_length_percent;    /* area-length on the same beats */
    int n_ed, n_es;                   /* counts (arrays hold the first ET_MAX_EVENTS) */
    int ed_frames[ET_MAX_EVENTS], es_frames[ET_MAX_EVENTS];
} et_clinical;

typedef struct et_tracker et_tracker;

/* model_path: OpenVINO IR (.xml beside its .bin), ONNX (.onnx), or a TensorRT .engine (only when
 * built with EDGETAN_WITH_TENSORRT). options may be NULL. */
et_status et_open(const char *model_path, const et_options *options, et_tracker **out);
et_status et_push(et_tracker *tracker, const et_frame *frame, et_result *out);
et_status et_reset(et_tracker *tracker);
/* The network alone, benchmark_app style: `runs` back-to-back inferences on the tracker's input buffer
 * as the last et_push left it (its last window; zeros before any push), each timed; ms_out (may be
 * NULL) receives the `runs` per-call milliseconds. The base of "end-to-end vs the network" on this
 * runtime's own terms. Tracking state is untouched, but the network outputs are overwritten: call it
 * between et_push calls, after reading what you need of the last result. */
et_status et_time_network(et_tracker *tracker, int runs, float *ms_out);
et_status et_info(const et_tracker *tracker, et_model_info *out);
/* JSON object of the artifact's metadata (what `edge-tan track --json` writes as "model");
 * valid until et_close. */
const char *et_metadata_json(const et_tracker *tracker);
void et_close(et_tracker *tracker);
/* volumes of the frame `result` describes; call before the next et_push (it reads result->mask) */
et_status et_frame_volumes(const et_result *result, et_volumes *out);
/* ED/ES and EF of n consecutive frames' volumes (frame rate fps, 0 = 30) */
et_status et_clinical_summary(const et_volumes *curve, int n, double fps, et_clinical *out);
const char *et_last_error(const et_tracker *tracker);
const char *et_state_name(et_state state);
const char *et_version(void);

#ifdef __cplusplus
}
#endif
#endif
