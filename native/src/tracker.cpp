#include "tracker.hpp"

#include <algorithm>
#include <chrono>
#include <system_error>
#include <thread>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include <opencv2/imgproc.hpp>

namespace edgetan {
namespace {

const char *const LEAVES = "LV leaves the window";
// Python tracker.OOD_REASON / NOISE_REASON: the reasons that keep the lock
const char *const OOD_REASON = "image unlike the training data";
const char *const NOISE_REASON = "noise frame, no image structure";
const double NaN = std::numeric_limits<double>::quiet_NaN();

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int largest(const std::vector<std::vector<cv::Point>> &cs) {
    int best = 0;
    double area = -1;
    for (size_t i = 0; i < cs.size(); ++i) {
        double a = cv::contourArea(cs[i]);
        if (a > area) { area = a; best = int(i); }
    }
    return best;
}

void softmax(const std::vector<double> &z, std::vector<double> &p) {
    p.resize(z.size());
    double m = *std::max_element(z.begin(), z.end()), s = 0;
    for (size_t i = 0; i < z.size(); ++i) s += (p[i] = std::exp(z[i] - m));
    for (double &v : p) v /= s;
}

int sign(double v) { return (v > 0) - (v < 0); }

double pass_shift(const float a[3][2], const float b[3][2]) {
    double mx = 0.5 * (double(b[1][0]) + b[2][0]), my = 0.5 * (double(b[1][1]) + b[2][1]);
    double length = std::hypot(b[0][0] - mx, b[0][1] - my);
    if (!(length > 1e-6)) return NaN;
    double s = 0;
    for (int i = 0; i < 3; ++i) s += std::hypot(double(a[i][0]) - b[i][0], double(a[i][1]) - b[i][1]);
    return s / 3.0 / length;
}

void copy_str(char *dst, size_t n, const std::string &s) {
    size_t k = std::min(n - 1, s.size());
    std::memcpy(dst, s.data(), k);
    dst[k] = 0;
}

// Share of the LV border on window edges that lie inside the frame, and the side it runs out of
// (edge_tan.runtime.tracker.edge_contact).
void edge_contact(const cv::Mat &m, const std::vector<cv::Point> &contour, const Affine &Minv, int fh, int fw,
                  double &contact, double &push_x, double &push_y) {
    const int s1 = m.rows - 1;
    int k = 0;
    double nx = 0, ny = 0;
    auto visit = [&](int x, int y, double ex, double ey) {
        float fx, fy;
        transform_point(float(x), float(y), Minv, fx, fy);
        if (fx >= 0 && fx <= fw - 1 && fy >= 0 && fy <= fh - 1) { ++k; nx += ex; ny += ey; }
    };
    bool any = false;
    for (int x = 0; x <= s1; ++x) if (m.at<uchar>(0, x)) { any = true; visit(x, 0, 0, -1); }
    for (int x = 0; x <= s1; ++x) if (m.at<uchar>(s1, x)) { any = true; visit(x, s1, 0, 1); }
    for (int y = 1; y < s1; ++y) if (m.at<uchar>(y, 0)) { any = true; visit(0, y, -1, 0); }
    for (int y = 1; y < s1; ++y) if (m.at<uchar>(y, s1)) { any = true; visit(s1, y, 1, 0); }
    contact = push_x = push_y = 0.0;
    if (!any || k == 0) return;
    push_x = nx / k;
    push_y = ny / k;
    contact = k / std::max(cv::arcLength(contour, true), 1.0);
}

double bit_depth_scale(double peak) {
    int bits = std::max(8, int(std::ceil(std::log2(std::max(peak, 0.0) + 1.0))));
    return 255.0 / (std::pow(2.0, bits) - 1);
}

}  // namespace

Tracker::Tracker(std::unique_ptr<Engine> engine, const TrackerConfig &cfg) : engine_(std::move(engine)), cfg_(cfg) {
    const Metadata &md = engine_->metadata();
    size_ = md.window;
    cut_.resize(size_);
    double ta = triangle_area(md.tpl);
    tpl_area_ = std::fabs(ta);
    tpl_sign_ = sign(ta);
    alpha_ = md.input_scale / md.input_std;
    beta_ = -md.input_mean / md.input_std;
    for (int v = 0; v < 256; ++v) in_lut_[v] = float(double(v) * alpha_) + float(beta_);
    equalize_ = md.input_norm == "equalize";
    ood_ = cfg_.ood_gate && md.has_ood ? &md.ood : nullptr;
    if (ood_ && std::thread::hardware_concurrency() >= 2) {   // one core: nothing to overlap with
        try { ood_worker_ = std::make_unique<OodWorker>(*ood_); } catch (const std::system_error &) {}
    }
    lut_.create(1, 256, CV_8U);
    const size_t nv = md.view_names.size();
    view_ev_.assign(nv, 0.0);
    ev_tmp_.assign(nv, 0.0);
    post_.assign(nv, 0.0);
    for (Pass &p : passes_) {
        p.score.create(size_, size_, CV_32F);
        p.win_mask.create(size_, size_, CV_8U);
        p.view_logp.assign(nv, 0.0);
    }
    reset();
}

void Tracker::reset() {
    has_prev_lm_ = has_prev_area_ = has_view_ev_ = has_axis_ref_ = false;
    lost_run_ = index_ = 0;
    widen_z_ = 1.0; widen_dx_ = widen_dy_ = 0.0;
    have_u16_alpha_ = false;
}

// Source frame -> uint8 grey (edge_tan.runtime.frames.GrayConverter) -> input_norm (edge_tan.runtime.intensity).
void Tracker::to_gray(const cv::Mat &frame) {
    const cv::Mat *g = &frame;
    if (frame.type() == CV_8UC3) { cv::cvtColor(frame, gray_tmp_, cv::COLOR_BGR2GRAY); g = &gray_tmp_; }
    else if (frame.type() == CV_8UC4) { cv::cvtColor(frame, gray_tmp_, cv::COLOR_BGRA2GRAY); g = &gray_tmp_; }
    else if (frame.type() == CV_16UC1) {
        if (!have_u16_alpha_) {
            double mx;
            cv::minMaxLoc(frame, nullptr, &mx);
            u16_alpha_ = bit_depth_scale(mx);
            have_u16_alpha_ = true;
        }
        cv::convertScaleAbs(frame, gray_tmp_, u16_alpha_);
        g = &gray_tmp_;
    }
    if (!equalize_) { gray_ = *g; return; }
    // equalize_lut: mid-rank of each in-sector level (levels 0..2 are background), from a regular
    // subsample of >= 64k pixels
    const int step = std::max(1, int(std::sqrt(double(g->total()) / 65536.0)));
    double hist[256] = {0};
    for (int y = 0; y < g->rows; y += step) {
        const uchar *r = g->ptr<uchar>(y);
        for (int x = 0; x < g->cols; x += step) hist[r[x]] += 1.0;
    }
    hist[0] = hist[1] = hist[2] = 0.0;
    double total = 0, cdf[256];
    for (int i = 0; i < 256; ++i) cdf[i] = (total += hist[i]);
    uchar *lut = lut_.ptr<uchar>();
    std::memset(lut, 0, 256);
    if (total > 0) {
        auto search = [&](double v) { return int(std::lower_bound(cdf, cdf + 256, v) - cdf); };
        int lo = search(0.01 * total), hi = search(0.99 * total);
        if (hi - lo >= 6)
            for (int i = 3; i < 256; ++i) {
                double mid = ((cdf[i] - hist[i]) + 0.5 * hist[i]) / total;
                lut[i] = cv::saturate_cast<uchar>(std::nearbyint(1.0 + 254.0 * mid));
            }
    }
    if (g == &gray_tmp_) { cv::LUT(gray_tmp_, lut_, gray_); }
    else cv::LUT(*g, lut_, gray_);
}

bool Tracker::warp_affine(const float lm[3][2], Affine &M) const {
    const Metadata &md = engine_->metadata();
    if (md.warp_mode == "crop") { M = crop_affine(lm, size_, md.expand); return true; }
    return affine_to_template(lm, md.tpl, M);
}

Affine Tracker::widened(const Affine &M) const {
    if (widen_z_ == 1.0 && widen_dx_ == 0.0 && widen_dy_ == 0.0) return M;
    double c = (size_ - 1) / 2.0;
    return compose(similarity_about(c, c, widen_z_, widen_dx_, widen_dy_), M);
}

bool Tracker::affine_for(Affine &M) {
    const Metadata &md = engine_->metadata();
    if (!has_prev_lm_ || md.warp_mode == "none") { M = letterbox_affine(gray_.rows, gray_.cols, size_); return true; }
    // snapped as Python's tracker.snap does (float64, floor(x / g + 0.5) * g): the closed loop on real
    // clips amplifies float noise, a grid keeps backends on identical windows
    float seed[3][2];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j)
            seed[i][j] = cfg_.seed_grid > 0
                ? static_cast<float>(std::floor(static_cast<double>(prev_lm_[i][j]) / cfg_.seed_grid + 0.5) * cfg_.seed_grid)
                : prev_lm_[i][j];
    Affine W;
    if (!warp_affine(seed, W) || !(skew(W) <= cfg_.max_seed_skew)) {   // no window, or one from a sliver
        M = letterbox_affine(gray_.rows, gray_.cols, size_);
        return true;
    }
    M = widened(W);
    return false;
}

