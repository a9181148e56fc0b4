#include "ood_worker.hpp"

namespace edgetan {

OodWorker::OodWorker(const OodRef &ref) : ref_(ref) { th_ = std::thread(&OodWorker::loop, this); }

OodWorker::~OodWorker() {
    {
        std::lock_guard<std::mutex> lk(m_);
        stop_ = true;
    }
    cv_.notify_all();
    th_.join();
}

void OodWorker::start(const float *feat) {
    std::unique_lock<std::mutex> lk(m_);
    cv_.wait(lk, [this] { return !pending_; });   // a job never collected: let it finish first
    feat_ = feat;
    pending_ = true;
    lk.unlock();
    cv_.notify_all();
}

double OodWorker::wait() {
    std::unique_lock<std::mutex> lk(m_);
    cv_.wait(lk, [this] { return !pending_; });
    return result_;
}

void OodWorker::loop() {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
        cv_.wait(lk, [this] { return pending_ || stop_; });
        if (stop_) return;
        const float *f = feat_;
        lk.unlock();
        const double r = ref_.score(f);
        lk.lock();
        result_ = r;
        pending_ = false;
        cv_.notify_all();
    }
}

}  // namespace edgetan
