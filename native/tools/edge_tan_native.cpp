// edge-tan-native: `edge-tan track --json` without Python.
//   edge-tan-native track CLIP --model M [--json R.json] [--masks M.npy] [--device CPU] [--threads N]
//                   [--fps F (default: the video's, else 30)] [--spacing-mm S (only the volume unit)]
//                   [--time-network RUNS (then the network alone on the last window: timing.network)]
// CLIP: any file OpenCV's VideoCapture reads (AVI/MP4...), or a .npy of uint8/uint16 frames
// (T, H, W[, C]) -- the parity tests feed decoded frames that way so decoding differences do not count.
// R.json has the schema of edge_tan/runtime/results.py (per_frame, states, timing, model, clinical; no qc block).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include "edgetan.h"

using json = nlohmann::ordered_json;

namespace {

struct Fail { std::string msg; };

// ---- input clips --------------------------------------------------------------------------
struct Clip {
    std::vector<cv::Mat> frames;
    double fps = 30.0;
};

Clip read_npy(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Fail{path + ": cannot open"};
    char magic[8];
    f.read(magic, 8);
    if (f.gcount() != 8 || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw Fail{path + ": not a .npy file"};
    uint32_t hlen = 0;
    if (magic[6] == 1) { uint16_t h; f.read(reinterpret_cast<char *>(&h), 2); hlen = h; }
    else { f.read(reinterpret_cast<char *>(&hlen), 4); }
    if (!f || hlen > 65536) throw Fail{path + ": corrupt .npy header"};
    std::string hdr(hlen, ' ');
    f.read(&hdr[0], hlen);
    std::smatch m;
    if (!std::regex_search(hdr, m, std::regex(R"('descr':\s*'([^']+)')"))) throw Fail{path + ": .npy header has no descr"};
    std::string descr = m[1];
    if (hdr.find("'fortran_order': True") != std::string::npos) throw Fail{path + ": Fortran-ordered .npy not supported"};
    if (!std::regex_search(hdr, m, std::regex(R"('shape':\s*\(([^)]*)\))"))) throw Fail{path + ": .npy header has no shape"};
    std::vector<long> shape;
    std::string s = m[1];
    const std::regex digits(R"(\d+)");
    for (std::sregex_iterator it(s.begin(), s.end(), digits), end; it != end; ++it) shape.push_back(std::stol(it->str()));
    int depth;
    if (descr == "|u1" || descr == "<u1") depth = CV_8U;
    else if (descr == "<u2") depth = CV_16U;
    else throw Fail{path + ": frames must be uint8 or uint16, .npy has " + descr};
    if (shape.size() != 3 && shape.size() != 4) throw Fail{path + ": frames must be (T, H, W) or (T, H, W, C)"};
    int ch = shape.size() == 4 ? int(shape[3]) : 1;
    if (ch != 1 && ch != 3 && ch != 4) throw Fail{path + ": frames must have 1, 3 or 4 channels"};
    Clip clip;
    const size_t bytes = size_t(shape[1]) * shape[2] * ch * (depth == CV_8U ? 1 : 2);
    for (long t = 0; t < shape[0]; ++t) {
        cv::Mat fr(static_cast<int>(shape[1]), static_cast<int>(shape[2]), CV_MAKETYPE(depth, ch));
        f.read(reinterpret_cast<char *>(fr.data), std::streamsize(bytes));
        if (size_t(f.gcount()) != bytes) throw Fail{path + ": truncated .npy (frame " + std::to_string(t) + ")"};
        clip.frames.push_back(fr);
    }
    return clip;
}

Clip read_video(const std::string &path) {
    if (!std::ifstream(path)) throw Fail{path + ": not found"};
    cv::VideoCapture cap(path);
    if (!cap.isOpened()) throw Fail{path + ": OpenCV cannot open this video"};
    Clip clip;
    double fps = cap.get(cv::CAP_PROP_FPS);
    if (fps > 0 && std::isfinite(fps)) clip.fps = fps;
    cv::Mat fr;
    while (cap.read(fr)) clip.frames.push_back(fr.clone());
    return clip;
}

// ---- results.json helpers (edge_tan/runtime/results.py) -------------------------------------------
json num(double x, int nd = 4) {
    if (!std::isfinite(x)) return nullptr;
    double p = std::pow(10.0, nd);
    return std::round(x * p) / p;
}

json pts(const float *xy, int n) {
    json a = json::array();
    for (int i = 0; i < n; ++i) a.push_back({num(xy[2 * i], 2), num(xy[2 * i + 1], 2)});
    return a;
}

std::string reason_key(const std::string &reason) {
    std::string first = reason.substr(0, reason.find(';'));
    first = std::regex_replace(first, std::regex(R"(\s*[-+]?\d[\d.]*\s*%?)"), "");
    size_t a = first.find_first_not_of(" \t"), b = first.find_last_not_of(" \t");
    return a == std::string::npos ? "" : first.substr(a, b - a + 1);
}

double percentile(std::vector<double> v, double q) {   // numpy's default (linear)
    std::sort(v.begin(), v.end());
    double pos = q / 100.0 * (v.size() - 1);
    size_t i = size_t(std::floor(pos));
    double frac = pos - i;
    return i + 1 < v.size() ? v[i] + (v[i + 1] - v[i]) * frac : v[i];
}

double mean_of(const std::vector<double> &v) {
    double m = 0;
    for (double x : v) m += x;
    return v.empty() ? 0.0 : m / double(v.size());
}

void write_atomic(const std::string &path, const std::string &data) {
    const std::string tmp = path + ".tmp-edge-tan-native";
    {
        std::ofstream o(tmp, std::ios::binary);
        if (!o) throw Fail{path + ": cannot write"};
        o.write(data.data(), std::streamsize(data.size()));
        if (!o) throw Fail{path + ": write failed"};
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) { std::remove(tmp.c_str()); throw Fail{path + ": cannot write"}; }
}

int usage() {
    std::fprintf(stderr, "usage: edge-tan-native track CLIP --model MODEL [--json R.json] [--masks M.npy] "
                         "[--device CPU] [--threads N] [--fps F] [--spacing-mm S] [--time-network RUNS]\n");
    return 2;
}

int track(int argc, char **argv) {
    std::string clip_path, model, json_out, masks_out, device;
    int threads = 0, net_runs = 0;
    double fps = 0, spacing = 0;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&](const char *flag) {
            if (i + 1 >= argc) throw Fail{std::string(flag) + " needs a value"};
            return std::string(argv[++i]);
        };
        if (a == "--model") model = val("--model");
        else if (a == "--json") json_out = val("--json");
        else if (a == "--masks") masks_out = val("--masks");
        else if (a == "--device") device = val("--device");
        else if (a == "--threads") threads = std::atoi(val("--threads").c_str());
        else if (a == "--fps") fps = std::atof(val("--fps").c_str());
        else if (a == "--spacing-mm") spacing = std::atof(val("--spacing-mm").c_str());
        else if (a == "--time-network") {
            net_runs = std::atoi(val("--time-network").c_str());
            if (net_runs < 1) throw Fail{"--time-network needs a count >= 1"};
        }
        else if (!a.empty() && a[0] == '-') throw Fail{"unknown option " + a};
        else if (clip_path.empty()) clip_path = a;
        else throw Fail{"unexpected argument " + a};
    }
    if (clip_path.empty() || model.empty()) throw Fail{"track needs CLIP and --model"};
    const bool npy = clip_path.size() > 4 && clip_path.compare(clip_path.size() - 4, 4, ".npy") == 0;
    Clip clip = npy ? read_npy(clip_path) : read_video(clip_path);
    if (clip.frames.empty()) throw Fail{clip_path + ": no frames"};

