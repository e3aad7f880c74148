// safetensors header parser and mmapped file: valid images parse to in-bounds tensors; every malformed
// header is rejected with a message naming the origin (and the tensor where there is one).
#include "weights/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "testlib/safetensors_writer.h"
#include "tiny_checkpoint.h"

namespace dsv4::weights {
namespace {

using namespace dsv4::testing;

std::vector<StTensor> two_tensors() {
  std::mt19937_64 rng(7);
  return {st_random("a", "F32", {2, 3}, rng), st_random("b.weight", "BF16", {4}, rng)};
}

Result<SafetensorsHeader> parse(const std::vector<uint8_t>& bytes) { return parse_safetensors(bytes, "img.st"); }

// An image with a hand-written header and `data_bytes` zero bytes of data.
std::vector<uint8_t> with_header(const std::string& header, size_t data_bytes = 0) {
  std::vector<StTensor> data;
  if (data_bytes) data.push_back(StTensor{"x", "U8", {static_cast<int64_t>(data_bytes)}, std::vector<uint8_t>(data_bytes)});
  return st_image_from_header(header, data);
}

TEST(Safetensors, ParsesValidImage) {
  auto ts = two_tensors();
  auto img = st_image(ts, {{"format", "pt"}});
  auto h = parse(img);
  ASSERT_TRUE(h.ok()) << h.message();
  ASSERT_EQ(h->tensors.size(), 2u);
  EXPECT_EQ(h->metadata.at("format"), "pt");
  EXPECT_EQ(h->data_size, 24u + 8u);
  for (const TensorInfo& t : h->tensors) {
    const StTensor& src = t.name == "a" ? ts[0] : ts[1];
    EXPECT_EQ(t.shape, Shape(src.shape.begin(), src.shape.end()));
    ASSERT_EQ(t.nbytes(), src.bytes.size());
    EXPECT_EQ(std::memcmp(img.data() + h->data_offset + t.begin, src.bytes.data(), t.nbytes()), 0);
  }
  EXPECT_EQ(h->tensors[0].dtype, DType::F32);
}

TEST(Safetensors, AcceptsEmptyHeaderAndZeroSizedTensor) {
  EXPECT_TRUE(parse(with_header("{}")).ok());
  auto h = parse(with_header(R"({"z":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]}})"));
  ASSERT_TRUE(h.ok()) << h.message();
  EXPECT_EQ(h->tensors[0].shape, (Shape{0, 5}));
}

TEST(Safetensors, RejectsTooSmallFile) {
  auto r = parse_safetensors(std::vector<uint8_t>{1, 2, 3}, "tiny.st");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.message(), "tiny.st"));
  EXPECT_TRUE(contains(r.message(), "at least 8"));
}

TEST(Safetensors, RejectsHugeHeaderLength) {
  std::vector<uint8_t> img(64, ' ');
  const uint64_t n = 200ull * 1000 * 1000;
  for (int i = 0; i < 8; ++i) img[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  auto r = parse(img);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.message(), "img.st"));
  EXPECT_TRUE(contains(r.message(), "exceeds the limit"));
  for (int i = 0; i < 8; ++i) img[static_cast<size_t>(i)] = 0xFF;  // 2^64 - 1
  EXPECT_FALSE(parse(img).ok());
}

TEST(Safetensors, RejectsHeaderLengthBeyondFile) {
  auto img = st_image(two_tensors());
  img[0] = 0xF0;
  img[1] = 0x0F;  // N = 0x0FF0 > file size
  img[2] = img[3] = 0;
  auto r = parse(img);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.message(), "img.st: header length 4080 exceeds"));
}

TEST(Safetensors, RejectsBadJsonWithPosition) {
  auto r = parse(with_header(R"({"a": {"dtype": "F32",, "shape": []}})"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.message(), "img.st"));
  EXPECT_TRUE(contains(r.message(), "not valid JSON at byte"));
  EXPECT_FALSE(parse(with_header("[1,2,3]")).ok());  // not an object
  EXPECT_FALSE(parse(with_header(std::string(200, '[') + std::string(200, ']'))).ok());  // too deep
}

