#include "geometry.hpp"

#include <cmath>
#include <limits>

#include <opencv2/imgproc.hpp>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace edgetan {

double triangle_area(const float p[3][2]) {
    double ax = p[0][0], ay = p[0][1], bx = p[1][0], by = p[1][1], cx = p[2][0], cy = p[2][1];
    return 0.5 * ((bx - ax) * (cy - ay) - (cx - ax) * (by - ay));
}

bool affine_to_template(const float lm[3][2], const float tpl[3][2], Affine &out) {
    if (!(std::fabs(triangle_area(lm)) >= 1.0)) return false;   // NaN counts as degenerate too
    // solve [x y 1] . sol = tpl by LU with partial pivoting (numpy.linalg.solve = LAPACK gesv)
    double A[3][3], B[3][2];
    for (int i = 0; i < 3; ++i) {
        A[i][0] = lm[i][0]; A[i][1] = lm[i][1]; A[i][2] = 1.0;
        B[i][0] = tpl[i][0]; B[i][1] = tpl[i][1];
    }
    for (int k = 0; k < 3; ++k) {
        int piv = k;
        for (int i = k + 1; i < 3; ++i) if (std::fabs(A[i][k]) > std::fabs(A[piv][k])) piv = i;
        if (A[piv][k] == 0.0) return false;
        if (piv != k) { std::swap(A[piv], A[k]); std::swap(B[piv], B[k]); }
        for (int i = k + 1; i < 3; ++i) {
            double f = A[i][k] / A[k][k];
            for (int j = k; j < 3; ++j) A[i][j] -= f * A[k][j];
            for (int j = 0; j < 2; ++j) B[i][j] -= f * B[k][j];
        }
    }
    double X[3][2];
    for (int j = 0; j < 2; ++j)
        for (int i = 2; i >= 0; --i) {
            double s = B[i][j];
            for (int m = i + 1; m < 3; ++m) s -= A[i][m] * X[m][j];
            X[i][j] = s / A[i][i];
        }
    out = Affine(X[0][0], X[1][0], X[2][0], X[0][1], X[1][1], X[2][1]);
    return true;
}

Affine letterbox_affine(int h, int w, int size) {
    double s = double(size - 1) / double(std::max(std::max(h - 1, w - 1), 1));
    double tx = ((size - 1) - s * (w - 1)) / 2.0, ty = ((size - 1) - s * (h - 1)) / 2.0;
    return Affine(s, 0.0, tx, 0.0, s, ty);
}

Affine crop_affine(const float lm[3][2], int size, const RoiExpand &e) {
    double x0 = lm[0][0], y0 = lm[0][1], x1 = x0, y1 = y0;
    for (int i = 1; i < 3; ++i) {
        x0 = std::min(x0, double(lm[i][0])); x1 = std::max(x1, double(lm[i][0]));
        y0 = std::min(y0, double(lm[i][1])); y1 = std::max(y1, double(lm[i][1]));
    }
    double w = std::max(x1 - x0, 1.0), h = std::max(y1 - y0, 1.0);
    double bx0 = x0 - e.left * w, by0 = y0 - e.top * h, bx1 = x1 + e.right * w, by1 = y1 + e.bottom * h;
    double sx = (size - 1) / std::max(bx1 - bx0, 1e-6), sy = (size - 1) / std::max(by1 - by0, 1e-6);
    return Affine(sx, 0.0, -sx * bx0, 0.0, sy, -sy * by0);
}

Affine invert_affine(const Affine &M) {
    Affine out;
    cv::invertAffineTransform(M, out);
    return out;
}

double skew(const Affine &M) {
    const double a = M(0, 0), b = M(0, 1), c = M(1, 0), d = M(1, 1);
    const double det = std::fabs(a * d - b * c);
    if (!(det > 0.0)) return std::numeric_limits<double>::infinity();
    const double r = (a * a + b * b + c * c + d * d) / det;
    return 0.5 * (r + std::sqrt(std::max(r * r - 4.0, 0.0)));
}

Affine compose(const Affine &A, const Affine &B) {
    double a[3][3] = {{A(0, 0), A(0, 1), A(0, 2)}, {A(1, 0), A(1, 1), A(1, 2)}, {0, 0, 1}};
    double b[3][3] = {{B(0, 0), B(0, 1), B(0, 2)}, {B(1, 0), B(1, 1), B(1, 2)}, {0, 0, 1}};
    Affine r;
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) r(i, j) = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
    return r;
}

