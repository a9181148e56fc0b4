#include "ood_worker.hpp"

#include <algorithm>

namespace edgetan {

namespace {
const int CHUNK = 16;   // prototypes per grab (~3 us of dot products)
}

OodWorker::OodWorker(const OodRef &ref) : ref_(ref), dots_(size_t(ref.knn ? ref.n_proto : 0)) {
    th_ = std::thread(&OodWorker::loop, this);
}

void OodWorker::share() {
    const int n = ref_.n_proto;
    for (;;) {
        const int i = next_.fetch_add(CHUNK, std::memory_order_relaxed);
        if (i >= n) return;
        const int e = std::min(i + CHUNK, n);
        for (int j = i; j < e; ++j) dots_[size_t(j)] = ref_.proto_dot(j, feat_);
        done_.fetch_add(e - i, std::memory_order_release);
    }
}

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
    next_.store(0, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    pending_ = true;
    lk.unlock();
    cv_.notify_all();
}

double OodWorker::wait() {
    if (ref_.knn) {
        share();   // the prototypes the helper has not taken yet
        while (done_.load(std::memory_order_acquire) < ref_.n_proto) std::this_thread::yield();   // its last chunk
        return ref_.knn_score(dots_.data(), feat_);
    }
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
        double r = 0;
        if (ref_.knn) share(); else r = ref_.score(f);
        lk.lock();
        result_ = r;
        pending_ = false;
        cv_.notify_all();
    }
}

}  // namespace edgetan