TEST(Safetensors, RejectsBadEntries) {
  struct Case {
    std::string header, expect;
  };
  const std::vector<Case> cases = {
      {R"({"t":5})", "tensor 't': header entry is not an object"},
      {R"({"t":{"shape":[1],"data_offsets":[0,4]}})", "tensor 't': missing string field 'dtype'"},
      {R"({"t":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", "tensor 't': unsupported dtype 'F64'"},
      {R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", "tensor 't': missing array field 'shape'"},
      {R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "must hold non-negative integers"},
      {R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "must hold non-negative integers"},
      {R"({"t":{"dtype":"F32","shape":[99999999999999999999999],"data_offsets":[0,4]}})", "non-negative integers"},
      {R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", "overflows the element count"},
      {R"({"t":{"dtype":"I64","shape":[4611686018427387904],"data_offsets":[0,4]}})", "overflows the byte size"},
      {R"({"t":{"dtype":"F32","shape":[1]}})", "'data_offsets' must be an array"},
      {R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "must be non-negative integers"},
      {R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", "begin > end"},
      {R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "span 4 bytes but F32 [2] needs 8"},
      {R"({"__metadata__":{"k":1}})", "__metadata__ value of 'k' is not a string"},
      {R"({"__metadata__":[]})", "__metadata__ is not an object"},
  };
  for (const Case& c : cases) {
    auto r = parse(with_header(c.header, 16));
    ASSERT_FALSE(r.ok()) << c.header;
    EXPECT_TRUE(contains(r.message(), "img.st")) << c.header;
    EXPECT_TRUE(contains(r.message(), c.expect)) << c.header;
  }
}

TEST(Safetensors, RejectsOffsetsPastDataSection) {
  auto r = parse(with_header(R"({"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", 16));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.message(), "img.st: tensor 'w'"));
  EXPECT_TRUE(contains(r.message(), "truncated"));
}

TEST(SafetensorsFile, OpensAndFindsTensors) {
  auto dir = fresh_dir();
  auto ts = two_tensors();
  write_safetensors(dir / "x.safetensors", ts);
  auto f = SafetensorsFile::open(dir / "x.safetensors");
  ASSERT_TRUE(f.ok()) << f.message();
  const TensorInfo* a = (*f)->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ((*f)->find("nope"), nullptr);
  EXPECT_EQ(std::memcmp((*f)->data(*a), ts[0].bytes.data(), ts[0].bytes.size()), 0);
}

TEST(SafetensorsFile, TruncatedFileNamesFileAndTensor) {
  auto dir = fresh_dir();
  auto path = dir / "cut.safetensors";
  auto img = st_image(two_tensors());
  img.resize(img.size() - 4);
  write_bytes(path, img);
  auto f = SafetensorsFile::open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_TRUE(contains(f.message(), path.string()));
  EXPECT_TRUE(contains(f.message(), "tensor 'b.weight'"));
  EXPECT_TRUE(contains(f.message(), "truncated"));
}

TEST(SafetensorsFile, MissingOrEmptyFile) {
  auto dir = fresh_dir();
  auto r = SafetensorsFile::open(dir / "absent.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.message(), "absent.safetensors"));
  write_bytes(dir / "empty.safetensors", {});
  auto e = SafetensorsFile::open(dir / "empty.safetensors");
  ASSERT_FALSE(e.ok());
  EXPECT_TRUE(contains(e.message(), "empty.safetensors"));
}

}  // namespace
}  // namespace dsv4::weights

namespace dsv4::weights {
namespace {

// Found by libFuzzer (tests/scripts/fuzz_libfuzzer.sh): a number literal that overflows a double made
// nlohmann throw out_of_range, which escaped the parser instead of becoming an error.
TEST(Safetensors, RejectsOverflowingNumberInHeader) {
  for (std::string header : {"1E11111", "{\"x\": {\"dtype\": \"U8\", \"shape\": [1E999], \"data_offsets\": [0, 1]}}"}) {
    auto r = parse_safetensors(st_image_from_header(header, {}), "img.st");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.message().find("img.st"), std::string::npos) << r.message();
  }
}

}  // namespace
}  // namespace dsv4::weights