bool Tracker::widen_for(const Pass &p) {
    const TrackerConfig &c = cfg_;
    double dx = widen_dx_ - 0.25 * c.widen_shift * p.push_x, dy = widen_dy_ - 0.25 * c.widen_shift * p.push_y;
    double n = std::hypot(dx, dy);
    if (n > c.widen_shift) { dx *= c.widen_shift / n; dy *= c.widen_shift / n; }
    double z = std::max(c.widen_scale, widen_z_ * (1.0 - c.widen_step));
    if (std::fabs(z - widen_z_) < 1e-6 && std::hypot(dx - widen_dx_, dy - widen_dy_) < 1.0) return false;
    widen_z_ = z; widen_dx_ = dx; widen_dy_ = dy;
    return true;
}

Pass &Tracker::analyse(const Affine &M) {
    Pass &p = passes_[next_pass_++ % 6];
    const double t0 = now_ms();
    const int S = size_;
    // the Python tracker's WindowCut, byte for byte (geometry.hpp), each byte through the 256-entry
    // table of float(double(v) * alpha) + beta (Python's values) straight into the network input
    cut_(gray_, M, in_lut_, engine_->input());
    const double t1 = now_ms();
    engine_->infer();
    const double t2 = now_ms();
    // the out-of-domain kNN runs on the helper while this thread does the rest of the post-pass work;
    // collected below, or by the guard if anything in between throws (the features must not be
    // overwritten by the next inference while it reads them)
    const float *feat = engine_->feat();
    struct Collect {
        OodWorker *w;
        bool on;
        double get() { on = false; return w->wait(); }
        ~Collect() { if (on) w->wait(); }
    } bg{ood_worker_.get(), ood_ && feat && ood_worker_};
    if (bg.on) ood_worker_->start(feat);
    const float *seg = engine_->seg();
    const size_t n = size_t(S) * S;
    float *sc = p.score.ptr<float>();
    uchar *wm = p.win_mask.ptr<uchar>();
    for (size_t i = 0; i < n; ++i) { sc[i] = seg[n + i] - seg[i]; wm[i] = sc[i] > 0; }
    cv::findContours(p.win_mask, contours_, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    p.bbox = cv::Rect();
    int ci = -1;
    if (!contours_.empty()) {
        ci = contours_.size() > 1 ? largest(contours_) : 0;
        p.bbox = cv::boundingRect(contours_[ci]);
        if (contours_.size() > 1) {   // keep the largest region only: stray blobs must not reach the frame
            p.win_mask.setTo(0);
            contours2_.resize(1);
            contours2_[0] = contours_[ci];
            cv::drawContours(p.win_mask, contours2_, -1, cv::Scalar(1), -1);
            for (size_t i = 0; i < n; ++i) if (!wm[i]) sc[i] = std::min(sc[i], -1e-3f);
        }
    }
    p.has_lm = false;
    if (const float *lm = engine_->landmarks()) {
        const Metadata &md = engine_->metadata();
        for (int k = 0; k < 3; ++k)
            for (int j = 0; j < 2; ++j) p.lm_win[k][j] = lm[2 * k + j] + md.tpl[k][j];
        p.has_lm = true;
    }
    p.view_idx = -1;
    p.view_prob = NaN;
    p.has_logp = false;
    if (const float *v = engine_->view()) {
        const size_t nv = p.view_logp.size();
        for (size_t i = 0; i < nv; ++i) ev_tmp_[i] = double(v[i]);
        softmax(ev_tmp_, post_);
        p.view_idx = int(std::max_element(post_.begin(), post_.end()) - post_.begin());
        p.view_prob = post_[p.view_idx];
        for (size_t i = 0; i < nv; ++i) p.view_logp[i] = std::log(std::max(post_[i], 1e-12));
        p.has_logp = true;
    }
    const cv::Rect &b = p.bbox;
    if (b.width && b.height) {   // how decisive the logits are around the LV
        int y0 = std::max(b.y - 4, 0), y1 = std::min(b.y + b.height + 4, S);
        int x0 = std::max(b.x - 4, 0), x1 = std::min(b.x + b.width + 4, S);
        // mean |tanh(s / 2)| = mean (1 - e^-|s|) / (1 + e^-|s|), with OpenCV's vectorised exp: a
        // scalar tanhf per pixel took ~0.2 ms of each frame (perf, INT8 on a 2-core Xeon)
        const cv::Mat roi = p.score(cv::Range(y0, y1), cv::Range(x0, x1));
        if (cert_buf_.cols != 2 * S * S) cert_buf_.create(1, 2 * S * S, CV_32F);   // once: headers below
        float *buf = cert_buf_.ptr<float>();
        cv::Mat a(roi.rows, roi.cols, CV_32F, buf), e(roi.rows, roi.cols, CV_32F, buf + S * S);
        cv::absdiff(roi, cv::Scalar::all(0), a);
        a.convertTo(a, CV_32F, -1.0);
        cv::exp(a, e);
        cv::subtract(cv::Scalar::all(1), e, a);
        cv::add(e, cv::Scalar::all(1), e);
        cv::divide(a, e, a);
        p.certainty = cv::sum(a)[0] / double((y1 - y0) * (x1 - x0));
    } else {
        p.certainty = 0.0;
    }
    p.M = M;
    p.Minv = invert_affine(M);
    p.contact = p.push_x = p.push_y = 0.0;
    if (ci >= 0) edge_contact(p.win_mask, contours_[ci], p.Minv, gray_.rows, gray_.cols, p.contact, p.push_x, p.push_y);
    p.zoom = 1.0;
    p.ood = !(ood_ && feat) ? NaN : bg.on ? bg.get() : ood_->score(feat);
    const double t3 = now_ms();
    t_pre_ += t1 - t0; t_infer_ += t2 - t1; t_post_ += t3 - t2;
    return p;
}

static double long_axis(const float lm[3][2]) {   // apex to the annulus midpoint (frame px), in double
    return std::hypot(double(lm[0][0]) - 0.5 * (double(lm[1][0]) + lm[2][0]),
                      double(lm[0][1]) - 0.5 * (double(lm[1][1]) + lm[2][1]));
}

std::string Tracker::check(const Pass &p, bool detect, bool has_prev, double prev_area) const {
    const TrackerConfig &c = cfg_;
    const Metadata &md = engine_->metadata();
    if (ood_ && p.ood > ood_->frame_threshold) {   // noise, blank, another view, ...
        char buf[96];
        std::snprintf(buf, sizeof buf, "%s (score %.1f > %.1f)", OOD_REASON, p.ood, ood_->frame_threshold);
        return buf;
    }
    if (md.has_view && p.view_prob < c.min_view_prob) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "low view confidence %.2f", p.view_prob);
        return buf;
    }
    double area = p.area_frac();
    if (area < c.min_area_frac * (detect ? 0.1 : 1.0)) return "mask vanished";
    if (area > c.max_area_frac) return "mask fills the window";
    if (!detect && p.contact > c.max_edge_frac) return LEAVES;
    if (!detect && has_prev && prev_area > 0 && std::fabs(p.area_tpl() - prev_area) / prev_area > c.max_area_jump)
        return "mask area jumped";
    if (p.has_lm) {
        double tri = triangle_area(p.lm_win);
        if (!std::isfinite(tri) || sign(tri) != tpl_sign_) return "landmark triangle flipped";
        double ratio = std::fabs(tri) / std::max(tpl_area_ * p.zoom * p.zoom, 1e-6);
        if (detect) {
            if (ratio < 0.005 || ratio > c.tri_hi) return "degenerate landmark triangle";
        } else if (!(c.tri_lo <= ratio && ratio <= c.tri_hi)) {
            return "degenerate landmark triangle";
        }
        float lm[3][2];
        transform_tri(p.lm_win, p.Minv, lm);
        const double h = gray_.rows, w = gray_.cols, mx = c.landmark_margin * w, my = c.landmark_margin * h;
        for (int i = 0; i < 3; ++i)
            if (lm[i][0] < -mx || lm[i][0] > w - 1 + mx || lm[i][1] < -my || lm[i][1] > h - 1 + my)
                return "landmarks left the frame";
        if (!detect && c.min_axis_ratio > 0 && has_axis_ref_) {
            const double axis = long_axis(lm);
            if (axis < c.min_axis_ratio * axis_ref_) {
                char buf[80];
                std::snprintf(buf, sizeof buf, "long axis collapsed (%.2f of its recent length)", axis / axis_ref_);
                return buf;
            }
        }
    }
    return "";
}

