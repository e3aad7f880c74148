#!/usr/bin/env bash
# run 291: the FP8 expert GEMM without its raw-weight copies (measurement only, wrong results): is the cp.async count
# what bounds the step? Flash T=4096 whole call, then the clock64 phases
R=$PWD; C=$R/.gpucarry/c; cd $C && tar -xJf bin.tar.xz && cd $R
export LD_LIBRARY_PATH="$C/new:/usr/local/cuda/lib64"; export DSV4_TEST_DATA_DIR=$R/tests/data
ROW="flash-prefill-fp8 bf16 mxfp4 D=4096 I=2048 E=256 k=6 T=4096"
for r in 1 2; do for a in 0 1; do
  DSV4_MOE_FP8_ABLATE=$a timeout 100 $C/dsv4_gpu_ops --quick --only ops-moe --match "$ROW" > $OUT/t_a${a}_$r.log 2>&1
  echo "ablate=$a r$r: $(grep '^\[PERF\]' $OUT/t_a${a}_$r.log | grep 'T=4096' | head -1)"
done; done
for a in 0 1; do
  DSV4_MOE_FP8_PROF=1 DSV4_MOE_FP8_ABLATE=$a timeout 100 $C/dsv4_gpu_ops --quick --no-perf --only ops-moe --match "$ROW" > $OUT/p_a$a.log 2>&1
  echo "ablate=$a prof:"; grep "moe_fp8 prof" $OUT/p_a$a.log | tail -4
done
