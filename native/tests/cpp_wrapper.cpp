// The C++ wrapper (include/edgetan.hpp): open, push a clip of raw grey frames, EF, and a failure
// surfacing as edgetan::Failure.   edgetan-cpp-wrapper MODEL FRAMES.raw W H
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "edgetan.hpp"

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    const int w = std::atoi(argv[3]), h = std::atoi(argv[4]);
    try {
        edgetan::Tracker bad("/nonexistent.xml");
        std::puts("FAIL: opening a missing model did not throw");
        return 1;
    } catch (const edgetan::Failure &f) {
        std::printf("missing model -> status %d: %s\n", int(f.status), f.what());
    }
    edgetan::Tracker tracker(argv[1]);
    std::ifstream in(argv[2], std::ios::binary);
    std::vector<unsigned char> px(size_t(w) * h);
    int n = 0;
    while (in.read(reinterpret_cast<char *>(px.data()), std::streamsize(px.size()))) {
        const et_result &r = tracker.push({px.data(), w, h, 0, ET_GRAY8});
        n += r.state != ET_STATE_LOST;
    }
    et_clinical c = tracker.clinical();
    std::printf("tracked %d frames, %s, EF %.1f %%\n", n, tracker.info().model_name, c.ef_percent);
    try {
        tracker.push({nullptr, w, h, 0, ET_GRAY8});
        return 1;
    } catch (const edgetan::Failure &f) {
        std::printf("null frame -> status %d: %s\n", int(f.status), f.what());
    }
    return 0;
}
