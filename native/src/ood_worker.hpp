// Scores a window's features against the out-of-domain reference on a helper thread, so the kNN (512 x
// 1280 float dot products, ~0.1 ms of every pass on a 2-core Xeon, bound by reading 2.6 MB of
// prototypes) runs beside the tracker's other post-pass work (score map, contours, certainty, edge
// contact) instead of after it; when the tracker calls wait() it takes over the prototypes the helper has
// not reached yet (chunks handed out by an atomic counter), so neither thread idles while the other
// works. The value is exactly what OodRef::score returns on the calling thread: each dot product is
// the same function of the same data whichever thread computes it, and the rest is OodRef::knn_score.
#pragma once
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

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
    void share();   // compute prototype chunks until none is left
    const OodRef &ref_;
    std::vector<float> dots_;
    std::atomic<int> next_{0}, done_{0};
    std::mutex m_;
    std::condition_variable cv_;
    const float *feat_ = nullptr;
    double result_ = 0;
    bool pending_ = false, stop_ = false;
    std::thread th_;
};

}  // namespace edgetan
