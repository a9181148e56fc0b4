// Model metadata read from the artifact itself (OpenVINO rt_info / ONNX metadata_props / TensorRT
// sidecar): the same flat str -> JSON-string mapping edge_tan.runtime.artifact.ModelMetadata.to_props() writes.
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

// The out-of-domain reference (edge_tan.runtime.ood, metadata 'ood'), either form:
// - edge-tan-ood/2 (KNNReference): P unit-length prototype rows (P x dim, row-major), k neighbours, scale;
// - edge-tan-ood/1 (OODReference): the float32 arrays OODReference.scores() uses: mean, whitening rows
//   basis/sqrt(var) (divided in float64, then rounded) and the basis itself, k x dim row-major.
struct OodRef {
    bool knn = false;
    int dim = 0, k = 0, n_proto = 0;
    std::vector<float> mean, whiten, basis, prototypes;
    double resid_var = 0, scale = 0, frame_threshold = 0, clip_threshold = 0;
    // score of one window's (dim,) features, as OODReference.score (float32 arithmetic, value as float64)
    double score(const float *feat) const;
    // the kNN's parts, for scoring on two threads with the same result: prototype i . feat (float),
    // then the score from all n_proto of them
    float proto_dot(int i, const float *feat) const;
    double knn_score(const float *dots, const float *feat) const;
};

struct Metadata {
    std::map<std::string, std::string> props;   // field -> JSON text, exactly as stored
    std::string model_name, warp_mode, input_norm, precision, schema;
    int window = 0;
    float tpl[3][2] = {};                        // template, window px (float32 like template_array)
    RoiExpand expand;
    double input_scale = 0, input_mean = 0, input_std = 0;
    std::vector<std::string> view_names;
    bool has_seg = false, has_landmarks = false, has_view = false, has_feat = false;
    bool has_ood = false;                        // 'feat' output and an 'ood' reference: the gate is on
    OodRef ood;

    // props: keys without the "edge_tan." prefix; `name` labels error messages.
    static Metadata from_props(const std::map<std::string, std::string> &props, const std::string &name);
    std::string to_json() const;   // {"field": value, ...} (the results.json "model" block; ood without its arrays)
};

}  // namespace edgetan
