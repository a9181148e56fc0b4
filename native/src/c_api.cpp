// The C boundary: every call catches everything and returns an et_status; the message goes to
// et_last_error. Nothing throws or aborts across it.
#include <cstring>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "edgetan.h"
#include "clinical.hpp"
#include "tracker.hpp"

struct et_tracker {
    std::unique_ptr<edgetan::Tracker> tracker;
    std::string error, md_json;
};

namespace {
thread_local std::string g_error;   // et_open failures and calls without a tracker

et_status fail(et_tracker *t, et_status code, const std::string &msg) {
    (t ? t->error : g_error) = msg;
    return code;
}

template <class F>
et_status guarded(et_tracker *t, F &&f) {
    try {
        f();
        if (t) t->error.clear();
        return ET_OK;
    } catch (const edgetan::Error &e) {
        return fail(t, et_status(e.code), e.what());
    } catch (const cv::Exception &e) {
        return fail(t, ET_ERR_INTERNAL, std::string("OpenCV: ") + e.err);
    } catch (const std::bad_alloc &) {
        return fail(t, ET_ERR_INTERNAL, "out of memory");
    } catch (const std::exception &e) {
        return fail(t, ET_ERR_INTERNAL, e.what());
    } catch (...) {
        return fail(t, ET_ERR_INTERNAL, "unknown error");
    }
}

const int MAX_SIDE = 16384;
}  // namespace