void Tracker::update_view(et_result &res, const Pass &p, const Pass *detect_pass) {
    const double mem = cfg_.view_memory;
    const size_t nv = view_ev_.size();
    if (mem <= 0 || !p.has_logp) {
        if (!p.has_logp) { has_view_ev_ = false; return; }
        view_ev_ = p.view_logp;
    } else if (detect_pass) {
        for (size_t i = 0; i < nv; ++i) {
            view_ev_[i] = cfg_.detect_view_weight * detect_pass->view_logp[i];
            if (&p != detect_pass) view_ev_[i] = view_ev_[i] + p.view_logp[i];
        }
    } else if (!has_view_ev_) {
        view_ev_ = p.view_logp;
    } else {
        for (size_t i = 0; i < nv; ++i) view_ev_[i] = mem * view_ev_[i] + p.view_logp[i];
    }
    has_view_ev_ = true;
    softmax(view_ev_, post_);
    int k = int(std::max_element(post_.begin(), post_.end()) - post_.begin());
    copy_str(res.view, ET_NAME_LEN, engine_->metadata().view_names[k]);
    res.view_prob = float(post_[k]);
}

void Tracker::accept(const Pass &p, et_result &res, const float (*lm_win)[2], const Pass *detect_pass) {
    const Metadata &md = engine_->metadata();
    const cv::Rect &b = p.bbox;
    const int fh = gray_.rows, fw = gray_.cols;
    bool have_crop = false;
    if (b.width && b.height) {
        // resample only the LV's own footprint (window bbox + 2 px) at frame resolution
        const float corners[4][2] = {{float(b.x - 2), float(b.y - 2)}, {float(b.x + b.width + 1), float(b.y - 2)},
                                     {float(b.x - 2), float(b.y + b.height + 1)},
                                     {float(b.x + b.width + 1), float(b.y + b.height + 1)}};
        float mnx = INFINITY, mny = INFINITY, mxx = -INFINITY, mxy = -INFINITY;
        for (const auto &c : corners) {
            float fx, fy;
            transform_point(c[0], c[1], p.Minv, fx, fy);
            mnx = std::min(mnx, fx); mny = std::min(mny, fy); mxx = std::max(mxx, fx); mxy = std::max(mxy, fy);
        }
        int x0 = std::max(int(std::floor(mnx)), 0), y0 = std::max(int(std::floor(mny)), 0);
        int x1 = std::min(int(std::ceil(mxx)) + 1, fw), y1 = std::min(int(std::ceil(mxy)) + 1, fh);
        if (x1 > x0 && y1 > y0) {
            Affine Ms = p.M;
            for (int r = 0; r < 2; ++r) Ms(r, 2) += Ms(r, 0) * x0 + Ms(r, 1) * y0;
            // headers over frame-sized buffers allocated once per frame size: no per-frame allocation
            cv::Mat cs(y1 - y0, x1 - x0, CV_32F, crop_score_.ptr<float>());
            warp_bilinear_f32(p.score, cs, Ms, -1.0f);   // cv2.warpAffine(..., WARP_INVERSE_MAP, border -1)
            mask_crop_ = cv::Mat(y1 - y0, x1 - x0, CV_8U, mask_buf_.ptr<uchar>());
            for (int y = 0; y < cs.rows; ++y) {
                const float *s = cs.ptr<float>(y);
                uchar *m = mask_crop_.ptr<uchar>(y);
                for (int x = 0; x < cs.cols; ++x) m[x] = s[x] > 0;
            }
            have_crop = true;
            res.mask_x = x0; res.mask_y = y0; res.mask_w = x1 - x0; res.mask_h = y1 - y0;
            res.mask = mask_crop_.ptr<uchar>();
            res.area_px = cv::countNonZero(mask_crop_);
            extract_contour(mask_crop_, contours_, contour_);
            if (!contour_.empty()) {
                for (auto &q : contour_) { q.x = q.x + float(x0); q.y = q.y + float(y0); }
                resample_contour(contour_, ET_CONTOUR_POINTS, res.contour);
                res.n_contour = ET_CONTOUR_POINTS;
            }
        }
    }
    bool has_lm = false;
    float lm[3][2];
    if (p.has_lm) {
        transform_tri(lm_win ? lm_win : p.lm_win, p.Minv, lm);
        has_lm = true;
    } else if (have_crop) {
        landmarks_from_mask(mask_crop_, lm);
        for (int i = 0; i < 3; ++i) { lm[i][0] += float(res.mask_x); lm[i][1] += float(res.mask_y); }
        has_lm = true;   // NaN when the crop is empty, as in Python
    }
    // the recent longest tracked axis; a detect restarts it from the next tracked frame
    if (detect_pass) {
        has_axis_ref_ = false;
    } else if (const double axis = has_lm ? long_axis(lm) : NAN; std::isfinite(axis)) {
        axis_ref_ = has_axis_ref_ ? std::max(axis, cfg_.axis_decay * axis_ref_) : axis;
        has_axis_ref_ = true;
    }
    if (has_lm) {
        res.has_landmarks = 1;
        for (int i = 0; i < 3; ++i) { res.landmarks[2 * i] = lm[i][0]; res.landmarks[2 * i + 1] = lm[i][1]; }
    }
    if (p.view_idx >= 0) {
        copy_str(res.view_frame, ET_NAME_LEN, md.view_names[p.view_idx]);
        update_view(res, p, detect_pass);
    }
    res.confidence = float(p.certainty * (std::isfinite(p.view_prob) ? p.view_prob : 1.0));
    if (has_lm && md.warp_mode != "none") {
        std::memcpy(prev_lm_, lm, sizeof lm);
        has_prev_lm_ = true;
    }
    if (&p == detect_pass) has_prev_area_ = false;   // a whole-frame area is no reference
    else { has_prev_area_ = true; prev_area_ = p.area_tpl(); }
    lost_run_ = 0;
}