    et_options opt{device.empty() ? nullptr : device.c_str(), threads};
    et_tracker *tr = nullptr;
    if (et_open(model.c_str(), &opt, &tr) != ET_OK) throw Fail{et_last_error(nullptr)};
    et_model_info info;
    et_info(tr, &info);
    const int H = clip.frames[0].rows, W = clip.frames[0].cols;
    std::vector<uint8_t> masks;
    std::vector<et_volumes> curve;
    if (!masks_out.empty()) masks.assign(clip.frames.size() * size_t(H) * W, 0);

    json per_frame = json::array();
    std::vector<double> lat, pre, inf, post;
    std::map<std::string, int> state_n;
    std::vector<std::pair<std::string, int>> reasons;   // first-seen order, like collections.Counter
    et_result r;
    for (size_t t = 0; t < clip.frames.size(); ++t) {
        const cv::Mat &m = clip.frames[t];
        et_pixel_format fmt = m.type() == CV_8UC3 ? ET_BGR8 : m.type() == CV_8UC4 ? ET_BGRA8 : m.type() == CV_16UC1 ? ET_GRAY16 : ET_GRAY8;
        if (m.type() == CV_16UC3 || m.type() == CV_16UC4) { et_close(tr); throw Fail{clip_path + ": 16-bit colour frames not supported"}; }
        et_frame f{m.data, m.cols, m.rows, int(m.step[0]), fmt};
        if (et_push(tr, &f, &r) != ET_OK) {
            std::string e = et_last_error(tr);
            et_close(tr);
            throw Fail{"frame " + std::to_string(t) + ": " + e};
        }
        if (!masks.empty() && r.mask && m.rows == H && m.cols == W)
            for (int y = 0; y < r.mask_h; ++y)
                std::memcpy(&masks[(t * H + r.mask_y + y) * W + r.mask_x], r.mask + size_t(y) * r.mask_w, size_t(r.mask_w));
        et_volumes vol;
        et_frame_volumes(&r, &vol);
        curve.push_back(vol);
        const std::string state = et_state_name(r.state);
        json rec;
        rec["index"] = r.index;
        rec["view"] = r.view[0] ? json(r.view) : json(nullptr);
        rec["view_prob"] = num(r.view_prob);
        rec["view_frame"] = r.view_frame[0] ? json(r.view_frame) : json(nullptr);
        rec["landmarks"] = r.has_landmarks ? pts(r.landmarks, 3) : json(nullptr);
        rec["contour"] = r.n_contour ? pts(r.contour, r.n_contour) : json::array();
        rec["area_px"] = r.area_px;
        rec["state"] = state;
        rec["reason"] = r.reason[0] ? json(r.reason) : json(nullptr);
        rec["confidence"] = num(r.confidence);
        rec["latency_ms"] = num(r.latency_ms, 3);
        rec["ood_score"] = num(r.ood_score);
        per_frame.push_back(rec);
        lat.push_back(r.latency_ms); pre.push_back(r.pre_ms); inf.push_back(r.infer_ms); post.push_back(r.post_ms);
        state_n[state]++;
        if (r.reason[0]) {
            std::string k = reason_key(r.reason);
            auto it = std::find_if(reasons.begin(), reasons.end(), [&](const auto &p) { return p.first == k; });
            if (it == reasons.end()) reasons.emplace_back(k, 1); else it->second++;
        }
    }
    std::vector<float> net_ms(static_cast<size_t>(net_runs));
    if (net_runs > 0 && et_time_network(tr, net_runs, net_ms.data()) != ET_OK) {
        std::string e = et_last_error(tr);
        et_close(tr);
        throw Fail{"--time-network: " + e};
    }
    const std::string md_json = et_metadata_json(tr);
    et_close(tr);

