// One network behind the tracker: a float32 (1, 1, W, W) input buffer the tracker fills, one
// synchronous infer(), and the declared outputs as float32 pointers (valid until the next infer).
#pragma once
#include <memory>
#include <string>

#include "metadata.hpp"

namespace edgetan {

struct EngineOptions {
    std::string device = "CPU";
    int threads = 0;
};

class Engine {
public:
    virtual ~Engine() = default;
    const Metadata &metadata() const { return md_; }
    virtual float *input() = 0;                  // W*W floats, reused every call
    virtual void infer() = 0;                    // throws Error(ET_ERR_RUNTIME, ...)
    virtual const float *seg() const = 0;        // (2, W, W)
    virtual const float *landmarks() const = 0;  // (6,) or nullptr
    virtual const float *view() const = 0;       // (n_views,) or nullptr
    virtual const float *feat() const = 0;       // (ood.dim,) pooled encoder features, or nullptr (no gate)
    virtual std::string backend() const = 0;

protected:
    Metadata md_;
};

// Picks the backend from the file: .xml (OpenVINO IR), .onnx (via OpenVINO), .engine (TensorRT).
std::unique_ptr<Engine> open_engine(const std::string &path, const EngineOptions &opt);
std::unique_ptr<Engine> open_openvino(const std::string &path, const EngineOptions &opt);
std::unique_ptr<Engine> open_tensorrt(const std::string &path, const EngineOptions &opt);
bool tensorrt_built();

}  // namespace edgetan
