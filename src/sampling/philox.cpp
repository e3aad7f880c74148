// Philox4x32-10 with the constants of Random123 (philox.h): multipliers 0xD2511F53 / 0xCD9E8D57 and the
// Weyl key increments 0x9E3779B9 / 0xBB67AE85 (golden ratio, sqrt(3) - 1).
#include "sampling/philox.h"

namespace dsv4::sampling {
namespace {

constexpr uint32_t kM0 = 0xD2511F53u;
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;
constexpr uint32_t kW1 = 0xBB67AE85u;

PhiloxCounter round(const PhiloxCounter& c, const PhiloxKey& k) {
  const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
  const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
  const auto hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const auto hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
}

}  // namespace

std::array<uint32_t, 4> philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      key[0] += kW0;
      key[1] += kW1;
    }
    ctr = round(ctr, key);
  }
  return ctr;
}

double philox_uniform(uint64_t seed, uint64_t step, uint32_t stream) {
  const PhiloxCounter ctr = {static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32), stream, 0};
  const PhiloxKey key = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const auto w = philox4x32_10(ctr, key);
  const uint64_t bits = (static_cast<uint64_t>(w[0] >> 5) << 26) | (w[1] >> 6);  // 27 + 26 = 53 bits
  return static_cast<double>(bits) * 0x1.0p-53;
}

}  // namespace dsv4::sampling
