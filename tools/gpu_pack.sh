#!/usr/bin/env bash
# tools/gpu_pack.sh: builds the CUDA binaries here (-DDSV4_CUDA=ON; nvcc is enough, no GPU needed) and packs them,
# stripped, with the host libraries the GPU image lacks, into .gpucarry/ for tools/gpu_run.sh on the GPU machine
# (device call: carry [".gpucarry"], command "tools/gpu_run.sh $OUT"). .gpucarry/ is git-ignored.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${DSV4_CUDA_BUILD:-$ROOT/build-cuda}
C=$ROOT/.gpucarry
cmake -S "$ROOT" -B "$B" -G Ninja -DDSV4_CUDA=ON -DCMAKE_BUILD_TYPE=Release > /dev/null
targets=(dsv4 dsv4_gpu_ops dsv4_gpu_e2e dsv4_gpu_sampling)
grep -q dsv4_cuda_bench "$B/build.ninja" && targets+=(dsv4_cuda_bench)
grep -q dsv4_sampling_bench "$B/build.ninja" && targets+=(dsv4_sampling_bench)
grep -q dsv4_launch_cost_bench "$B/build.ninja" && targets+=(dsv4_launch_cost_bench)
cmake --build "$B" --target "${targets[@]}" -j "$(nproc)"
rm -rf "$C" && mkdir -p "$C/stage"
for t in "${targets[@]}"; do
  f=$(find "$B" -maxdepth 3 -type f -name "$t" -perm -u+x | head -1)
  strip -o "$C/stage/$t" "$f"
done
cp -L /lib/x86_64-linux-gnu/libpcre2-8.so.0 /lib/x86_64-linux-gnu/libstdc++.so.6 "$C/"
XZ_OPT=-9e tar -cJf "$C/bin.tar.xz" -C "$C/stage" .
rm -rf "$C/stage"
du -sh "$C"/*
