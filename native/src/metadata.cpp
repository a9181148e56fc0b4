#include "metadata.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "edgetan.h"

namespace edgetan {
using json = nlohmann::ordered_json;

namespace {
const json &need(const json &d, const char *key, const std::string &name) {
    auto it = d.find(key);
    if (it == d.end())
        throw Error(ET_ERR_MODEL, name + ": artifact metadata lacks '" + key + "' (re-export with `edge-tan export`)");
    return *it;
}
double num(const json &v, const char *key, const std::string &name) {
    if (!v.is_number()) throw Error(ET_ERR_MODEL, name + ": artifact metadata '" + key + "' is not a number");
    return v.get<double>();
}
std::string str(const json &v, const char *key, const std::string &name) {
    if (!v.is_string()) throw Error(ET_ERR_MODEL, name + ": artifact metadata '" + key + "' is not a string");
    return v.get<std::string>();
}

// IEEE half (binary16) to float, exactly (numpy's float16 -> float32)
float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else {   // subnormal: normalise
            int e = -1;
            uint32_t m = man;
            do { m <<= 1; ++e; } while (!(m & 0x400u));
            u = sign | uint32_t(127 - 15 - e) << 23 | (m & 0x3FFu) << 13;
        }
    } else if (exp == 31) u = sign | 0x7F800000u | man << 13;
    else u = sign | (exp + 127 - 15) << 23 | man << 13;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// edge_tan.runtime.ood._dec: a list of numbers, or {"shape": [...], "f32_b64" | "f16_b64": little-endian
// float32 | float16 in base64}
std::vector<double> ood_array(const json &d, const char *key, const std::string &name, std::vector<size_t> &shape) {
    auto bad = [&](const std::string &why) {
        return Error(ET_ERR_MODEL, name + ": out-of-domain reference malformed ('" + key + "' " + why + ")");
    };
    auto it = d.find(key);
    if (it == d.end()) throw bad("missing");
    std::vector<double> out;
    shape.clear();
    if (it->is_array()) {
        for (const auto &v : *it) {
            if (!v.is_number()) throw bad("is not a list of numbers");
            out.push_back(v.get<double>());
        }
        shape.push_back(out.size());
        return out;
    }
    const bool half = it->is_object() && it->contains("f16_b64");
    const char *data_key = half ? "f16_b64" : "f32_b64";
    const size_t width = half ? 2 : 4;
    if (!it->is_object() || !it->contains("shape") || !it->contains(data_key) || !(*it)[data_key].is_string() ||
        !(*it)["shape"].is_array())
        throw bad("is neither a list nor {shape, f32_b64 | f16_b64}");
    size_t n = 1;
    for (const auto &v : (*it)["shape"]) {
        if (!v.is_number_integer() || v.get<long long>() < 0) throw bad("has a bad shape");
        shape.push_back(size_t(v.get<long long>()));
        n *= shape.back();
    }
    const std::string b64 = (*it)[data_key].get<std::string>();
    std::vector<unsigned char> bytes;
    bytes.reserve(b64.size() / 4 * 3);
    unsigned acc = 0;
    int bits = 0;
    for (char ch : b64) {
        int v;
        if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
        else if (ch == '+') v = 62;
        else if (ch == '/') v = 63;
        else if (ch == '=') break;
        else throw bad("is not base64");
        acc = (acc << 6) | unsigned(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes.push_back((unsigned char)((acc >> bits) & 0xFF));
        }
    }
    if (bytes.size() != width * n) throw bad("holds " + std::to_string(bytes.size() / width) + " floats, its shape says " +
                                             std::to_string(n));
    out.resize(n);
    for (size_t i = 0; i < n; ++i) {   // little-endian, whatever the host
        if (half) {
            out[i] = half_to_float(uint16_t(bytes[2 * i] | bytes[2 * i + 1] << 8));
            continue;
        }
        uint32_t u = uint32_t(bytes[4 * i]) | uint32_t(bytes[4 * i + 1]) << 8 | uint32_t(bytes[4 * i + 2]) << 16 |
                     uint32_t(bytes[4 * i + 3]) << 24;
        float f;
        std::memcpy(&f, &u, 4);
        out[i] = f;
    }
    return out;
}

// edge_tan.runtime.ood.KNNReference.from_dict + __post_init__: the same checks, the same float32 rows.
OodRef parse_ood_knn(const json &d, const std::string &name) {
    std::vector<size_t> sp;
    std::vector<double> protos = ood_array(d, "prototypes", name, sp);
    if (sp.size() != 2 || sp[0] == 0 || sp[1] == 0)
        throw Error(ET_ERR_MODEL, name + ": out-of-domain reference: prototypes must be (P, C)");
    OodRef r;
    r.knn = true;
    r.n_proto = int(sp[0]);
    r.dim = int(sp[1]);
    const double k = num(need(d, "k", name), "ood.k", name);
    if (!(k >= 1 && k <= r.n_proto && k == std::floor(k)))
        throw Error(ET_ERR_MODEL, name + ": out-of-domain reference: k neighbours must be 1.." + std::to_string(r.n_proto));
    r.k = int(k);
    r.scale = num(need(d, "scale", name), "ood.scale", name);
    r.frame_threshold = num(need(d, "frame_threshold", name), "ood.frame_threshold", name);
    r.clip_threshold = num(need(d, "clip_threshold", name), "ood.clip_threshold", name);
    if (!(r.scale > 0 && r.frame_threshold > 0 && r.clip_threshold > 0))
        throw Error(ET_ERR_MODEL, name + ": out-of-domain reference: scale and thresholds must be > 0");
    r.prototypes.assign(protos.begin(), protos.end());
    for (int i = 0; i < r.n_proto; ++i) {
        double n2 = 0;
        for (int j = 0; j < r.dim; ++j) n2 += double(r.prototypes[size_t(i) * r.dim + j]) * r.prototypes[size_t(i) * r.dim + j];
        if (std::abs(std::sqrt(n2) - 1.0) >= 1e-3)
            throw Error(ET_ERR_MODEL, name + ": out-of-domain reference: prototypes must have unit length");
    }
    return r;
}

// edge_tan.runtime.ood.OODReference.from_dict + __post_init__: the same checks, the same float32 arrays.
OodRef parse_ood(const json &d, const std::string &name) {
    const char *fmt = "edge-tan-ood/1", *fmt_knn = "edge-tan-ood/2";
    if (d.is_object() && d.contains("format") && d["format"] == fmt_knn) return parse_ood_knn(d, name);
    if (!d.is_object() || !d.contains("format") || d["format"] != fmt)
        throw Error(ET_ERR_MODEL, name + ": out-of-domain reference has format " +
                                      (d.is_object() && d.contains("format") ? d["format"].dump() : std::string("None")) +
                                      ", this libedgetan reads " + fmt_knn + " and " + fmt);
    std::vector<size_t> sm, sb, sv;
    std::vector<double> mean = ood_array(d, "mean", name, sm), basis = ood_array(d, "basis", name, sb),
                        var = ood_array(d, "var", name, sv);
    if (sm.size() != 1 || sm[0] == 0 || sb.size() != 2 || sb[1] != sm[0] || sv.size() != 1 || sv[0] != sb[0])
        throw Error(ET_ERR_MODEL, name + ": out-of-domain reference: mean, basis and variances do not fit together");
    OodRef r;
    r.dim = int(sm[0]);
    r.k = int(sb[0]);
    r.resid_var = num(need(d, "resid_var", name), "ood.resid_var", name);
    r.frame_threshold = num(need(d, "frame_threshold", name), "ood.frame_threshold", name);
    r.clip_threshold = num(need(d, "clip_threshold", name), "ood.clip_threshold", name);
    bool pos = r.resid_var > 0 && r.frame_threshold > 0 && r.clip_threshold > 0;
    for (double v : var) pos = pos && v > 0;
    if (!pos) throw Error(ET_ERR_MODEL, name + ": out-of-domain reference: variances and thresholds must be > 0");
    r.mean.assign(mean.begin(), mean.end());
    r.basis.assign(basis.begin(), basis.end());
    r.whiten.resize(basis.size());
    for (int i = 0; i < r.k; ++i) {
        const double s = std::sqrt(var[size_t(i)]);
        for (int j = 0; j < r.dim; ++j) r.whiten[size_t(i) * r.dim + j] = float(basis[size_t(i) * r.dim + j] / s);
    }
    return r;
}
}  // namespace

