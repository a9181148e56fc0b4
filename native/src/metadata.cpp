#include "metadata.hpp"

#include <cmath>
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
}  // namespace

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
    // written before the field existed = "none" (edge_tan.artifact says so for old files)
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
    if (!md.has_seg) throw Error(ET_ERR_MODEL, name + ": artifact declares no 'seg' output");
    // An output (or gate) this port does not implement must not be skipped silently: a newer
    // artifact's out-of-domain gate ('feat' + metadata 'ood') would otherwise just not run.
    for (auto it = outs.begin(); it != outs.end(); ++it)
        if (it.key() != "seg" && it.key() != "landmarks" && it.key() != "view")
            throw Error(ET_ERR_MODEL, name + ": artifact declares output '" + it.key() +
                                          "' that this libedgetan does not implement (update native/ to the Python tracker)");
    if (d.contains("ood") && !(d["ood"].is_null() || d["ood"].empty()))
        throw Error(ET_ERR_MODEL, name + ": artifact carries an out-of-domain gate ('ood') that this libedgetan does not "
                                         "implement (update native/ to the Python tracker)");
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
    if (d.contains("training") && d["training"].is_object()) {
        auto it = d["training"].find("val_view_acc");
        if (it != d["training"].end() && it->is_number()) {
            md.has_val_view_acc = true;
            md.val_view_acc = it->get<double>();
        }
    }
    return md;
}

std::string Metadata::to_json() const {
    json d = json::object();
    for (const auto &kv : props) d[kv.first] = json::parse(kv.second, nullptr, false);
    return d.dump();
}

}  // namespace edgetan
