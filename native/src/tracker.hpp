// The stateful TAN tracker, a faithful port of edge_tan/runtime/tracker.py (same states, gates, reasons,
// widening, re-detect, lost handling, confidence). Keep the two in step: tests/test_native.py
// checks per-frame parity against the Python tracker.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "edgetan.h"
#include "engine.hpp"
#include "geometry.hpp"
#include "ood_worker.hpp"

namespace edgetan {

// Mirrors edge_tan.runtime.tracker.TrackerConfig's defaults (tracker behaviour, not artifact metadata).
struct TrackerConfig {
    int refine_first = 1;
    double min_view_prob = 0;    // view probability below which a frame is lost (0: off, the default)
    double min_area_frac = 0.02, max_area_frac = 0.65, max_area_jump = 0.6;
    double tri_lo = 0.3, tri_hi = 3.0;
    double blank_std = 2.0;
    double min_structure = 0.3;   // neighbour-pixel correlation below: noise frame (0: off)
    int forget_after = 5;
    double landmark_margin = 0.05;
    double widen_at = 0.01, max_edge_frac = 0.12, widen_scale = 0.85, widen_shift = 10.0, widen_step = 0.05;
    bool detect_anchor_mask = true;
    double view_memory = 0.99, detect_view_weight = 1e4;   // the detect pass decides the clip view (tracker.py)
    double seed_grid = 0.5;   // frame px grid the landmarks placing the next window snap to (0: off)
    double max_seed_skew = 15.0;   // a window stretched this much more one way than the other: re-detect
    double min_axis_ratio = 0.75;  // a tracked long axis below this share of its recent longest: re-detect
    double axis_decay = 0.997;     // per-frame decay of that recent longest
    bool ood_gate = true;   // score windows against the artifact's out-of-domain reference (if it has one)
};

struct Pass {
    Affine M, Minv;
    cv::Mat score;      // CV_32F window logit difference
    cv::Mat win_mask;   // CV_8U {0,1}
    bool has_lm = false;
    float lm_win[3][2];
    int view_idx = -1;
    double view_prob;
    std::vector<double> view_logp;
    bool has_logp = false;
    double certainty = 0;
    cv::Rect bbox;
    double contact = 0, push_x = 0, push_y = 0, zoom = 1.0;
    double ood;         // out-of-domain score of the window (NaN: no gate)
    double area_frac() const { return cv::countNonZero(win_mask) / double(win_mask.total()); }
    double area_tpl() const { return area_frac() / (zoom * zoom); }
};

class Tracker {
public:
    Tracker(std::unique_ptr<Engine> engine, const TrackerConfig &cfg = TrackerConfig());
    void reset();
    // the network alone: `runs` back-to-back infer() calls on the current input, each timed (ms may be null)
    void time_network(int runs, float *ms);
    // frame: grey/BGR/BGRA uint8 or grey uint16 (CV_8UC1/3/4, CV_16UC1); fills `out`.
    void step(const cv::Mat &frame, et_result &out);
    const Metadata &metadata() const { return engine_->metadata(); }
    const Engine &engine() const { return *engine_; }
    const cv::Mat &mask_crop() const { return mask_crop_; }
    bool ood_gate() const { return ood_ != nullptr; }

private:
    void to_gray(const cv::Mat &frame);
    bool affine_for(Affine &M);          // returns detect
    Affine widened(const Affine &M) const;
    bool widen_for(const Pass &p);
    bool warp_affine(const float lm[3][2], Affine &M) const;
    Pass &analyse(const Affine &M);
    std::string check(const Pass &p, bool detect, bool has_prev, double prev_area) const;
    void update_view(et_result &res, const Pass &p, const Pass *detect_pass);
    void accept(const Pass &p, et_result &res, const float (*lm_win)[2], const Pass *detect_pass);
    void lose(et_result &res, const std::string &reason);
    bool anchor(const Pass &p, float out[3][2]);

    std::unique_ptr<Engine> engine_;
    TrackerConfig cfg_;
    int size_;
    double tpl_area_, tpl_sign_, alpha_, beta_;
    float in_lut_[256];          // the network input of each grey level (float(double(v) * alpha) + beta)
    cv::Mat cert_buf_;           // scratch of the certainty, 2 windows' worth, allocated once
    bool equalize_;
    const OodRef *ood_ = nullptr;   // the artifact's out-of-domain reference (null: no gate)
    std::unique_ptr<OodWorker> ood_worker_;   // scores it beside the post-pass work (null: inline)
    // state
    bool has_prev_lm_ = false;
    float prev_lm_[3][2];
    bool has_prev_area_ = false;
    double prev_area_ = 0;
    bool has_axis_ref_ = false;
    double axis_ref_ = 0;
    int lost_run_ = 0, index_ = 0;
    bool has_view_ev_ = false;
    std::vector<double> view_ev_, ev_tmp_, post_;
    double widen_z_ = 1.0, widen_dx_ = 0.0, widen_dy_ = 0.0;
    bool have_u16_alpha_ = false;
    double u16_alpha_ = 1.0;
    // buffers, sized on the first frame and reused
    cv::Mat gray_, gray_tmp_, sub_, crop_score_, mask_buf_, mask_crop_, lut_;
    WindowCut cut_;     // frame -> window, the Python tracker's bytes
    std::vector<std::vector<cv::Point>> contours_, contours2_;
    std::vector<cv::Point2f> contour_;
    Pass passes_[6];
    int next_pass_ = 0;
    double t_pre_ = 0, t_infer_ = 0, t_post_ = 0;
};

}  // namespace edgetan