// 64 independent float partial sums (vectorised by the compiler); on x86-64 GCC builds one clone per
// vector width and the loader picks the CPU's widest (the library itself targets baseline x86-64).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static float dot_f32(const float *a, const float *b, int n) {
    constexpr int L = 64;   // four 16-lane registers: four add chains in flight, not one
    float acc[L] = {};
    int j = 0;
    for (; j + L <= n; j += L)
        for (int u = 0; u < L; ++u) acc[u] += a[j + u] * b[j + u];
    float s = 0;
    for (int u = 0; u < L; ++u) s += acc[u];
    for (; j < n; ++j) s += a[j] * b[j];
    return s;
}

float OodRef::proto_dot(int i, const float *feat) const {
    // float products summed in float, as numpy's float32 einsum does, by a kernel compiled for the
    // CPU's widest vectors (dot_f32): a scalar double loop took ~0.2 ms of each frame for 512 x 1280
    // (perf, INT8 on a 2-core Xeon)
    return dot_f32(&prototypes[size_t(i) * dim], feat, dim);
}

double OodRef::knn_score(const float *dots, const float *feat) const {
    double n2 = 0;
    for (int j = 0; j < dim; ++j) n2 += double(feat[j]) * feat[j];
    if (!(n2 > 0)) return 1.0 / scale;
    const double inv = 1.0 / std::sqrt(n2);
    thread_local std::vector<double> sim;
    sim.resize(size_t(n_proto));
    for (int i = 0; i < n_proto; ++i) sim[size_t(i)] = double(dots[i]) * inv;
    std::nth_element(sim.begin(), sim.begin() + (n_proto - k), sim.end());
    double top = 0;
    for (int i = n_proto - k; i < n_proto; ++i) top += sim[size_t(i)];
    return (1.0 - top / k) / scale;
}

