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
Affine compose(const Affine &A, const Affine &B);   // A o B: B first
Affine similarity_about(double cx, double cy, double scale, double dx, double dy);  // angle 0
void transform_point(float x, float y, const Affine &M, float &ox, float &oy);
void transform_tri(const float in[3][2], const Affine &M, float out[3][2]);

// Bilinear warps computed the way the Python side's OpenCV (cv2 >= 4.11 / 5.x) computes them: source
// coordinates in float32, float32 bilinear weights, uint8 rounded to nearest. The OS OpenCV this
// library links (Debian: 4.6) uses 5-bit fixed-point weights instead, which moves window grey levels
// by 1-2 and breaks bit-level parity with the Python tracker; these keep it.
// dst(x, y) = src(A . (x, y, 1)), A = dst -> src; outside the source: `border`.
void warp_bilinear_u8(const cv::Mat &src, cv::Mat &dst, const Affine &A, uchar border);
void warp_bilinear_f32(const cv::Mat &src, cv::Mat &dst, const Affine &A, float border);

// Outer contour of the largest region (CHAIN_APPROX_NONE), as float points.
void extract_contour(const cv::Mat &mask, std::vector<std::vector<cv::Point>> &scratch, std::vector<cv::Point2f> &out);
// n points evenly spaced by arc length along a closed contour
void resample_contour(const std::vector<cv::Point2f> &c, int n, float *out_xy);
// apex, annulus_left, annulus_right from a cavity mask; false (and NaN) when the mask is empty
bool landmarks_from_mask(const cv::Mat &mask, float out[3][2]);

}  // namespace edgetan