// Python intensity.neighbour_correlation: mean of the across and down correlations of adjacent pixels,
// every s-th pair (s = min(h, w) / 128), from exact integer sums.
static double neighbour_correlation(const cv::Mat &g) {
    const int h = g.rows, w = g.cols, s = std::max(1, std::min(h, w) / 128);
    double out[2];
    for (int dir = 0; dir < 2; ++dir) {
        long long n = 0, sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
        const int dy = dir, dx = 1 - dir;
        for (int y = 0; y + dy < h; y += s) {
            const uchar *ra = g.ptr<uchar>(y), *rb = g.ptr<uchar>(y + dy);
            for (int x = 0; x + dx < w; x += s) {
                const long long a = ra[x], b = rb[x + dx];
                ++n; sa += a; sb += b; sab += a * b; saa += a * a; sbb += b * b;
            }
        }
        const double cab = double(sab * n - sa * sb), vaa = double(saa * n - sa * sa), vbb = double(sbb * n - sb * sb);
        out[dir] = (n >= 2 && vaa > 0 && vbb > 0) ? cab / std::sqrt(vaa * vbb) : 0.0;
    }
    return 0.5 * (out[0] + out[1]);
}

static bool keeps_lock(const std::string &reason) {
    // an image unlike any LV (noise, a burst of artefact) says nothing about where the LV went
    return reason.rfind(OOD_REASON, 0) == 0 || reason.rfind(NOISE_REASON, 0) == 0;
}

