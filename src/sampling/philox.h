// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based
// generator. Output is a pure function of (counter, key), so a request's random draw at step t depends only
// on its own seed and t, never on which other requests share the batch or in what order rows are processed.
// Checked against the Random123 known-answer vectors.
#pragma once
#include <array>
#include <cstdint>

namespace dsv4::sampling {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// Ten Philox rounds of (counter, key): four independent 32-bit words.
std::array<uint32_t, 4> philox4x32_10(PhiloxCounter ctr, PhiloxKey key);

// A uniform double in [0, 1) with 53 random bits, keyed by seed; (step, stream) select the counter.
// The sampler draws stream 0 at step = number of tokens the request has generated so far.
double philox_uniform(uint64_t seed, uint64_t step, uint32_t stream = 0);

}  // namespace dsv4::sampling