// kNN (KNNReference): proto_dot for each prototype, then knn_score. Low-rank (OODReference):
// score = sqrt((sum_i (w_i . d)^2 + max(|d|^2 - sum_i (u_i . d)^2, 0) / resid_var) / C), d = f - mean:
// d in float32 as numpy forms it, the dot products and sums in double (numpy sums float32 in its own
// order; double is at least as close to the exact value), the result rounded to float32 as numpy's is.
double OodRef::score(const float *feat) const {
    if (knn) {   // KNNReference.scores: (1 - mean of the k largest cosines to the prototypes) / scale
        thread_local std::vector<float> dots;
        dots.resize(size_t(n_proto));
        for (int i = 0; i < n_proto; ++i) dots[size_t(i)] = proto_dot(i, feat);
        return knn_score(dots.data(), feat);
    }
    double dd = 0, ww = 0, pp = 0;
    thread_local std::vector<float> d;
    d.resize(size_t(dim));
    for (int j = 0; j < dim; ++j) {
        d[size_t(j)] = feat[j] - mean[size_t(j)];
        dd += double(d[size_t(j)]) * d[size_t(j)];
    }
    for (int i = 0; i < k; ++i) {
        const float *w = &whiten[size_t(i) * dim], *u = &basis[size_t(i) * dim];
        double a = 0, b = 0;
        for (int j = 0; j < dim; ++j) {
            a += double(d[size_t(j)]) * w[j];
            b += double(d[size_t(j)]) * u[j];
        }
        ww += a * a;
        pp += b * b;
    }
    const double resid = std::max(dd - pp, 0.0);
    return double(float(std::sqrt((ww + resid / resid_var) / dim)));
}