Affine similarity_about(double cx, double cy, double scale, double dx, double dy) {
    double c = std::cos(0.0) * scale, s = std::sin(0.0) * scale;
    return Affine(c, -s, cx - c * cx + s * cy + dx, s, c, cy - s * cx - c * cy + dy);
}

void transform_point(float x, float y, const Affine &M, float &ox, float &oy) {
    double px = x, py = y;
    ox = float(px * M(0, 0) + py * M(0, 1) + M(0, 2));
    oy = float(px * M(1, 0) + py * M(1, 1) + M(1, 2));
}

void transform_tri(const float in[3][2], const Affine &M, float out[3][2]) {
    float tmp[3][2];
    for (int i = 0; i < 3; ++i) transform_point(in[i][0], in[i][1], M, tmp[i][0], tmp[i][1]);
    for (int i = 0; i < 3; ++i) { out[i][0] = tmp[i][0]; out[i][1] = tmp[i][1]; }
}

void WindowCut::resize(int size) {
    size_ = size;
    if (size <= 0) return;
    adx_.assign(size_t(size), 0);
    ady_.assign(size_t(size), 0);
}

namespace {
// The window byte at source position (X, Y) in 1/32 px: pixel (X >> 5, Y >> 5), sub-pixel index
// (X & 31, Y & 31), remap's integer bilinear with 0 outside the frame. remap's source coordinates are
// int16 (saturated), but a saturated coordinate lies outside any frame either way: 0 both ways.
inline int sample_exact(const uchar *base, size_t st, int w, int h, int X, int Y) {
    const int sx = X >> 5, sy = Y >> 5, tx = X & 31, ty = Y & 31;
    if (unsigned(sx) < unsigned(w - 1) && unsigned(sy) < unsigned(h - 1)) {   // all four inside
        const uchar *p = base + size_t(sy) * st + size_t(sx);
        return ((p[0] * (32 - tx) + p[1] * tx) * (32 - ty) + (p[st] * (32 - tx) + p[st + 1] * tx) * ty + 512) >> 10;
    }
    if (sx >= w || sx + 1 < 0 || sy >= h || sy + 1 < 0) return 0;          // all four outside
    auto px = [&](int yy, int xx) -> int {
        return (unsigned(yy) < unsigned(h) && unsigned(xx) < unsigned(w)) ? base[size_t(yy) * st + size_t(xx)] : 0;
    };
    return ((px(sy, sx) * (32 - tx) + px(sy, sx + 1) * tx) * (32 - ty) +
            (px(sy + 1, sx) * (32 - tx) + px(sy + 1, sx + 1) * tx) * ty + 512) >> 10;
}

#if defined(__x86_64__) && defined(__GNUC__)
#define EDGETAN_CUT_AVX2 1
// Eight window pixels at a time where all four neighbours of all eight lie inside the frame (the rest
// go to sample_exact): two 4-byte gathers fetch each pixel's neighbour pairs (row sy at sx, row sy + 1
// at sx - 2: both reads stay inside the frame's rows above/below, so never outside the image buffer),
// pmaddwd forms p0 * (32 - t) + p1 * t exactly in int32, and a float gather reads the input table.
// Same integers as sample_exact, so the same bytes. Returns how many pixels of the row it wrote
// (a multiple of 8; the caller does the rest).
__attribute__((target("avx2"))) int cut_row_avx2(const uchar *base, size_t st, int w, int h, int X0, int Y0,
                                                  const int *adx, const int *ady, int S, const float *lut,
                                                  float *out) {
    const __m256i x0 = _mm256_set1_epi32(X0), y0 = _mm256_set1_epi32(Y0), m31 = _mm256_set1_epi32(31);
    const __m256i m255 = _mm256_set1_epi32(255), c32 = _mm256_set1_epi32(32), half = _mm256_set1_epi32(512);
    const __m256i neg1 = _mm256_set1_epi32(-1), wlim = _mm256_set1_epi32(w - 1), hlim = _mm256_set1_epi32(h - 1);
    const __m256i stv = _mm256_set1_epi32(int(st));
    const int *b32 = reinterpret_cast<const int *>(base);
    int x = 0;
    for (; x + 8 <= S; x += 8) {
        const __m256i X = _mm256_srai_epi32(_mm256_add_epi32(x0, _mm256_loadu_si256((const __m256i *)(adx + x))), 5);
        const __m256i Y = _mm256_srai_epi32(_mm256_add_epi32(y0, _mm256_loadu_si256((const __m256i *)(ady + x))), 5);
        const __m256i sx = _mm256_srai_epi32(X, 5), sy = _mm256_srai_epi32(Y, 5);
        const __m256i in = _mm256_and_si256(_mm256_and_si256(_mm256_cmpgt_epi32(sx, neg1), _mm256_cmpgt_epi32(wlim, sx)),
                                            _mm256_and_si256(_mm256_cmpgt_epi32(sy, neg1), _mm256_cmpgt_epi32(hlim, sy)));
        if (_mm256_movemask_ps(_mm256_castsi256_ps(in)) != 0xFF) {
            for (int k = 0; k < 8; ++k)
                out[x + k] = lut[sample_exact(base, st, w, h, (X0 + adx[x + k]) >> 5, (Y0 + ady[x + k]) >> 5)];
            continue;
        }
        const __m256i off = _mm256_add_epi32(_mm256_mullo_epi32(sy, stv), sx);
        const __m256i g0 = _mm256_i32gather_epi32(b32, off, 1);                                   // p00 p01 . .
        const __m256i g1 = _mm256_i32gather_epi32(b32, _mm256_add_epi32(off, _mm256_sub_epi32(stv, _mm256_set1_epi32(2))), 1);  // . . p10 p11
        const __m256i top = _mm256_or_si256(_mm256_and_si256(g0, m255), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(g0, 8), m255), 16));
        const __m256i bot = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(g1, 16), m255), _mm256_slli_epi32(_mm256_srli_epi32(g1, 24), 16));
        const __m256i tx = _mm256_and_si256(X, m31), ty = _mm256_and_si256(Y, m31);
        const __m256i wx = _mm256_or_si256(_mm256_sub_epi32(c32, tx), _mm256_slli_epi32(tx, 16));
        const __m256i wy = _mm256_or_si256(_mm256_sub_epi32(c32, ty), _mm256_slli_epi32(ty, 16));
        const __m256i rt = _mm256_madd_epi16(top, wx), rb = _mm256_madd_epi16(bot, wx);          // <= 8160 each
        const __m256i v = _mm256_srai_epi32(_mm256_add_epi32(_mm256_madd_epi16(_mm256_or_si256(rt, _mm256_slli_epi32(rb, 16)), wy), half), 10);
        _mm256_storeu_ps(out + x, _mm256_i32gather_ps(lut, v, 4));
    }
    return x;
}