void Tracker::lose(et_result &res, const std::string &reason) {
    res.state = ET_STATE_LOST;
    copy_str(res.reason, ET_REASON_LEN, reason);
    if (keeps_lock(reason)) return;
    if (++lost_run_ >= cfg_.forget_after) {
        has_prev_lm_ = has_prev_area_ = has_view_ev_ = has_axis_ref_ = false;
        widen_z_ = 1.0; widen_dx_ = widen_dy_ = 0.0;
    }
}

void Tracker::time_network(int runs, float *ms) {
    for (int i = 0; i < runs; ++i) {
        const double t0 = now_ms();
        engine_->infer();
        const double dt = now_ms() - t0;
        if (ms) ms[i] = float(dt);
    }
}

bool Tracker::anchor(const Pass &p, float out[3][2]) {
    if (cfg_.detect_anchor_mask && p.bbox.width && p.bbox.height) {
        float lm[3][2];
        if (landmarks_from_mask(p.win_mask, lm) && std::fabs(triangle_area(lm)) > 1.0) {
            bool fin = true;
            for (int i = 0; i < 3; ++i) fin = fin && std::isfinite(lm[i][0]) && std::isfinite(lm[i][1]);
            if (fin) { std::memcpy(out, lm, sizeof lm); return true; }
        }
    }
    std::memcpy(out, p.lm_win, sizeof p.lm_win);
    return true;
}

