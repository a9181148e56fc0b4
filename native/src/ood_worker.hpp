// Scores a window's features against the out-of-domain reference on a helper thread, so the kNN (512 x
// 1280 float dot products, ~0.1 ms of every pass on a 2-core Xeon, bound by reading 2.6 MB of
// prototypes) runs beside the tracker's other post-pass work (score map, contours, certainty, edge
// contact) instead of after it. The value is exactly what OodRef::score returns on the calling thread:
// the same function on the same features.
#pragma once
#include <condition_variable>
#include <mutex>
#include <thread>

#include "metadata.hpp"

namespace edgetan {

class OodWorker {
public:
    explicit OodWorker(const OodRef &ref);
    ~OodWorker();
    OodWorker(const OodWorker &) = delete;
    OodWorker &operator=(const OodWorker &) = delete;
    // begin scoring `feat`, which must stay valid (and unchanged) until wait() returns
    void start(const float *feat);
    // the score of the last start()ed features (blocks until it is ready)
    double wait();

private:
    void loop();
    const OodRef &ref_;
    std::mutex m_;
    std::condition_variable cv_;
    const float *feat_ = nullptr;
    double result_ = 0;
    bool pending_ = false, stop_ = false;
    std::thread th_;
};

}  // namespace edgetan
