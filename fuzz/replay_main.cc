// A main for the fuzz targets in the normal test build (no libFuzzer): runs
// LLVMFuzzerTestOneInput once on every file of the folders (or files) named on the command line,
// so that `ctest` replays each target's committed corpus (fuzz_replay_<target>) under the
// sanitizers of that build. Exits 1 when a folder is missing or empty; a crash or a sanitizer
// report fails the test on its own.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> InputsBelow(const fs::path& path) {
  std::vector<fs::path> inputs;
  if (fs::is_regular_file(path)) {
    inputs.push_back(path);
  } else if (fs::is_directory(path)) {
    for (const fs::directory_entry& entry : fs::recursive_directory_iterator(path)) {
      if (entry.is_regular_file()) {
        inputs.push_back(entry.path());
      }
    }
  }
  std::sort(inputs.begin(), inputs.end());
  return inputs;
}

}  // namespace

int main(int argc, char** argv) {
  size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::vector<fs::path> inputs = InputsBelow(argv[i]);
    if (inputs.empty()) {
      std::fprintf(stderr, "replay: no inputs in %s\n", argv[i]);
      return 1;
    }
    for (const fs::path& input : inputs) {
      std::ifstream in(input, std::ios::binary);
      const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                    std::istreambuf_iterator<char>()};
      // A fresh copy of exactly the input's size, so that reads past its end are reported.
      std::vector<uint8_t> data(bytes.begin(), bytes.end());
      LLVMFuzzerTestOneInput(data.data(), data.size());
      ++replayed;
    }
  }
  std::printf("replay: %zu inputs, no failure\n", replayed);
  return 0;
}