bool have_avx2() {
    static const bool yes = __builtin_cpu_supports("avx2");
    return yes;
}
#endif
}  // namespace

// The source position of each window row: X0 + adx[x], Y0 + ady[x] are warpAffine's 10-bit fixed-point
// source coordinates (+16: half a 1/32 step), >> 5 their 1/32 px position. `row(y, X0, Y0)` per row;
// false (no row called) for a non-finite affine: nothing of the frame is in such a window.
template <class Row>
bool WindowCut::rows(const Affine &M, Row &&row) {
    for (int i = 0; i < 6; ++i)
        if (!std::isfinite(M.val[i])) return false;
    const Affine I = invert_affine(M);   // window -> frame, as warpAffine inverts it
    const double m[6] = {I(0, 0), I(0, 1), I(0, 2), I(1, 0), I(1, 1), I(1, 2)};
    for (int x = 0; x < size_; ++x) {
        adx_[size_t(x)] = cvRound(m[0] * x * 1024.0);
        ady_[size_t(x)] = cvRound(m[3] * x * 1024.0);
    }
    for (int y = 0; y < size_; ++y)
        row(y, cvRound((m[1] * y + m[2]) * 1024.0) + 16, cvRound((m[4] * y + m[5]) * 1024.0) + 16);
    return true;
}

void WindowCut::operator()(const cv::Mat &src, cv::Mat &dst, const Affine &M) {
    CV_Assert(src.type() == CV_8UC1);
    const int S = size_, h = src.rows, w = src.cols;
    const size_t st = src.step[0];
    dst.create(S, S, CV_8U);
    const bool any = rows(M, [&](int y, int X0, int Y0) {
        uchar *d = dst.ptr<uchar>(y);
        for (int x = 0; x < S; ++x)
            d[x] = uchar(sample_exact(src.data, st, w, h, (X0 + adx_[size_t(x)]) >> 5, (Y0 + ady_[size_t(x)]) >> 5));
    });
    if (!any) dst.setTo(0);
}

