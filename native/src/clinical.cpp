#include "clinical.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "geometry.hpp"

namespace edgetan {
namespace {
const double NaN = std::numeric_limits<double>::quiet_NaN();
const int N_DISKS = 20;

// bilinear sample of a {0,1} mask at float32 coordinates, 0 outside (cv2.remap as the Python side's
// OpenCV computes it: float32 weights)
float sample(const cv::Mat &m, float X, float Y) {
    const float fx0 = std::floor(X), fy0 = std::floor(Y);
    if (!(fx0 >= -1.0f && fx0 < float(m.cols) && fy0 >= -1.0f && fy0 < float(m.rows))) return 0.0f;
    const int x0 = int(fx0), y0 = int(fy0);
    const float fx = X - fx0, fy = Y - fy0;
    auto px = [&](int yy, int xx) -> float {
        return (unsigned(yy) < unsigned(m.rows) && unsigned(xx) < unsigned(m.cols)) ? float(m.ptr<uchar>(yy)[xx] > 0) : 0.0f;
    };
    return (px(y0, x0) * (1.0f - fx) + px(y0, x0 + 1) * fx) * (1.0f - fy) +
           (px(y0 + 1, x0) * (1.0f - fx) + px(y0 + 1, x0 + 1) * fx) * fy;
}

// Simpson's disks from a mask (clinical.disk_diameters, mask branch, step 0.25 px), in frame px.
double simpson(const cv::Mat &mask, int ox, int oy, const double lm[3][2]) {
    const double ax = lm[0][0], ay = lm[0][1];
    const double mx = 0.5 * (lm[1][0] + lm[2][0]), my = 0.5 * (lm[1][1] + lm[2][1]);
    const double L = std::hypot(mx - ax, my - ay);
    if (!std::isfinite(L) || L <= 0) return NaN;
    const double ux = (mx - ax) / std::max(L, 1e-12), uy = (my - ay) / std::max(L, 1e-12);
    const double vx = -uy, vy = ux, h = L / N_DISKS, step = 0.25;
    double R = -1;
    for (int y = 0; y < mask.rows; ++y) {
        const uchar *r = mask.ptr<uchar>(y);
        for (int x = 0; x < mask.cols; ++x)
            if (r[x]) R = std::max(R, std::fabs((x + ox - ax) * vx + (y + oy - ay) * vy));
    }
    if (R < 0) return NaN;   // an empty mask has no volume (callers skip it before)
    R += 2.0;
    const long nt = long(std::ceil((R + step / 2 - (-R)) / step));
    double sum = 0;
    for (int i = 0; i < N_DISKS; ++i) {
        const double s = (i + 0.5) * h;
        long count = 0;
        for (long k = 0; k < nt; ++k) {
            const double t = -R + k * step;
            const float X = float(ax + s * ux + t * vx), Y = float(ay + s * uy + t * vy);
            if (sample(mask, X - float(ox), Y - float(oy)) >= 0.5f) ++count;
        }
        const double d = count * step;
        sum += d * d;
    }
    return M_PI / 4 * sum * h;
}

std::vector<double> smooth(const std::vector<double> &x, double sigma) {
    const int T = int(x.size());
    if (sigma <= 0 || T < 3) return x;
    const int r = int(std::ceil(3 * sigma));
    std::vector<double> k(2 * r + 1);
    double ks = 0;
    for (int i = -r; i <= r; ++i) ks += (k[i + r] = std::exp(-0.5 * (i / sigma) * (i / sigma)));
    for (double &v : k) v /= ks;
    auto at = [&](int i) {   // np.pad: reflect when len > r, else edge
        if (T > r) { while (i < 0 || i >= T) i = i < 0 ? -i : 2 * (T - 1) - i; return x[i]; }
        return x[std::min(std::max(i, 0), T - 1)];
    };
    std::vector<double> out(T);
    for (int t = 0; t < T; ++t) {   // np.convolve(xp, k, "valid"): sum xp[t + j] k[2r - j]
        double s = 0;
        for (int j = 0; j <= 2 * r; ++j) s += at(t + j - r) * k[2 * r - j];
        out[t] = s;
    }
    return out;
}

std::vector<int> peaks(const std::vector<double> &s, double min_prom, int min_dist, double end_level = 0.85) {
    const int T = int(s.size());
    const double lo_all = *std::min_element(s.begin(), s.end());
    const double rng = *std::max_element(s.begin(), s.end()) - lo_all;
    std::vector<std::pair<int, bool>> cands;
    for (int i = 0; i < T; ++i) {
        if (!((i == 0 || s[i] >= s[i - 1]) && (i == T - 1 || s[i] > s[i + 1]))) continue;
        std::vector<double> drops, proper;
        for (int step : {-1, 1}) {
            int j = i + step;
            double lo = s[i];
            while (0 <= j && j < T && s[j] <= s[i]) { lo = std::min(lo, s[j]); j += step; }
            drops.push_back(s[i] - lo);
            if (0 <= j && j < T) proper.push_back(s[i] - lo);
        }
        double prom = proper.empty() ? *std::max_element(drops.begin(), drops.end())
                                     : *std::min_element(proper.begin(), proper.end());
        if (prom < min_prom) continue;
        cands.emplace_back(i, *std::min_element(drops.begin(), drops.end()) >= min_prom);
    }
    double floor_ = lo_all + end_level * rng;
    bool any_conf = false;
    double min_conf = 0;
    for (auto &c : cands)
        if (c.second) { min_conf = any_conf ? std::min(min_conf, s[c.first]) : s[c.first]; any_conf = true; }
    if (any_conf) floor_ = min_conf - 0.1 * rng;
    std::vector<std::pair<double, int>> kept;
    for (auto &c : cands)
        if (c.second || s[c.first] >= floor_) kept.emplace_back(s[c.first], c.first);
    std::sort(kept.rbegin(), kept.rend());   // highest first (Python: sorted(kept, reverse=True))
    std::vector<int> out;
    for (auto &kv : kept) {
        bool far = true;
        for (int j : out) far = far && std::abs(kv.second - j) >= min_dist;
        if (far) out.push_back(kv.second);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// _fill_nan: np.interp over the finite frames (ends held); all-NaN stays NaN
std::vector<double> fill_linear(const std::vector<double> &v) {
    const int T = int(v.size());
    std::vector<double> x(v);
    std::vector<int> ok;
    for (int i = 0; i < T; ++i) if (std::isfinite(x[i])) ok.push_back(i);
    if (ok.empty()) return x;
    for (int i = 0; i < T; ++i) {
        if (std::isfinite(x[i])) continue;
        auto it = std::lower_bound(ok.begin(), ok.end(), i);
        if (it == ok.begin()) x[i] = v[ok.front()];
        else if (it == ok.end()) x[i] = v[ok.back()];
        else { int b = *it, a = *(it - 1); x[i] = v[a] + (v[b] - v[a]) * double(i - a) / double(b - a); }
    }
    return x;
}

// clinical.cycle_period: the first autocorrelation peak within 0.9 of the best (>= 0.5) between
// 200 and 30 bpm; 0 = no clear cycle
int cycle_period(const std::vector<double> &v, double fps) {
    std::vector<double> y = fill_linear(v);
    const int T = int(y.size());
    double mean = 0;
    for (double a : y) { if (!std::isfinite(a)) return 0; mean += a; }
    if (T == 0) return 0;
    mean /= T;
    bool any = false;
    for (double &a : y) { a -= mean; any = any || a != 0.0; }
    const int lo = std::max(2, int(60.0 / 200.0 * fps)), hi = std::min(T - 3, int(std::ceil(60.0 / 30.0 * fps)));
    if (hi <= lo || !any) return 0;
    std::vector<double> r;
    for (int k = lo; k <= hi; ++k) {
        double d = 0, na = 0, nb = 0;
        for (int i = 0; i + k < T; ++i) { d += y[i] * y[i + k]; na += y[i] * y[i]; nb += y[i + k] * y[i + k]; }
        r.push_back(d / (std::sqrt(na) * std::sqrt(nb) + 1e-12));
    }
    const double best = *std::max_element(r.begin(), r.end());
    if (best < 0.5) return 0;
    const int n = int(r.size());
    for (int i = 0; i < n; ++i)
        if ((i == 0 || r[i] >= r[i - 1]) && (i == n - 1 || r[i] >= r[i + 1]) && r[i] >= std::max(0.5, 0.9 * best))
            return lo + i;
    return 0;
}

// clinical.fill_gaps_periodic: NaN frames from the same phase one or two cycles away, else linear
std::vector<double> fill_gaps_periodic(const std::vector<double> &v, double fps) {
    const int T = int(v.size());
    int n_ok = 0;
    for (double a : v) n_ok += std::isfinite(a) ? 1 : 0;
    if (n_ok == T || n_ok == 0) return fill_linear(v);
    const int P = cycle_period(v, fps);
    std::vector<double> out(v);
    if (P > 0)
        for (int t = 0; t < T; ++t) {
            if (std::isfinite(v[t])) continue;
            double s = 0;
            int n = 0;
            for (int u : {t - P, t + P, t - 2 * P, t + 2 * P})
                if (u >= 0 && u < T && std::isfinite(v[u])) { s += v[u]; ++n; }
            if (n) out[t] = s / n;
        }
    return fill_linear(out);
}

void detect_ed_es(const std::vector<double> &area, double fps, std::vector<int> &ed, std::vector<int> &es) {
    ed.clear(); es.clear();
    const int T = int(area.size());
    fps = fps > 0 ? fps : 30.0;
    std::vector<double> x = fill_gaps_periodic(area, fps);
    if (T < 2 || !std::isfinite(x[0])) return;
    std::vector<double> s = smooth(x, 0.03 * fps);
    const double smax = *std::max_element(s.begin(), s.end()), rng = smax - *std::min_element(s.begin(), s.end());
    if (rng <= 1e-9 * std::max(1.0, std::fabs(smax))) return;
    const int min_dist = std::max(1, int(std::nearbyint(0.8 * 60.0 / 200.0 * fps)));
    const double prom = 0.2 * rng;
    std::vector<double> neg(s.size());
    for (size_t i = 0; i < s.size(); ++i) neg[i] = -s[i];
    std::vector<std::pair<int, int>> events;   // (frame, 0 = ed / 1 = es), sorted like Python's tuples
    for (int i : peaks(s, prom, min_dist)) events.emplace_back(i, 0);
    for (int i : peaks(neg, prom, min_dist)) events.emplace_back(i, 1);
    std::sort(events.begin(), events.end());
    std::vector<std::pair<int, int>> merged;
    for (auto &e : events) {   // force ED/ES alternation: keep the more extreme of a run
        if (!merged.empty() && merged.back().second == e.second) {
            int j = merged.back().first;
            if (e.second == 0 ? s[e.first] > s[j] : s[e.first] < s[j]) merged.back() = e;
        } else if (merged.empty() || merged.back().first != e.first) {
            merged.push_back(e);
        }
    }
    for (auto &e : merged) {   // snap to the raw extreme within +-1 frame
        int lo = std::max(0, e.first - 1), hi = std::min(T, e.first + 2), best = lo;
        for (int i = lo; i < hi; ++i)
            if (e.second == 0 ? x[i] > x[best] : x[i] < x[best]) best = i;
        (e.second == 0 ? ed : es).push_back(best);
    }
}

std::vector<std::pair<int, int>> pair_beats(std::vector<int> ed, std::vector<int> es) {
    std::sort(ed.begin(), ed.end());
    std::sort(es.begin(), es.end());
    std::vector<std::pair<int, int>> pairs;
    std::vector<int> used;
    for (size_t k = 0; k < ed.size(); ++k) {
        const long e = ed[k];
        const long nxt = k + 1 < ed.size() ? ed[k + 1] : std::numeric_limits<long>::max();
        int after = -1;
        for (int v : es) if (v > e && v < nxt) { after = v; break; }
        if (after >= 0) { pairs.emplace_back(int(e), after); used.push_back(after); continue; }
        const long prev = k > 0 ? ed[k - 1] : -1;
        int before = -1;
        for (int v : es) if (v < e && v > prev) before = v;
        if (before >= 0 && std::find(used.begin(), used.end(), before) == used.end()) {
            pairs.emplace_back(int(e), before);
            used.push_back(before);
        }
    }
    return pairs;
}

// edge_tan.runtime.clinical.MAX_BEAT_EF: a beat above it (or not positive) is a tracking failure
const double MAX_BEAT_EF = 85.0;

// frame t and its neighbours have measured volumes (clinical._over_gap: not in or next to a lost frame)
bool measured_near(const std::vector<double> &raw, int t) {
    for (int u = t - 1; u <= t + 1; ++u)
        if (u >= 0 && u < int(raw.size()) && !std::isfinite(raw[u])) return false;
    return true;
}

// clinical.beats_used: mean over the plausible beats (0 < EF <= MAX_BEAT_EF), every finite beat if none
// is (plausible_beats); of the plausible ones, only those with ED and ES on measured frames away from
// any gap (measured_near on `raw`) when any is: a volume filled into a lost frame is a stand-in
double ef_of(const std::vector<std::pair<int, int>> &beats, const std::vector<double> &vol,
             const std::vector<double> &raw) {
    double s[2] = {0, 0}, s_all[2] = {0, 0};   // [any beat, beats measured whole]
    int n[2] = {0, 0}, n_all[2] = {0, 0};
    for (auto &b : beats) {
        double edv = vol[b.first], esv = vol[b.second];
        if (!(edv > 0)) continue;
        double ef = (edv - esv) / edv * 100.0;
        if (!std::isfinite(ef)) continue;
        const bool whole = measured_near(raw, b.first) && measured_near(raw, b.second);
        const bool plausible = ef > 0 && ef <= MAX_BEAT_EF;
        for (int w = 0; w < (whole ? 2 : 1); ++w) {
            s_all[w] += ef; ++n_all[w];
            if (plausible) { s[w] += ef; ++n[w]; }
        }
    }
    if (n[0]) return n[1] ? s[1] / n[1] : s[0] / n[0];
    return n_all[1] ? s_all[1] / n_all[1] : n_all[0] ? s_all[0] / n_all[0] : NaN;
}
}  // namespace

FrameVolumes frame_volumes(const cv::Mat &mask, int x0, int y0, const float (*lm)[2]) {
    FrameVolumes v{double(mask.empty() ? 0 : cv::countNonZero(mask)), NaN, NaN};
    if (v.area_px <= 0) return v;
    double l[3][2];
    bool fin = lm != nullptr;
    for (int i = 0; fin && i < 3; ++i)
        for (int j = 0; j < 2; ++j) { l[i][j] = lm[i][j]; fin = fin && std::isfinite(lm[i][j]); }
    if (!fin) {   // no landmarks (lost frame): read them off the mask
        float fl[3][2];
        if (!landmarks_from_mask(mask, fl)) return v;
        fin = true;
        for (int i = 0; i < 3; ++i) {
            l[i][0] = double(fl[i][0] + float(x0));
            l[i][1] = double(fl[i][1] + float(y0));
            fin = fin && std::isfinite(l[i][0]) && std::isfinite(l[i][1]);
        }
        if (!fin) return v;
    }
    v.simpson_px3 = simpson(mask, x0, y0, l);
    const double L = std::hypot(l[0][0] - 0.5 * (l[1][0] + l[2][0]), l[0][1] - 0.5 * (l[1][1] + l[2][1]));
    v.area_length_px3 = L > 0 ? 8.0 * v.area_px * v.area_px / (3.0 * M_PI * L) : NaN;
    return v;
}

ClinicalSummary clinical_summary(const std::vector<FrameVolumes> &curve, double fps) {
    ClinicalSummary out;
    out.ef = out.ef_area_length = NaN;
    std::vector<double> area, vs, va;
    for (auto &f : curve) {
        out.found = out.found || f.area_px > 0;
        area.push_back(f.area_px > 0 ? f.area_px : NaN);
        vs.push_back(f.simpson_px3);
        va.push_back(f.area_length_px3);
    }
    if (!out.found) return out;
    detect_ed_es(area, fps, out.ed, out.es);
    auto beats = pair_beats(out.ed, out.es);
    // an ED or ES in lost frames reads its volume from the same phase of a neighbouring beat
    auto filled = [&](const std::vector<double> &v) {
        for (double a : v) if (!std::isfinite(a)) return fill_gaps_periodic(v, fps > 0 ? fps : 30.0);
        return v;
    };
    out.ef = beats.empty() ? NaN : ef_of(beats, filled(vs), vs);
    out.ef_area_length = beats.empty() ? NaN : ef_of(beats, filled(va), va);
    return out;
}

}  // namespace edgetan