    const size_t n = clip.frames.size();
    json states, share = json::object(), frames = json::object();
    for (const char *s : {"detect", "track", "redetect", "lost"}) {
        share[s] = num(double(state_n[s]) / n, 4);
        frames[s] = state_n[s];
    }
    std::stable_sort(reasons.begin(), reasons.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
    json top = json::array();
    for (size_t i = 0; i < reasons.size() && i < 5; ++i) top.push_back({reasons[i].first, reasons[i].second});
    states["state_share"] = share;
    states["state_frames"] = frames;
    states["top_reasons"] = top;
    const double mean = mean_of(lat);
    json timing;
    timing["median_ms"] = num(percentile(lat, 50), 3);
    timing["p95_ms"] = num(percentile(lat, 95), 3);
    timing["fps"] = mean > 0 ? num(1000.0 / mean, 2) : json(nullptr);
    timing["stages_median_ms"] = {{"pre", num(percentile(pre, 50), 3)}, {"infer", num(percentile(inf, 50), 3)},
                                  {"post", num(percentile(post, 50), 3)}};
    if (net_runs > 0) {   // the network alone on the last window, after the clip (benchmark_app style)
        const std::vector<double> v(net_ms.begin(), net_ms.end());
        const double m = mean_of(v);
        timing["network"] = {{"runs", net_runs}, {"median_ms", num(percentile(v, 50), 3)},
                             {"mean_ms", num(m, 3)}, {"fps", m > 0 ? num(1000.0 / m, 2) : json(nullptr)}};
    }
    json out;
    out["video"] = clip_path;
    out["frames"] = n;
    out["backend"] = info.backend;
    out["model"] = json::parse(md_json);
    out["per_frame"] = per_frame;
    et_clinical cl;
    if (et_clinical_summary(curve.data(), int(curve.size()), fps > 0 ? fps : clip.fps, &cl) != ET_OK)
        throw Fail{et_last_error(nullptr)};
    json clinical;
    if (!cl.found) {
        clinical = {{"ed_frames", json::array()}, {"es_frames", json::array()}, {"ef_percent", nullptr},
                    {"method", "none (LV never found)"}};
    } else {
        json ed = json::array(), es = json::array();
        for (int i = 0; i < cl.n_ed && i < ET_MAX_EVENTS; ++i) ed.push_back(cl.ed_frames[i]);
        for (int i = 0; i < cl.n_es && i < ET_MAX_EVENTS; ++i) es.push_back(cl.es_frames[i]);
        clinical = {{"ed_frames", ed}, {"es_frames", es}, {"ef_percent", num(cl.ef_percent, 2)},
                    {"method", "simpson-single-plane"}, {"volume_units", spacing > 0 ? "ml" : "px^3"},
                    {"ef_area_length_percent", num(cl.ef_area_length_percent, 2)}};
    }
    out["clinical"] = clinical;
    out["states"] = states;
    out["timing"] = timing;
    if (!json_out.empty()) write_atomic(json_out, out.dump(1));
    if (!masks_out.empty()) {
        std::string hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + std::to_string(n) + ", " +
                          std::to_string(H) + ", " + std::to_string(W) + "), }";
        while ((10 + hdr.size() + 1) % 64) hdr += ' ';
        hdr += '\n';
        std::string data("\x93NUMPY\x01\x00", 8);
        data += char(hdr.size() & 0xff);
        data += char(hdr.size() >> 8);
        data += hdr;
        data.append(reinterpret_cast<const char *>(masks.data()), masks.size());
        write_atomic(masks_out, data);
    }
    std::printf("%s: %zu frames, %s, median %.2f ms/frame (%s)\n", clip_path.c_str(), n, info.model_name,
                percentile(lat, 50), info.backend);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    std::string cmd = argv[1];
    try {
        if (cmd == "track") return track(argc, argv);
        if (cmd == "--version") { std::printf("%s\n", et_version()); return 0; }
        return usage();
    } catch (const Fail &f) {
        std::fprintf(stderr, "edge-tan-native: error: %s\n", f.msg.c_str());
        return 2;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "edge-tan-native: error: %s\n", e.what());
        return 2;
    }
}