void WindowCut::operator()(const cv::Mat &src, const Affine &M, const float lut[256], float *out) {
    CV_Assert(src.type() == CV_8UC1);
    const int S = size_, h = src.rows, w = src.cols;
    const size_t st = src.step[0];
#ifdef EDGETAN_CUT_AVX2
    // AVX2 where the CPU has it (and the frame fits the 32-bit gather offsets)
    const bool simd = simd_ && have_avx2() && st * size_t(h) < (size_t(1) << 30);
#endif
    const bool any = rows(M, [&](int y, int X0, int Y0) {
        float *o = out + size_t(y) * size_t(S);
        int x = 0;   // the pixels the AVX2 form did not write
#ifdef EDGETAN_CUT_AVX2
        if (simd) x = cut_row_avx2(src.data, st, w, h, X0, Y0, adx_.data(), ady_.data(), S, lut, o);
#endif
        for (; x < S; ++x)
            o[x] = lut[sample_exact(src.data, st, w, h, (X0 + adx_[size_t(x)]) >> 5, (Y0 + ady_[size_t(x)]) >> 5)];
    });
    if (!any)
        for (size_t i = 0; i < size_t(S) * size_t(S); ++i) out[i] = lut[0];
}

void WindowCut::remap_reference(const cv::Mat &src, cv::Mat &dst, const Affine &M) {
    const int S = size_;
    dst.create(S, S, CV_8U);
    xy_.create(S, S, CV_16SC2);
    a_.create(S, S, CV_16UC1);
    const bool any = rows(M, [&](int y, int X0, int Y0) {
        short *xy = xy_.ptr<short>(y);
        ushort *al = a_.ptr<ushort>(y);
        for (int x = 0; x < S; ++x) {
            const int X = (X0 + adx_[size_t(x)]) >> 5, Y = (Y0 + ady_[size_t(x)]) >> 5;
            xy[2 * x] = cv::saturate_cast<short>(X >> 5);
            xy[2 * x + 1] = cv::saturate_cast<short>(Y >> 5);
            al[x] = ushort((Y & 31) * 32 + (X & 31));
        }
    });
    if (!any) { dst.setTo(0); return; }   // nothing of the frame is in such a window
    cv::remap(src, dst, xy_, a_, cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));
}

void warp_bilinear_f32(const cv::Mat &src, cv::Mat &dst, const Affine &A, float border) {
    const int h = src.rows, w = src.cols;
    for (int y = 0; y < dst.rows; ++y) {
        float *o = dst.ptr<float>(y);
        for (int x = 0; x < dst.cols; ++x) {
            const float X = float(A(0, 0) * x + A(0, 1) * y + A(0, 2)), Y = float(A(1, 0) * x + A(1, 1) * y + A(1, 2));
            const float fx0 = std::floor(X), fy0 = std::floor(Y);
            if (!(fx0 >= -1.0f && fx0 < float(w) && fy0 >= -1.0f && fy0 < float(h))) { o[x] = border; continue; }
            const int x0 = int(fx0), y0 = int(fy0);
            const float fx = X - fx0, fy = Y - fy0;
            auto px = [&](int yy, int xx) -> float {
                return (unsigned(yy) < unsigned(h) && unsigned(xx) < unsigned(w)) ? src.ptr<float>(yy)[xx] : border;
            };
            const float v = (px(y0, x0) * (1.0f - fx) + px(y0, x0 + 1) * fx) * (1.0f - fy) +
                            (px(y0 + 1, x0) * (1.0f - fx) + px(y0 + 1, x0 + 1) * fx) * fy;
            o[x] = v;
        }
    }
}

static int largest_index(const std::vector<std::vector<cv::Point>> &cs) {
    int best = 0;
    double area = -1;
    for (size_t i = 0; i < cs.size(); ++i) {
        double a = cv::contourArea(cs[i]);
        if (a > area) { area = a; best = int(i); }   // first of equal maxima, like Python's max()
    }
    return best;
}

