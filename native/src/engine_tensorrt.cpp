// TensorRT engine (built only with -DEDGETAN_WITH_TENSORRT=ON; TensorRT is not installable on the
// machines this project is tested on, so this path is written against the documented TensorRT 10
// C++ API -- IRuntime::deserializeCudaEngine, IExecutionContext::setTensorAddress/enqueueV3 -- and
// has never run here). Metadata comes from the `<name>.engine.json` sidecar that
// `edge-tan export --target tensorrt` writes (format edge-tan-trt/1, "metadata": the flat props).
#include <fstream>
#include <iterator>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgetan.h"
#include "engine.hpp"

#ifdef EDGETAN_WITH_TENSORRT
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>
#endif

namespace edgetan {

static std::map<std::string, std::string> read_sidecar(const std::string &engine_path) {
    const std::string sc = engine_path + ".json";
    std::ifstream f(sc);
    if (!f) throw Error(ET_ERR_MODEL, engine_path + ": sidecar " + sc + " missing (rebuild with `edge-tan export --target tensorrt`)");
    auto side = nlohmann::json::parse(f, nullptr, false);
    if (side.is_discarded() || !side.is_object() || side.value("format", "") != "edge-tan-trt/1" ||
        !side.contains("metadata") || !side["metadata"].is_object())
        throw Error(ET_ERR_MODEL, sc + ": corrupt TensorRT sidecar (expected edge-tan-trt/1 JSON)");
    std::map<std::string, std::string> props;
    for (auto it = side["metadata"].begin(); it != side["metadata"].end(); ++it)
        if (it.key().rfind("edge_tan.", 0) == 0 && it.value().is_string()) props[it.key().substr(9)] = it.value().get<std::string>();
    return props;
}

#ifndef EDGETAN_WITH_TENSORRT
bool tensorrt_built() { return false; }
std::unique_ptr<Engine> open_tensorrt(const std::string &path, const EngineOptions &) {
    (void)read_sidecar;
    throw Error(ET_ERR_NOT_BUILT, path + ": TensorRT support not built (configure native/ with -DEDGETAN_WITH_TENSORRT=ON "
                                         "on a machine with TensorRT and CUDA)");
}
#else
bool tensorrt_built() { return true; }

namespace {
class Logger final : public nvinfer1::ILogger {
    void log(Severity s, const char *msg) noexcept override { if (s <= Severity::kERROR) last = msg; }
public:
    std::string last;
};

void cuda_check(cudaError_t e, const char *what) {
    if (e != cudaSuccess) throw Error(ET_ERR_RUNTIME, std::string(what) + ": " + cudaGetErrorString(e));
}

class TensorRtEngine final : public Engine {
public:
    TensorRtEngine(const std::string &path, const EngineOptions &) {
        md_ = Metadata::from_props(read_sidecar(path), path);
        std::ifstream f(path, std::ios::binary);
        std::vector<char> plan((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (plan.empty()) throw Error(ET_ERR_MODEL, path + ": empty or unreadable engine");
        runtime_.reset(nvinfer1::createInferRuntime(log_));
        if (!runtime_) throw Error(ET_ERR_RUNTIME, "TensorRT: createInferRuntime failed");
        engine_.reset(runtime_->deserializeCudaEngine(plan.data(), plan.size()));
        if (!engine_) throw Error(ET_ERR_MODEL, path + ": TensorRT cannot deserialize it (built by another TensorRT "
                                                       "version or GPU?): " + log_.last);
        ctx_.reset(engine_->createExecutionContext());
        if (!ctx_) throw Error(ET_ERR_RUNTIME, "TensorRT: createExecutionContext failed");
        const int W = md_.window;
        const char *in_name = engine_->getIOTensorName(0);
        ctx_->setInputShape(in_name, nvinfer1::Dims4{1, 1, W, W});
        host_in_.assign(size_t(W) * W, 0.f);
        bind(in_name, host_in_);
        host_seg_.assign(size_t(2) * W * W, 0.f);
        bind("seg", host_seg_);
        if (md_.has_landmarks) { host_lm_.assign(6, 0.f); bind("landmarks", host_lm_); }
        if (md_.has_view) { host_view_.assign(md_.view_names.size(), 0.f); bind("view", host_view_); }
        if (md_.has_feat) {   // every I/O tensor needs an address, scored or not
            const nvinfer1::Dims fd = ctx_->getTensorShape("feat");
            int64_t c = fd.nbDims == 2 ? fd.d[1] : -1;
            if (c <= 0 || (md_.has_ood && c != md_.ood.dim))
                throw Error(ET_ERR_MODEL, path + ": output 'feat' does not have the (1, C) shape the out-of-domain reference needs");
            host_feat_.assign(size_t(c), 0.f);
            bind("feat", host_feat_);
        }
        cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate");
    }
    ~TensorRtEngine() override {
        for (auto &b : dev_) cudaFree(b.second);
        if (stream_) cudaStreamDestroy(stream_);
    }
    float *input() override { return host_in_.data(); }
    void infer() override {
        cuda_check(cudaMemcpyAsync(dev_[0].second, host_in_.data(), host_in_.size() * 4, cudaMemcpyHostToDevice, stream_), "H2D");
        if (!ctx_->enqueueV3(stream_)) throw Error(ET_ERR_RUNTIME, "TensorRT enqueueV3 failed: " + log_.last);
        for (size_t i = 1; i < dev_.size(); ++i)
            cuda_check(cudaMemcpyAsync(dev_[i].first->data(), dev_[i].second, dev_[i].first->size() * 4, cudaMemcpyDeviceToHost,
                                       stream_), "D2H");
        cuda_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    }
    const float *seg() const override { return host_seg_.data(); }
    const float *landmarks() const override { return md_.has_landmarks ? host_lm_.data() : nullptr; }
    const float *view() const override { return md_.has_view ? host_view_.data() : nullptr; }
    const float *feat() const override { return md_.has_ood ? host_feat_.data() : nullptr; }
    std::string backend() const override { return "native-tensorrt"; }

private:
    void bind(const char *name, std::vector<float> &host) {
        void *d = nullptr;
        cuda_check(cudaMalloc(&d, host.size() * 4), "cudaMalloc");
        dev_.emplace_back(&host, d);
        if (!ctx_->setTensorAddress(name, d)) throw Error(ET_ERR_MODEL, std::string("TensorRT engine has no tensor '") + name + "'");
    }
    Logger log_;
    std::unique_ptr<nvinfer1::IRuntime> runtime_;
    std::unique_ptr<nvinfer1::ICudaEngine> engine_;
    std::unique_ptr<nvinfer1::IExecutionContext> ctx_;
    std::vector<std::pair<std::vector<float> *, void *>> dev_;
    std::vector<float> host_in_, host_seg_, host_lm_, host_view_, host_feat_;
    cudaStream_t stream_ = nullptr;
};
}  // namespace

std::unique_ptr<Engine> open_tensorrt(const std::string &path, const EngineOptions &opt) {
    return std::make_unique<TensorRtEngine>(path, opt);
}
#endif

}  // namespace edgetan
