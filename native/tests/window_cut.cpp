// edgetan-window-cut-test: the tracker's one-loop window cut (WindowCut) against the map + cv::remap
// form Python computes (WindowCut::remap_reference), byte for byte, on random affines and frames:
// scales from 0.3x to 3.3x, any rotation, windows partly or wholly off the frame, frames that are ROIs
// of a wider image (row step != width) or exactly sized buffers, coordinates beyond int16, non-finite
// affines. The float form (straight into the network input; AVX2 gathers where the CPU has them, and
// the portable loop) must equal the 256-entry table applied to those bytes.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <opencv2/core.hpp>

#include "geometry.hpp"

using namespace edgetan;

int main(int argc, char **argv) {
    const int cases = argc > 1 ? std::atoi(argv[1]) : 3000;
    std::mt19937 rng(20261207);
    std::uniform_real_distribution<double> U(-1.0, 1.0);
    float lut[256];
    for (int v = 0; v < 256; ++v) lut[v] = float(double(v) * 0.0137) - 1.5f;
    int failed = 0;
    for (int t = 0; t < cases; ++t) {
        const int S = (t % 4 == 0) ? 224 : 16 + int(rng() % 96);
        const int h = 8 + int(rng() % 300), w = 8 + int(rng() % 300);
        cv::Mat wide(h + 6, w + 11, CV_8U);
        cv::randu(wide, 0, 256);
        if (t % 7 == 0) wide.setTo(255);                         // saturated: rounding at the top end
        // every other frame a ROI (row step != width), the rest an exactly sized buffer (reads at its ends)
        const cv::Mat src = (t % 2) ? wide(cv::Rect(5, 3, w, h)) : wide(cv::Rect(5, 3, w, h)).clone();
        const double s = 0.3 + 1.5 * (U(rng) + 1.0), r = 3.2 * U(rng);
        Affine M(s * std::cos(r), -s * std::sin(r), 300.0 * U(rng), s * std::sin(r), s * std::cos(r), 300.0 * U(rng));
        if (t % 5 == 1) M = Affine(double(S) / w, 0, 0, 0, double(S) / h, 0);   // a letterbox-like cut
        if (t % 97 == 2) M = Affine(1e-4, 0, 0, 0, 1e-4, 0);                    // beyond int16 coordinates
        if (t % 101 == 3) M(0, 2) = std::nan("");                              // nothing of the frame
        WindowCut cut(S);
        cv::Mat a, b;
        cut.remap_reference(src, a, M);
        cut(src, b, M);
        std::vector<float> in(size_t(S) * S), in_scalar(size_t(S) * S);
        cut(src, M, lut, in.data());           // AVX2 where the CPU has it
        cut.use_simd(false);
        cut(src, M, lut, in_scalar.data());    // the portable loop
        const int diff = cv::countNonZero(a != b);
        int fdiff = 0;
        for (int i = 0; i < S * S; ++i) fdiff += (in[size_t(i)] != lut[a.data[i]]) + (in_scalar[size_t(i)] != lut[a.data[i]]);
        if (diff || fdiff) {
            if (failed < 5) std::printf("case %d (S %d, frame %dx%d): %d bytes, %d floats differ\n", t, S, w, h, diff, fdiff);
            ++failed;
        }
    }
    std::printf("window cut: %d of %d cases byte-identical to map + cv::remap\n", cases - failed, cases);
    return failed ? 1 : 0;
}