void extract_contour(const cv::Mat &mask, std::vector<std::vector<cv::Point>> &scratch, std::vector<cv::Point2f> &out) {
    out.clear();
    cv::findContours(mask, scratch, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
    if (scratch.empty()) return;
    for (const auto &p : scratch[largest_index(scratch)]) out.emplace_back(float(p.x), float(p.y));
}

void resample_contour(const std::vector<cv::Point2f> &c, int n, float *out) {
    size_t m = c.size();
    if (m == 0) return;
    if (m == 1) {
        for (int i = 0; i < n; ++i) { out[2 * i] = c[0].x; out[2 * i + 1] = c[0].y; }
        return;
    }
    std::vector<double> s(m + 1, 0.0);
    for (size_t i = 0; i < m; ++i) {
        const cv::Point2f &a = c[i], &b = c[(i + 1) % m];
        double dx = double(b.x) - a.x, dy = double(b.y) - a.y;
        s[i + 1] = s[i] + std::sqrt(dx * dx + dy * dy);
    }
    double step = s[m] / n;
    size_t j = 0;
    for (int k = 0; k < n; ++k) {
        double t = k * step;
        while (j + 1 < m + 1 && s[j + 1] <= t) ++j;   // s[j] <= t < s[j+1] (np.interp)
        const cv::Point2f &a = c[j % m], &b = c[(j + 1) % m];
        double x, y;
        if (j >= m) { x = c[0].x; y = c[0].y; }
        else {
            double d = s[j + 1] - s[j];
            double sx = (double(b.x) - a.x) / d, sy = (double(b.y) - a.y) / d;
            x = sx * (t - s[j]) + a.x;
            y = sy * (t - s[j]) + a.y;
        }
        out[2 * k] = float(x);
        out[2 * k + 1] = float(y);
    }
}

bool landmarks_from_mask(const cv::Mat &mask, float out[3][2]) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int i = 0; i < 3; ++i) out[i][0] = out[i][1] = nan;
    cv::Mat m = mask > 0;   // 0/255
    m &= 1;
    if (cv::countNonZero(m) == 0) return false;
    // largest 8-connected component
    cv::Mat labels, stats, cent;
    int n = cv::connectedComponentsWithStats(m, labels, stats, cent, 8);
    cv::Mat lc = m;
    if (n > 2) {
        int keep = 1;
        for (int i = 2; i < n; ++i)
            if (stats.at<int>(i, cv::CC_STAT_AREA) > stats.at<int>(keep, cv::CC_STAT_AREA)) keep = i;
        lc = (labels == keep);
        lc &= 1;
    }
    std::vector<std::vector<cv::Point>> cs;
    cv::findContours(lc, cs, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
    if (cs.empty()) return false;
    const std::vector<cv::Point> &border = cs[largest_index(cs)];
    // annulus from the shape: principal axis of the component's pixels
    double sx = 0, sy = 0;
    size_t np = 0;
    for (int y = 0; y < lc.rows; ++y) {
        const uchar *r = lc.ptr<uchar>(y);
        for (int x = 0; x < lc.cols; ++x) if (r[x]) { sx += x; sy += y; ++np; }
    }
    double ann[2][2];
    if (np < 3) {
        ann[0][0] = border.front().x; ann[0][1] = border.front().y;
        ann[1][0] = border.back().x; ann[1][1] = border.back().y;
    } else {
        double cx = sx / np, cy = sy / np, a = 0, b = 0, d = 0;
        for (int y = 0; y < lc.rows; ++y) {
            const uchar *r = lc.ptr<uchar>(y);
            for (int x = 0; x < lc.cols; ++x) if (r[x]) {
                double u = x - cx, v = y - cy;
                a += u * u; b += u * v; d += v * v;
            }
        }
        double lam = 0.5 * (a + d) + std::sqrt(0.25 * (a - d) * (a - d) + b * b);
        double vx, vy;
        if (a >= d) { vx = lam - d; vy = b; } else { vx = b; vy = lam - a; }
        double nn = std::hypot(vx, vy);
        if (nn > 0) { vx /= nn; vy /= nn; } else { vx = 1; vy = 0; }
        if (vy < 0) { vx = -vx; vy = -vy; }     // long axis pointing down (towards the base)
        double px = -vy, py = vx;
        int ia = 0, ib = 0;
        double ba = -std::numeric_limits<double>::infinity(), bb = ba;
        for (size_t i = 0; i < border.size(); ++i) {
            double rx = border[i].x - cx, ry = border[i].y - cy;
            double pa = rx * (vx + px) + ry * (vy + py), pb = rx * (vx - px) + ry * (vy - py);
            if (pa > ba) { ba = pa; ia = int(i); }
            if (pb > bb) { bb = pb; ib = int(i); }
        }
        ann[0][0] = border[ia].x; ann[0][1] = border[ia].y;
        ann[1][0] = border[ib].x; ann[1][1] = border[ib].y;
    }
    double mx = 0.5 * (ann[0][0] + ann[1][0]), my = 0.5 * (ann[0][1] + ann[1][1]);
    int iapex = 0;
    double far = -1;
    for (size_t i = 0; i < border.size(); ++i) {
        double dd = std::hypot(border[i].x - mx, border[i].y - my);
        if (dd > far) { far = dd; iapex = int(i); }
    }
    out[0][0] = float(border[iapex].x); out[0][1] = float(border[iapex].y);
    int l = ann[0][0] <= ann[1][0] ? 0 : 1;
    out[1][0] = float(ann[l][0]); out[1][1] = float(ann[l][1]);
    out[2][0] = float(ann[1 - l][0]); out[2][1] = float(ann[1 - l][1]);
    return true;
}

}  // namespace edgetan
