#!/bin/sh
# Rebuilds kernels.wasm from kernels.c (needs clang and lld: apt-get install clang-14 lld-14).
# The .wasm is committed, so installing gradelab never needs a compiler.
set -e
cd "$(dirname "$0")"
CC=${CC:-$(command -v clang-14 || command -v clang)}
# clang calls wasm-ld; Debian's lld-14 puts it under /usr/lib/llvm-14/bin.
PATH=/usr/lib/llvm-14/bin:$PATH
"$CC" --target=wasm32 -O3 -msimd128 -nostdlib -fno-builtin -Wl,--no-entry -Wl,--export=blur_rgb -Wl,--export=jpeg_round_trip -Wl,--export=__heap_base -Wl,--strip-all -o kernels.wasm kernels.c

# Records which source the committed binary was built from, and the binary itself
# (test/augment/wasmKernels.test.ts checks both, and rebuilds to compare where clang-14 is installed).
printf '%s kernels.c\n%s kernels.wasm\n' "$(sha256sum kernels.c | cut -d' ' -f1)" "$(sha256sum kernels.wasm | cut -d' ' -f1)" > kernels.c.sha256
echo "kernels.wasm: $(wc -c < kernels.wasm) bytes; $(cat kernels.c.sha256 | tr '\n' ' ')"
