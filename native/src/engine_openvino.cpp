// OpenVINO runtime (C++ API) for IR (.xml/.bin, metadata in rt_info/edge_tan/<field>) and ONNX
// (metadata_props "edge_tan.<field>", which OpenVINO's ONNX frontend exposes as rt_info/framework).
// Compiled like targets/openvino.py's LATENCY runner: static batch 1, one stream, one request, and
// INFERENCE_PRECISION_HINT from the artifact precision (f32 for fp32/int8, f16 for fp16, bf16 for bf16
// where the CPU has native BF16: the IR keeps its tracking path f32 itself, targets/openvino_mixed.py).
#include <fstream>
#include <vector>

#include <openvino/openvino.hpp>

#include "edgetan.h"
#include "engine.hpp"

namespace edgetan {
namespace {

std::string base_name(const std::string &p) {
    size_t k = p.find_last_of('/');
    return k == std::string::npos ? p : p.substr(k + 1);
}

bool ends_with(const std::string &s, const std::string &suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::string first_line(const std::string &s, size_t n = 200) {
    std::string l = s.substr(0, s.find('\n'));
    return l.size() > n ? l.substr(0, n) : l;
}

std::map<std::string, std::string> read_props(const std::shared_ptr<ov::Model> &model, bool onnx, const std::string &name) {
    std::map<std::string, std::string> props;
    const char *section = onnx ? "framework" : "edge_tan";
    if (!model->has_rt_info(section)) return props;
    ov::AnyMap sec;
    try {
        sec = model->get_rt_info<ov::AnyMap>(section);
    } catch (const std::exception &e) {
        throw Error(ET_ERR_MODEL, name + ": unreadable rt_info section '" + section + "': " + first_line(e.what()));
    }
    for (const auto &kv : sec) {
        std::string key = kv.first;
        if (onnx) {
            if (key.rfind("edge_tan.", 0) != 0) continue;
            key = key.substr(9);
        }
        props[key] = kv.second.as<std::string>();
    }
    return props;
}

class OpenVinoEngine final : public Engine {
public:
    OpenVinoEngine(const std::string &path, const EngineOptions &opt) {
        const std::string name = base_name(path);
        const bool onnx = ends_with(path, ".onnx");
        std::ifstream f(path, std::ios::binary);
        if (!f) throw Error(ET_ERR_MODEL, "model not found or unreadable: " + path);
        char head[64] = {0};
        f.read(head, sizeof head);
        std::string bin;
        if (!onnx) {
            std::string h(head, size_t(f.gcount()));
            size_t i = h.find_first_not_of(" \t\r\n");
            if (i == std::string::npos || (h.compare(i, 5, "<?xml") != 0 && h.compare(i, 4, "<net") != 0))
                throw Error(ET_ERR_MODEL, name + ": not an OpenVINO IR (no XML header)");
            bin = path.substr(0, path.size() - 4) + ".bin";
            if (!std::ifstream(bin, std::ios::binary))
                throw Error(ET_ERR_MODEL, name + ": IR .bin missing (expected " + base_name(bin) + " beside it)");
        }
        std::shared_ptr<ov::Model> model;
        try {
            model = onnx ? core_.read_model(path) : core_.read_model(path, bin);
        } catch (const std::exception &e) {
            throw Error(ET_ERR_MODEL, name + ": OpenVINO cannot read it: " + first_line(e.what()));
        }
        md_ = Metadata::from_props(read_props(model, onnx, name), name);
        const bool bf16 = md_.precision == "bf16";
        std::string dev = opt.device.empty() ? "CPU" : opt.device;
        if (bf16) check_bf16(dev, name);   // never f32 under a bf16 label
        const int W = md_.window;
        if (model->inputs().size() != 1)
            throw Error(ET_ERR_MODEL, name + ": expected 1 input, the model has " + std::to_string(model->inputs().size()));
        auto ps = model->input().get_partial_shape();
        if (ps.rank().is_dynamic() || ps.rank().get_length() != 4)
            throw Error(ET_ERR_MODEL, name + ": input must be rank-4 NCHW");
        for (int i = 1; i < 4; ++i)
            if (ps[i].is_static() && ps[i].get_length() != (i == 1 ? 1 : W))
                throw Error(ET_ERR_MODEL, name + ": input shape does not match the metadata window (1, " +
                                              std::to_string(W) + ", " + std::to_string(W) + ")");
        ov::AnyMap cfg{ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY), ov::num_streams(1)};
        if (dev.rfind("CPU", 0) == 0 || dev.rfind("GPU", 0) == 0)
            cfg.emplace(ov::hint::inference_precision(bf16 ? ov::element::bf16
                                                      : md_.precision == "fp16" ? ov::element::f16 : ov::element::f32));
        if (opt.threads > 0 && dev.rfind("CPU", 0) == 0) {
            cfg.emplace(ov::inference_num_threads(opt.threads));
            cfg.emplace(ov::hint::enable_cpu_pinning(false));
        }
        try {
            model->reshape(ov::PartialShape{1, 1, W, W});
            compiled_ = core_.compile_model(model, dev, cfg);
            req_ = compiled_.create_infer_request();
        } catch (const std::exception &e) {
            throw Error(ET_ERR_MODEL, "OpenVINO cannot compile " + name + " for " + dev + ": " + first_line(e.what()));
        }
        if (bf16 && compiled_.get_property(ov::hint::inference_precision) != ov::element::bf16)   // read back
            throw Error(ET_ERR_MODEL, name + ": bf16 unsupported on " + dev + ": the compiled model runs " +
                                          compiled_.get_property(ov::hint::inference_precision).get_type_name());
        in_.assign(size_t(W) * W, 0.0f);
        req_.set_input_tensor(ov::Tensor(ov::element::f32, ov::Shape{1, 1, size_t(W), size_t(W)}, in_.data()));
        bind("seg", ov::Shape{1, 2, size_t(W), size_t(W)}, seg_, true, name);
        if (md_.has_landmarks) bind("landmarks", ov::Shape{1, 6}, lm_, true, name);
        if (md_.has_view) bind("view", ov::Shape{1, md_.view_names.size()}, view_, true, name);
        // the out-of-domain features only where the artifact carries a reference to score them against
        if (md_.has_ood) bind("feat", ov::Shape{1, size_t(md_.ood.dim)}, feat_, true, name);
    }

    float *input() override { return in_.data(); }
    void infer() override {
        try {
            req_.infer();
        } catch (const std::exception &e) {
            throw Error(ET_ERR_RUNTIME, std::string("OpenVINO inference failed: ") + first_line(e.what()));
        }
    }
    const float *seg() const override { return seg_.data(); }
    const float *landmarks() const override { return md_.has_landmarks ? lm_.data() : nullptr; }
    const float *view() const override { return md_.has_view ? view_.data() : nullptr; }
    const float *feat() const override { return md_.has_ood ? feat_.data() : nullptr; }
    std::string backend() const override { return "native-openvino"; }

private:
    // bf16 only where the device computes it natively (as targets/openvino.bf16_support): a CPU whose
    // OPTIMIZATION_CAPABILITIES list BF16 (AVX512-BF16, AMX); elsewhere the plugin would emulate or
    // silently run f32.
    void check_bf16(const std::string &dev, const std::string &name) {
        if (dev.rfind("CPU", 0) != 0)
            throw Error(ET_ERR_MODEL, name + ": bf16 unsupported on " + dev + ": bf16 artifacts run on CPU only");
        std::vector<std::string> caps;
        try {
            caps = core_.get_property(dev, ov::device::capabilities);
        } catch (const std::exception &e) {
            throw Error(ET_ERR_MODEL, name + ": bf16 unsupported on " + dev + ": " + first_line(e.what()));
        }
        for (const auto &c : caps)
            if (c == "BF16") return;
        throw Error(ET_ERR_MODEL, name + ": bf16 unsupported on " + dev +
                                      ": no native BF16 (OPTIMIZATION_CAPABILITIES lacks BF16)");
    }

    // Output tensors are our own buffers, bound once: infer() allocates nothing.
    void bind(const char *out, const ov::Shape &want, std::vector<float> &buf, bool, const std::string &name) {
        const ov::Output<const ov::Node> *port = nullptr;
        for (const auto &o : compiled_.outputs())
            if (o.get_names().count(out)) port = &o;
        if (!port) throw Error(ET_ERR_MODEL, name + ": metadata lists output '" + std::string(out) + "' the model lacks");
        if (port->get_element_type() != ov::element::f32 || port->get_partial_shape() != ov::PartialShape(want))
            throw Error(ET_ERR_MODEL, name + ": output '" + std::string(out) + "' is " + port->get_element_type().get_type_name() +
                                          " " + port->get_partial_shape().to_string() + ", the model contract says f32 " +
                                          ov::PartialShape(want).to_string());
        buf.assign(ov::shape_size(want), 0.0f);
        req_.set_tensor(*port, ov::Tensor(ov::element::f32, want, buf.data()));
    }

    ov::Core core_;
    ov::CompiledModel compiled_;
    ov::InferRequest req_;
    std::vector<float> in_, seg_, lm_, view_, feat_;
};

}  // namespace

std::unique_ptr<Engine> open_openvino(const std::string &path, const EngineOptions &opt) {
    return std::make_unique<OpenVinoEngine>(path, opt);
}

std::unique_ptr<Engine> open_engine(const std::string &path, const EngineOptions &opt) {
    if (ends_with(path, ".xml") || ends_with(path, ".onnx")) return open_openvino(path, opt);
    if (ends_with(path, ".engine") || ends_with(path, ".plan")) return open_tensorrt(path, opt);
    throw Error(ET_ERR_MODEL, base_name(path) + ": unknown artifact type (expected .xml, .onnx or .engine)");
}

}  // namespace edgetan
