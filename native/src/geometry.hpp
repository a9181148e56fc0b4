// TAN geometry, a line-by-line port of edge_tan/runtime/geometry.py (same conventions: points (x, y) float32,
// pixel centres at integers; an affine is 2x3 float64 mapping frame -> window; landmarks apex,
// annulus_left, annulus_right).
#pragma once
#include <array>
#include <vector>

#include <opencv2/core.hpp>

#include "metadata.hpp"

namespace edgetan {

using Affine = cv::Matx23d;
struct Tri { float p[3][2]; };   // three landmarks (x, y)

double triangle_area(const float p[3][2]);
// false where the landmark triangle is degenerate (Python raises ValueError there)
bool affine_to_template(const float lm[3][2], const float tpl[3][2], Affine &out);
Affine letterbox_affine(int h, int w, int size);
Affine crop_affine(const float lm[3][2], int size, const RoiExpand &e);
Affine invert_affine(const Affine &M);
// singular-value ratio of M's linear part (closed form, as tracker.skew); inf when singular
double skew(const Affine &M);
Affine compose(const Affine &A, const Affine &B);   // A o B: B first
Affine similarity_about(double cx, double cy, double scale, double dx, double dy);  // angle 0
void transform_point(float x, float y, const Affine &M, float &ox, float &oy);
void transform_tri(const float in[3][2], const Affine &M, float out[3][2]);

// The tracker's frame -> window cut, byte for byte what edge_tan/runtime/geometry.py WindowCut cuts on
// any OpenCV version: OpenCV <= 4.10's fixed-point warpAffine (inverse in double, 10-bit row and column
// terms, 5-bit sub-pixel index, then cv::remap's fixed-point bilinear with 0 outside the frame).
// (cv::warpAffine itself changed in 4.11 to float32 weights, and the Python wheel may route it through
// IPP.) Python builds the remap maps and calls cv2.remap; here one loop computes the same sub-pixel
// index and the same integer interpolation per window pixel, with no maps and no second pass: the
// 1/32 px bilinear weights are exact integers ((32 - tx) * (32 - ty) ... summing to 1024, which
// OpenCV's 15-bit table holds x 32), so (sum + 512) >> 10 is remap's rounding to the bit. The map
// build plus cv::remap took ~0.22 ms of every pass on a 2-core Xeon; this loop ~0.15 ms with the
// normalisation folded in, its AVX2 form (geometry.cpp) ~0.06 ms. `remap_reference` keeps the map +
// cv::remap form as the test oracle.
class WindowCut {
public:
    explicit WindowCut(int size = 0) { resize(size); }
    void resize(int size);
    // dst: size x size CV_8U
    void operator()(const cv::Mat &src, cv::Mat &dst, const Affine &M);
    // the network input straight away: out[y * size + x] = lut[window byte] (no window image kept)
    void operator()(const cv::Mat &src, const Affine &M, const float lut[256], float *out);
    // the map + cv::remap form of the same cut (what Python computes): the oracle of the native tests
    void remap_reference(const cv::Mat &src, cv::Mat &dst, const Affine &M);
    // the float form uses AVX2 (where the CPU has it) unless this is off: the tests compare both
    void use_simd(bool on) { simd_ = on; }
private:
    template <class Row> bool rows(const Affine &M, Row &&row);
    int size_ = 0;
    bool simd_ = true;
    cv::Mat xy_, a_;
    std::vector<int> adx_, ady_;
};

// The mask's way back (window scores -> frame crop, border -1): bilinear in float as the Python side's
// cv2 (>= 4.11 / 5.x) computes it -- source coordinates in float32, float32 weights. Scores only need to
// agree on their sign, so this is close enough where the window cut above must be exact.
// dst(x, y) = src(A . (x, y, 1)), A = dst -> src; outside the source: `border`.
void warp_bilinear_f32(const cv::Mat &src, cv::Mat &dst, const Affine &A, float border);

// Outer contour of the largest region (CHAIN_APPROX_NONE), as float points.
void extract_contour(const cv::Mat &mask, std::vector<std::vector<cv::Point>> &scratch, std::vector<cv::Point2f> &out);
// n points evenly spaced by arc length along a closed contour
void resample_contour(const std::vector<cv::Point2f> &c, int n, float *out_xy);
// apex, annulus_left, annulus_right from a cavity mask; false (and NaN) when the mask is empty
bool landmarks_from_mask(const cv::Mat &mask, float out[3][2]);

}  // namespace edgetan
