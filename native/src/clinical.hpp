// Single-plane clinical measures, a port of edge_tan/runtime/clinical.py's ClinicalCurves: per frame the LV
// area and the Simpson (20 disks) and area-length volumes in px^3; per clip ED/ES from the area curve
// and EF. The caller keeps the per-frame curve (a firmware ring buffer), so the tracker holds no history.
#pragma once
#include <vector>

#include <opencv2/core.hpp>

namespace edgetan {

struct FrameVolumes { double area_px, simpson_px3, area_length_px3; };

// mask: the result's mask crop (uint8 {0,1}) placed at (x0, y0) in the frame; lm: the frame's
// landmarks, or nullptr (then read off the mask, as ClinicalCurves.add does for lost frames).
FrameVolumes frame_volumes(const cv::Mat &mask, int x0, int y0, const float (*lm)[2]);

struct ClinicalSummary {
    std::vector<int> ed, es;
    double ef = 0, ef_area_length = 0;   // NaN when no ED/ES pair
    bool found = false;                  // false: the LV was never found
};

ClinicalSummary clinical_summary(const std::vector<FrameVolumes> &curve, double fps);

}  // namespace edgetan
