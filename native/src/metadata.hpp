// Model metadata read from the artifact itself (OpenVINO rt_info / ONNX metadata_props / TensorRT
// sidecar): the same flat str -> JSON-string mapping edge_tan.artifact.ModelMetadata.to_props() writes.
#pragma once
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgetan {

// An error with the C API status it maps to.
struct Error : std::runtime_error {
    int code;
    Error(int c, const std::string &msg) : std::runtime_error(msg), code(c) {}
};

struct RoiExpand { double left = 0, bottom = 0, top = 0, right = 0; };

struct Metadata {
    std::map<std::string, std::string> props;   // field -> JSON text, exactly as stored
    std::string model_name, warp_mode, input_norm, precision, schema;
    int window = 0;
    float tpl[3][2] = {};                        // template, window px (float32 like template_array)
    RoiExpand expand;
    double input_scale = 0, input_mean = 0, input_std = 0;
    std::vector<std::string> view_names;
    bool has_seg = false, has_landmarks = false, has_view = false;
    bool has_val_view_acc = false;
    double val_view_acc = 0;

    // props: keys without the "edge_tan." prefix; `name` labels error messages.
    static Metadata from_props(const std::map<std::string, std::string> &props, const std::string &name);
    std::string to_json() const;   // {"field": value, ...} (the results.json "model" block)
};

}  // namespace edgetan
