// Thin header-only C++ wrapper over the C API (edgetan.h): RAII, and failures as edgetan::Failure
// exceptions on the caller's side of the boundary (the library itself never throws across it).
//
//   edgetan::Tracker tracker("model.xml");
//   const et_result &r = tracker.push({pixels, w, h, 0, ET_GRAY8});
//   if (r.has_landmarks) use(r.landmarks);
//
// One Tracker per stream and per thread, as for et_tracker.
#pragma once
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "edgetan.h"

namespace edgetan {

struct Failure : std::runtime_error {
    et_status status;
    Failure(et_status s, const std::string &m) : std::runtime_error(m), status(s) {}
};

class Tracker {
public:
    explicit Tracker(const std::string &model, const char *device = nullptr, int threads = 0) {
        et_options opt{device, threads};
        et_status s = et_open(model.c_str(), &opt, &t_);
        if (s != ET_OK) throw Failure(s, et_last_error(nullptr));
    }
    ~Tracker() { et_close(t_); }
    Tracker(const Tracker &) = delete;
    Tracker &operator=(const Tracker &) = delete;
    Tracker(Tracker &&o) noexcept : t_(o.t_), r_(o.r_), curve_(std::move(o.curve_)), ood_(std::move(o.ood_)) { o.t_ = nullptr; }

    // The result stays valid (mask included) until the next push/reset; its volumes are kept for ef().
    const et_result &push(const et_frame &frame) {
        check(et_push(t_, &frame, &r_));
        et_volumes v;
        check(et_frame_volumes(&r_, &v));
        curve_.push_back(v);
        ood_.push_back(r_.ood_score);
        return r_;
    }
    void reset() { check(et_reset(t_)); curve_.clear(); ood_.clear(); }
    // The clip's out-of-domain score (edge_tan.runtime.ood.OODReference.clip_score): the median of the finite
    // per-frame scores since the last reset, NaN if none. Above r.ood_threshold: the clip is unreliable.
    double ood_clip_score() const {
        std::vector<double> s;
        for (float v : ood_) if (std::isfinite(v)) s.push_back(v);
        if (s.empty()) return std::nan("");
        std::sort(s.begin(), s.end());
        const size_t n = s.size();
        return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    }
    // ED/ES and EF of the frames pushed since the last reset
    et_clinical clinical(double fps = 30.0) const {
        et_clinical c;
        et_status s = et_clinical_summary(curve_.data(), int(curve_.size()), fps, &c);
        if (s != ET_OK) throw Failure(s, et_last_error(nullptr));
        return c;
    }
    et_model_info info() const {
        et_model_info i;
        et_info(t_, &i);
        return i;
    }

private:
    void check(et_status s) const {
        if (s != ET_OK) throw Failure(s, et_last_error(t_));
    }
    et_tracker *t_ = nullptr;
    et_result r_{};
    std::vector<et_volumes> curve_;
    std::vector<float> ood_;
};

}  // namespace edgetan
