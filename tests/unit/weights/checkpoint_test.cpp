// Checkpoint directory layouts: single file, index + shards, several files without an index; and the errors
// for a missing shard, an index entry pointing at the wrong shard, duplicated tensors, bad index JSON.
#include "weights/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "tiny_checkpoint.h"

namespace dsv4::weights {
namespace {

using namespace dsv4::testing;

std::vector<StTensor> some_tensors(int n) {
  std::mt19937_64 rng(3);
  std::vector<StTensor> v;
  for (int i = 0; i < n; ++i) v.push_back(st_random("t" + std::to_string(i), "BF16", {3, i + 1}, rng));
  return v;
}

void expect_all_found(const Checkpoint& ck, const std::vector<StTensor>& ts) {
  EXPECT_EQ(ck.names().size(), ts.size());
  for (const StTensor& t : ts) {
    auto ref = ck.find(t.name);
    ASSERT_TRUE(ref.has_value()) << t.name;
    ASSERT_EQ(ref->info->nbytes(), t.bytes.size());
    EXPECT_EQ(std::memcmp(ref->data, t.bytes.data(), t.bytes.size()), 0) << t.name;
  }
}

TEST(Checkpoint, SingleFile) {
  auto dir = fresh_dir();
  auto ts = some_tensors(4);
  write_checkpoint(dir, ts, StLayout::Single);
  auto ck = Checkpoint::open(dir);
  ASSERT_TRUE(ck.ok()) << ck.message();
  EXPECT_EQ((*ck)->layout(), "single");
  EXPECT_EQ((*ck)->n_files(), 1u);
  expect_all_found(**ck, ts);
}

TEST(Checkpoint, IndexedShards) {
  auto dir = fresh_dir();
  auto ts = some_tensors(7);
  write_checkpoint(dir, ts, StLayout::Indexed, 3);
  auto ck = Checkpoint::open(dir);
  ASSERT_TRUE(ck.ok()) << ck.message();
  EXPECT_EQ((*ck)->layout(), "index");
  EXPECT_EQ((*ck)->n_files(), 3u);
  expect_all_found(**ck, ts);
  EXPECT_TRUE(contains((*ck)->find("t1")->file->string(), "model-00002-of-00003.safetensors"));
}

TEST(Checkpoint, SeveralFilesWithoutIndex) {
  auto dir = fresh_dir();
  auto ts = some_tensors(5);
  write_checkpoint(dir, ts, StLayout::MultiNoIndex, 2);
  auto ck = Checkpoint::open(dir);
  ASSERT_TRUE(ck.ok()) << ck.message();
  EXPECT_EQ((*ck)->layout(), "multi");
  expect_all_found(**ck, ts);
}

TEST(Checkpoint, MissingShardNamesShardAndTensor) {
  auto dir = fresh_dir();
  auto wm = write_checkpoint(dir, some_tensors(6), StLayout::Indexed, 3);
  std::filesystem::remove(dir / shard_name(1, 3));
  auto ck = Checkpoint::open(dir);
  ASSERT_FALSE(ck.ok());
  EXPECT_TRUE(contains(ck.message(), shard_name(1, 3)));
  EXPECT_TRUE(contains(ck.message(), "is missing"));
  EXPECT_TRUE(contains(ck.message(), "tensor 't1'"));
}

TEST(Checkpoint, IndexMapsTensorToWrongShard) {
  auto dir = fresh_dir();
  auto wm = write_checkpoint(dir, some_tensors(6), StLayout::Indexed, 3);
  wm["t0"] = shard_name(2, 3);  // t0 lives in shard 1
  write_index(dir / "model.safetensors.index.json", wm);
  auto ck = Checkpoint::open(dir);
  ASSERT_FALSE(ck.ok());
  EXPECT_TRUE(contains(ck.message(), "tensor 't0'"));
  EXPECT_TRUE(contains(ck.message(), shard_name(2, 3) + ", which does not contain it"));
}

TEST(Checkpoint, IndexMapsUnknownTensor) {
  auto dir = fresh_dir();
  auto wm = write_checkpoint(dir, some_tensors(3), StLayout::Indexed, 3);
  wm["ghost.weight"] = shard_name(0, 3);
  write_index(dir / "model.safetensors.index.json", wm);
  auto ck = Checkpoint::open(dir);
  ASSERT_FALSE(ck.ok());
  EXPECT_TRUE(contains(ck.message(), "'ghost.weight'"));
}

TEST(Checkpoint, DuplicateTensorAcrossFiles) {
  auto dir = fresh_dir();
  auto ts = some_tensors(2);
  write_safetensors(dir / "a.safetensors", ts);
  write_safetensors(dir / "b.safetensors", {ts[1]});
  auto ck = Checkpoint::open(dir);
  ASSERT_FALSE(ck.ok());
  EXPECT_TRUE(contains(ck.message(), "tensor 't1' appears in both"));
}

TEST(Checkpoint, BadIndexAndEmptyDirectory) {
  auto dir = fresh_dir();
  auto empty = Checkpoint::open(dir);
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(contains(empty.message(), dir.string()));
  write_text(dir / "model.safetensors.index.json", "{\"weight_map\": {\"a\": ");
  auto bad = Checkpoint::open(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(contains(bad.message(), "model.safetensors.index.json: not valid JSON"));
  write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"a": "../outside.safetensors"}})");
  auto escape = Checkpoint::open(dir);
  ASSERT_FALSE(escape.ok());
  EXPECT_TRUE(contains(escape.message(), "not a file inside the checkpoint directory"));
  EXPECT_FALSE(Checkpoint::open(dir / "nonexistent").ok());
}

TEST(Checkpoint, CorruptShardHeaderNamesFile) {
  auto dir = fresh_dir();
  write_checkpoint(dir, some_tensors(4), StLayout::Indexed, 2);
  write_bytes(dir / shard_name(1, 2), {8, 0, 0, 0, 0, 0, 0, 0, '{', 'x', 0, 0, 0, 0, 0, 0});
  auto ck = Checkpoint::open(dir);
  ASSERT_FALSE(ck.ok());
  EXPECT_TRUE(contains(ck.message(), shard_name(1, 2)));
  EXPECT_TRUE(contains(ck.message(), "not valid JSON"));
}

}  // namespace
}  // namespace dsv4::weights
