// Comparison library for every numeric test (STYLE.md "Tests"): relative error ||a-b||/||b||, max-abs error,
// cosine similarity, argmax agreement over rows, and a NaN/Inf anomaly check. `a` is the value under test,
// `b` the reference. All reductions accumulate in f64. Any NaN/Inf in either input makes every check fail:
// a NaN never passes. Header-only; the gtest helpers return AssertionResult so failures print the stats.
#pragma once
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace dsv4::testlib {

struct CompareStats {
  size_t n = 0;
  double rel_err = 0.0;     // ||a-b||_2 / ||b||_2 (0 when both are all-zero; inf when only b is)
  double max_abs = 0.0;     // max_i |a_i - b_i|
  size_t max_abs_at = 0;    // index of max_abs
  double cosine = 1.0;      // <a,b> / (|a||b|); 1 when both are all-zero, 0 when exactly one is
  size_t n_nonfinite_a = 0; // NaN or Inf count in a
  size_t n_nonfinite_b = 0;
  size_t first_nonfinite = 0;  // first index where a or b is not finite (valid when any count > 0)

  bool finite() const { return n_nonfinite_a == 0 && n_nonfinite_b == 0; }
  std::string str() const {
    std::ostringstream os;
    os.precision(6);
    os << "n=" << n << " rel_err=" << rel_err << " max_abs=" << max_abs << " (at " << max_abs_at
       << ") cosine=" << cosine;
    if (!finite())
      os << " NON-FINITE: a=" << n_nonfinite_a << " b=" << n_nonfinite_b << " first at " << first_nonfinite;
    return os.str();
  }
};

inline CompareStats compare(const float* a, const float* b, size_t n) {
  CompareStats s;
  s.n = n;
  double diff2 = 0.0, a2 = 0.0, b2 = 0.0, ab = 0.0;
  bool seen_bad = false;
  for (size_t i = 0; i < n; ++i) {
    const bool fa = std::isfinite(a[i]);
    const bool fb = std::isfinite(b[i]);
    if (!fa) ++s.n_nonfinite_a;
    if (!fb) ++s.n_nonfinite_b;
    if (!fa || !fb) {
      if (!seen_bad) s.first_nonfinite = i;
      seen_bad = true;
      continue;
    }
    const double x = a[i], y = b[i];
    const double d = x - y;
    diff2 += d * d;
    a2 += x * x;
    b2 += y * y;
    ab += x * y;
    if (std::fabs(d) > s.max_abs) {
      s.max_abs = std::fabs(d);
      s.max_abs_at = i;
    }
  }
  if (b2 > 0.0)
    s.rel_err = std::sqrt(diff2) / std::sqrt(b2);
  else
    s.rel_err = diff2 > 0.0 ? INFINITY : 0.0;
  if (a2 > 0.0 && b2 > 0.0)
    s.cosine = ab / (std::sqrt(a2) * std::sqrt(b2));
  else
    s.cosine = (a2 == 0.0 && b2 == 0.0) ? 1.0 : 0.0;
  return s;
}

inline CompareStats compare(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size()) << "compare: size mismatch";
  return compare(a.data(), b.data(), a.size() < b.size() ? a.size() : b.size());
}

// Index of the largest element (first one on ties); NaN is never the argmax unless every element is NaN.
inline size_t argmax(const float* x, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i)
    if (x[i] > x[best] || std::isnan(x[best])) best = i;
  return best;
}

// Fraction of rows of [n_rows, row_len] whose argmax agrees between a and b.
inline double argmax_agreement(const float* a, const float* b, size_t n_rows, size_t row_len) {
  if (n_rows == 0) return 1.0;
  size_t same = 0;
  for (size_t r = 0; r < n_rows; ++r)
    same += argmax(a + r * row_len, row_len) == argmax(b + r * row_len, row_len) ? 1 : 0;
  return static_cast<double>(same) / static_cast<double>(n_rows);
}

// ---- GoogleTest helpers: EXPECT_TRUE(rel_err_within(a, b, n, 1e-3)); ----

inline ::testing::AssertionResult all_finite(const float* a, const float* b, size_t n) {
  const CompareStats s = compare(a, b, n);
  if (s.finite()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.str();
}

inline ::testing::AssertionResult rel_err_within(const float* a, const float* b, size_t n, double tol) {
  const CompareStats s = compare(a, b, n);
  if (s.finite() && s.rel_err <= tol) return ::testing::AssertionSuccess() << s.str();
  return ::testing::AssertionFailure() << "rel_err > " << tol << ": " << s.str();
}

inline ::testing::AssertionResult max_abs_within(const float* a, const float* b, size_t n, double tol) {
  const CompareStats s = compare(a, b, n);
  if (s.finite() && s.max_abs <= tol) return ::testing::AssertionSuccess() << s.str();
  return ::testing::AssertionFailure() << "max_abs > " << tol << ": " << s.str() << " a=" << a[s.max_abs_at]
                                       << " b=" << b[s.max_abs_at];
}

inline ::testing::AssertionResult cosine_at_least(const float* a, const float* b, size_t n, double min_cos) {
  const CompareStats s = compare(a, b, n);
  if (s.finite() && s.cosine >= min_cos) return ::testing::AssertionSuccess() << s.str();
  return ::testing::AssertionFailure() << "cosine < " << min_cos << ": " << s.str();
}

// Bit-exact equality of the f32 patterns (so -0 != +0); a NaN on either side never passes.
inline ::testing::AssertionResult bitwise_equal(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i]) || std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]))
      return ::testing::AssertionFailure() << "first difference at " << i << ": " << a[i] << " vs " << b[i];
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult argmax_agree_at_least(const float* a, const float* b, size_t n_rows,
                                                        size_t row_len, double min_frac) {
  const CompareStats s = compare(a, b, n_rows * row_len);
  const double frac = argmax_agreement(a, b, n_rows, row_len);
  if (s.finite() && frac >= min_frac) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "argmax agreement " << frac << " < " << min_frac << ": " << s.str();
}

}  // namespace dsv4::testlib