Metadata Metadata::from_props(const std::map<std::string, std::string> &props, const std::string &name) {
    if (props.empty())
        throw Error(ET_ERR_MODEL, name + ": artifact carries no edge-tan metadata (was it exported by `edge-tan export`?)");
    json d = json::object();
    for (const auto &kv : props) {
        json v = json::parse(kv.second, nullptr, false);
        if (v.is_discarded())
            throw Error(ET_ERR_MODEL, name + ": artifact metadata field 'edge_tan." + kv.first + "' is not valid JSON");
        d[kv.first] = v;
    }
    Metadata md;
    md.props = props;
    if (!d.contains("model_name"))
        throw Error(ET_ERR_MODEL, name + ": artifact metadata has no model_name: not an edge-tan artifact");
    md.model_name = str(d["model_name"], "model_name", name);
    md.schema = str(need(d, "schema", name), "schema", name);
    if (md.schema.substr(0, md.schema.find('/')) != "edge-tan")
        throw Error(ET_ERR_MODEL, name + ": unknown artifact schema '" + md.schema + "' (this library reads edge-tan/1)");
    md.warp_mode = str(need(d, "warp_mode", name), "warp_mode", name);
    if (md.warp_mode != "affine" && md.warp_mode != "crop" && md.warp_mode != "none")
        throw Error(ET_ERR_MODEL, name + ": artifact warp_mode '" + md.warp_mode + "' not one of affine, crop, none");
    // written before the field existed = "none" (edge_tan.runtime.artifact says so for old files)
    md.input_norm = d.contains("input_norm") ? str(d["input_norm"], "input_norm", name) : "none";
    if (md.input_norm != "none" && md.input_norm != "equalize")
        throw Error(ET_ERR_MODEL, name + ": artifact input_norm '" + md.input_norm + "' not one of none, equalize");
    md.precision = d.contains("precision") ? str(d["precision"], "precision", name) : "fp32";
    double win = num(need(d, "window", name), "window", name);
    if (!(win >= 8 && win <= 4096) || win != std::floor(win))
        throw Error(ET_ERR_MODEL, name + ": artifact window must be an integer in 8..4096");
    md.window = int(win);
    const json &t = need(d, "template", name);
    bool ok = t.is_array() && t.size() == 3;
    for (size_t i = 0; ok && i < 3; ++i) {
        ok = t[i].is_array() && t[i].size() == 2 && t[i][0].is_number() && t[i][1].is_number();
        for (int j = 0; ok && j < 2; ++j) {
            md.tpl[i][j] = float(t[i][j].get<double>());
            ok = std::isfinite(md.tpl[i][j]);
        }
    }
    if (!ok) throw Error(ET_ERR_MODEL, name + ": artifact template must be 3x2 finite numbers");
    md.input_scale = num(need(d, "input_scale", name), "input_scale", name);
    md.input_mean = num(need(d, "input_mean", name), "input_mean", name);
    md.input_std = num(need(d, "input_std", name), "input_std", name);
    if (!(md.input_std != 0) || !std::isfinite(md.input_scale) || !std::isfinite(md.input_mean))
        throw Error(ET_ERR_MODEL, name + ": artifact input_scale/mean/std must be finite, std non-zero");
    const json &outs = need(d, "outputs", name);
    if (!outs.is_object()) throw Error(ET_ERR_MODEL, name + ": artifact metadata 'outputs' is not an object");
    md.has_seg = outs.contains("seg");
    md.has_landmarks = outs.contains("landmarks");
    md.has_view = outs.contains("view");
    md.has_feat = outs.contains("feat");
    if (!md.has_seg) throw Error(ET_ERR_MODEL, name + ": artifact declares no 'seg' output");
    // An output this port does not implement must not be skipped silently (a newer artifact's gate
    // would otherwise just not run).
    for (auto it = outs.begin(); it != outs.end(); ++it)
        if (it.key() != "seg" && it.key() != "landmarks" && it.key() != "view" && it.key() != "feat")
            throw Error(ET_ERR_MODEL, name + ": artifact declares output '" + it.key() +
                                          "' that this libedgetan does not implement (update native/ to the Python tracker)");
    // out-of-domain gate (edge_tan.runtime.ood.reference_of): only with the 'feat' output and a non-empty reference
    if (md.has_feat && d.contains("ood") && !d["ood"].is_null() && !d["ood"].empty()) {
        md.ood = parse_ood(d["ood"], name);
        md.has_ood = true;
    }
    if (md.has_view) {
        const json &v = need(d, "view_names", name);
        if (!v.is_array() || v.empty()) throw Error(ET_ERR_MODEL, name + ": artifact view_names must be a list");
        for (const auto &x : v) md.view_names.push_back(str(x, "view_names", name));
    }
    if (md.warp_mode == "crop") {
        const json &e = need(d, "roi_expand", name);
        if (!e.is_object()) throw Error(ET_ERR_MODEL, name + ": artifact roi_expand is not an object");
        md.expand.left = num(need(e, "left", name), "roi_expand.left", name);
        md.expand.bottom = num(need(e, "bottom", name), "roi_expand.bottom", name);
        md.expand.top = num(need(e, "top", name), "roi_expand.top", name);
        md.expand.right = num(need(e, "right", name), "roi_expand.right", name);
    }
    return md;
}

std::string Metadata::to_json() const {
    json d = json::object();
    for (const auto &kv : props) d[kv.first] = json::parse(kv.second, nullptr, false);
    // as edge_tan.runtime.results.results_dict: the reference's arrays stay in the artifact, its thresholds and origin here
    if (d.contains("ood") && d["ood"].is_object() && !d["ood"].empty())
        for (const char *k : {"mean", "basis", "var", "prototypes"}) d["ood"].erase(k);
    return d.dump();
}

}  // namespace edgetan