void Tracker::step(const cv::Mat &frame, et_result &res) {
    const double t_start = now_ms();
    std::memset(&res, 0, sizeof res);
    res.view_prob = res.pass_shift = res.ood_score = std::numeric_limits<float>::quiet_NaN();
    res.ood_threshold = ood_ ? float(ood_->clip_threshold) : std::numeric_limits<float>::quiet_NaN();
    to_gray(frame);
    const int fh = gray_.rows, fw = gray_.cols;
    if (crop_score_.rows != fh || crop_score_.cols != fw) {
        crop_score_.create(fh, fw, CV_32F);
        mask_buf_.create(fh, fw, CV_8U);
    }
    res.index = index_++;
    res.state = ET_STATE_LOST;
    t_pre_ = t_infer_ = t_post_ = 0;
    next_pass_ = 0;

    auto run = [&](const Affine &M, bool warped) -> Pass & {
        Pass &p = analyse(M);
        p.zoom = warped ? widen_z_ : 1.0;
        return p;
    };

    // blank frame: grey-level std of a 4x subsample
    sub_.create((fh + 3) / 4, (fw + 3) / 4, CV_8U);
    for (int y = 0; y < sub_.rows; ++y) {
        const uchar *r = gray_.ptr<uchar>(4 * y);
        uchar *o = sub_.ptr<uchar>(y);
        for (int x = 0; x < sub_.cols; ++x) o[x] = r[4 * x];
    }
    cv::Scalar mean, sd;
    cv::meanStdDev(sub_, mean, sd);
    double structure = 1.0;
    if (sd[0] < cfg_.blank_std) {
        lose(res, "blank frame");
    } else if (cfg_.min_structure > 0 && (structure = neighbour_correlation(gray_)) < cfg_.min_structure) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "%s (neighbour correlation %.2f < %.2f)", NOISE_REASON, structure,
                      cfg_.min_structure);
        lose(res, buf);
    } else {
        const Metadata &md = engine_->metadata();
        Affine M;
        bool detect = affine_for(M);
        Pass *p = &run(M, !detect);
        std::string why = check(*p, detect, has_prev_area_, prev_area_);
        std::string notes = why;
        bool widened_noted = false;   // Python: "window widened" in notes
        auto note = [&](const std::string &s) {
            notes += notes.empty() ? s : "; " + s;
            widened_noted = widened_noted || s == "window widened";
        };
        et_state state = detect ? ET_STATE_DETECT : ET_STATE_TRACK;
        const double bz = widen_z_, bx = widen_dx_, by = widen_dy_;
        if (!detect && (why.empty() || why == LEAVES) && p->contact > cfg_.widen_at && widen_for(*p)) {
            // the LV runs onto the window's edge: the window is too tight for this heart, not off it
            Affine Mw;
            affine_for(Mw);
            Pass *pw = &run(Mw, true);
            std::string why_w = check(*pw, false, has_prev_area_, prev_area_);
            if (!why_w.empty()) {
                if (pw->contact >= p->contact) { widen_z_ = bz; widen_dx_ = bx; widen_dy_ = by; }
                note("widened: " + why_w);
            } else {
                if (p->has_lm && pw->has_lm) {
                    float a[3][2], b[3][2];
                    transform_tri(p->lm_win, p->Minv, a);
                    transform_tri(pw->lm_win, pw->Minv, b);
                    res.pass_shift = float(pass_shift(a, b));
                }
                p = pw;
                why.clear();
                note("window widened");
            }
        }
        if (!why.empty() && !detect) {   // lost the lock: re-detect on this very frame
            p = &run(letterbox_affine(fh, fw, size_), false);
            why = check(*p, true, has_prev_area_, prev_area_);
            detect = true;
            state = ET_STATE_REDETECT;
            if (!why.empty()) note("re-detect: " + why);
        }
        const Pass *detect_pass = detect ? p : nullptr;
        bool has_anchor = false;
        float anc[3][2];
        if (why.empty() && detect && md.warp_mode != "none" && p->has_lm) {
            has_anchor = anchor(*p, anc);   // reported if no warped refinement is accepted
            for (int it = 0; it < cfg_.refine_first; ++it) {   // refine the detect with a warped pass
                float seed[3][2];
                transform_tri(has_anchor ? anc : p->lm_win, p->Minv, seed);
                Affine Wr;
                if (!warp_affine(seed, Wr)) break;
                Pass *pr = &run(widened(Wr), true);
                std::string bad = check(*pr, false, false, 0.0);   // a refine pass has no area reference
                if ((bad.empty() || bad == LEAVES) && pr->contact > cfg_.widen_at && widen_for(*pr)) {
                    if (!widened_noted) note("window widened");
                    if (!warp_affine(seed, Wr)) break;
                    pr = &run(widened(Wr), true);
                    bad = check(*pr, false, false, 0.0);
                }
                if (!bad.empty()) break;
                if (pr->has_lm) {
                    float b[3][2];
                    transform_tri(pr->lm_win, pr->Minv, b);
                    res.pass_shift = float(pass_shift(seed, b));
                }
                p = pr;
                has_anchor = false;
            }
        }
        copy_str(res.reason, ET_REASON_LEN, notes);
        res.ood_score = float(p->ood);
        if (!why.empty()) {
            lose(res, notes);
        } else {
            res.state = state;
            accept(*p, res, has_anchor ? anc : nullptr, detect_pass);
        }
    }
    const double t_end = now_ms();
    res.latency_ms = float(t_end - t_start);
    res.pre_ms = float(t_pre_);
    res.infer_ms = float(t_infer_);
    res.post_ms = float(t_post_ + (t_end - t_start) - (t_pre_ + t_infer_ + t_post_));
}

}  // namespace edgetan