extern "C" {

et_status et_open(const char *model_path, const et_options *options, et_tracker **out) {
    if (!out) return fail(nullptr, ET_ERR_ARGUMENT, "et_open: out is NULL");
    *out = nullptr;
    if (!model_path || !*model_path) return fail(nullptr, ET_ERR_ARGUMENT, "et_open: model_path is NULL or empty");
    if (options && options->threads < 0) return fail(nullptr, ET_ERR_ARGUMENT, "et_open: threads must be >= 0");
    et_tracker *t = nullptr;
    et_status st = guarded(nullptr, [&] {
        edgetan::EngineOptions eo;
        if (options && options->device && *options->device) eo.device = options->device;
        if (options) eo.threads = options->threads;
        auto tr = std::make_unique<edgetan::Tracker>(edgetan::open_engine(model_path, eo));
        t = new et_tracker();
        t->md_json = tr->metadata().to_json();
        t->tracker = std::move(tr);
    });
    if (st == ET_OK) *out = t;
    return st;
}

et_status et_push(et_tracker *t, const et_frame *f, et_result *out) {
    if (!t) return fail(nullptr, ET_ERR_ARGUMENT, "et_push: tracker is NULL");
    if (!f || !out) return fail(t, ET_ERR_ARGUMENT, "et_push: frame or result is NULL");
    if (!f->data) return fail(t, ET_ERR_FRAME, "et_push: frame data is NULL");
    if (f->width <= 0 || f->height <= 0) return fail(t, ET_ERR_FRAME, "et_push: empty frame (width or height <= 0)");
    if (f->width < 2 || f->height < 2 || f->width > MAX_SIDE || f->height > MAX_SIDE)
        return fail(t, ET_ERR_FRAME, "et_push: frame " + std::to_string(f->width) + "x" + std::to_string(f->height) +
                                         " outside 2x2 .. 16384x16384");
    int type, bpp, format;
    static_assert(sizeof(et_pixel_format) == sizeof(int), "et_pixel_format is an int-sized enum");
    std::memcpy(&format, &f->format, sizeof format);   // a garbage value must not be loaded as the enum (UB)
    switch (format) {
        case ET_GRAY8: type = CV_8UC1; bpp = 1; break;
        case ET_BGR8: type = CV_8UC3; bpp = 3; break;
        case ET_BGRA8: type = CV_8UC4; bpp = 4; break;
        case ET_GRAY16: type = CV_16UC1; bpp = 2; break;
        default: return fail(t, ET_ERR_FRAME, "et_push: unknown pixel format " + std::to_string(format));
    }
    const size_t row = size_t(f->width) * bpp;
    const size_t stride = f->stride_bytes ? size_t(f->stride_bytes) : row;
    if (f->stride_bytes < 0 || stride < row)
        return fail(t, ET_ERR_FRAME, "et_push: stride_bytes " + std::to_string(f->stride_bytes) + " is smaller than a row (" +
                                         std::to_string(row) + " bytes)");
    if (stride % (bpp == 2 ? 2 : 1)) return fail(t, ET_ERR_FRAME, "et_push: GRAY16 stride must be even");
    return guarded(t, [&] {
        cv::Mat m(f->height, f->width, type, const_cast<void *>(f->data), stride);
        t->tracker->step(m, *out);
    });
}

et_status et_reset(et_tracker *t) {
    if (!t) return fail(nullptr, ET_ERR_ARGUMENT, "et_reset: tracker is NULL");
    return guarded(t, [&] { t->tracker->reset(); });
}

et_status et_time_network(et_tracker *t, int runs, float *ms_out) {
    if (!t) return fail(nullptr, ET_ERR_ARGUMENT, "et_time_network: tracker is NULL");
    if (runs < 1) return fail(t, ET_ERR_ARGUMENT, "et_time_network: runs must be >= 1");
    return guarded(t, [&] { t->tracker->time_network(runs, ms_out); });
}

et_status et_info(const et_tracker *t, et_model_info *out) {
    if (!t || !out) return fail(nullptr, ET_ERR_ARGUMENT, "et_info: tracker or out is NULL");
    std::memset(out, 0, sizeof *out);
    const edgetan::Metadata &md = t->tracker->metadata();
    auto put = [](char *d, size_t n, const std::string &s) { std::strncpy(d, s.c_str(), n - 1); };
    put(out->model_name, sizeof out->model_name, md.model_name);
    put(out->precision, sizeof out->precision, md.precision);
    put(out->input_norm, sizeof out->input_norm, md.input_norm);
    put(out->backend, sizeof out->backend, t->tracker->engine().backend());
    out->window = md.window;
    out->n_views = int(md.view_names.size());
    return ET_OK;
}

const char *et_metadata_json(const et_tracker *t) { return t ? t->md_json.c_str() : ""; }

void et_close(et_tracker *t) {
    try {
        delete t;
    } catch (...) {
    }
}

et_status et_frame_volumes(const et_result *r, et_volumes *out) {
    if (!r || !out) return fail(nullptr, ET_ERR_ARGUMENT, "et_frame_volumes: result or out is NULL");
    return guarded(nullptr, [&] {
        cv::Mat mask;
        if (r->mask && r->mask_w > 0 && r->mask_h > 0)
            mask = cv::Mat(r->mask_h, r->mask_w, CV_8U, const_cast<uint8_t *>(r->mask));
        float lm[3][2];
        const bool use = r->has_landmarks && r->state != ET_STATE_LOST;
        if (use) std::memcpy(lm, r->landmarks, sizeof lm);
        edgetan::FrameVolumes v = edgetan::frame_volumes(mask, r->mask_x, r->mask_y, use ? lm : nullptr);
        *out = {v.area_px, v.simpson_px3, v.area_length_px3};
    });
}

et_status et_clinical_summary(const et_volumes *curve, int n, double fps, et_clinical *out) {
    if (!out || (!curve && n > 0) || n < 0) return fail(nullptr, ET_ERR_ARGUMENT, "et_clinical_summary: bad curve, n or out");
    std::memset(out, 0, sizeof *out);
    return guarded(nullptr, [&] {
        std::vector<edgetan::FrameVolumes> c(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) c[size_t(i)] = {curve[i].area_px, curve[i].simpson_px3, curve[i].area_length_px3};
        edgetan::ClinicalSummary s = edgetan::clinical_summary(c, fps);
        out->found = s.found;
        out->ef_percent = s.ef;
        out->ef_area_length_percent = s.ef_area_length;
        out->n_ed = int(s.ed.size());
        out->n_es = int(s.es.size());
        for (size_t i = 0; i < s.ed.size() && i < ET_MAX_EVENTS; ++i) out->ed_frames[i] = s.ed[i];
        for (size_t i = 0; i < s.es.size() && i < ET_MAX_EVENTS; ++i) out->es_frames[i] = s.es[i];
    });
}

const char *et_last_error(const et_tracker *t) { return t ? t->error.c_str() : g_error.c_str(); }

const char *et_state_name(et_state s) {
    switch (s) {
        case ET_STATE_DETECT: return "detect";
        case ET_STATE_TRACK: return "track";
        case ET_STATE_REDETECT: return "redetect";
        case ET_STATE_LOST: return "lost";
    }
    return "?";
}

const char *et_version(void) { return "edgetan 0.1.0"; }

}  // extern "C"
