// Pixel kernels of src/augment compiled to WebAssembly with 128-bit SIMD (see build.sh): the loops
// that V8 cannot vectorise and that libvips runs with too much per-call overhead on 256 px tiles.
// Plain C, no libc; the caller (wasmKernels.ts) places every buffer in linear memory.
#include <stdint.h>
#include <wasm_simd128.h>

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// Bytes to floats, 16 at a time (clang 14 would move them lane by lane).
static void bytes_to_floats(const uint8_t *s, float *d, int n) {
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    const v128_t b = wasm_v128_load(s + j);
    const v128_t lo = wasm_u16x8_extend_low_u8x16(b);
    const v128_t hi = wasm_u16x8_extend_high_u8x16(b);
    wasm_v128_store(d + j, wasm_f32x4_convert_u32x4(wasm_u32x4_extend_low_u16x8(lo)));
    wasm_v128_store(d + j + 4, wasm_f32x4_convert_u32x4(wasm_u32x4_extend_high_u16x8(lo)));
    wasm_v128_store(d + j + 8, wasm_f32x4_convert_u32x4(wasm_u32x4_extend_low_u16x8(hi)));
    wasm_v128_store(d + j + 12, wasm_f32x4_convert_u32x4(wasm_u32x4_extend_high_u16x8(hi)));
  }
  for (; j < n; j++) d[j] = s[j];
}

// Floats in [0, 255] to bytes, rounded half up, 16 at a time.
static void floats_to_bytes(const float *s, uint8_t *d, int n) {
  const v128_t half = wasm_f32x4_splat(0.5f);
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    const v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(wasm_v128_load(s + j), half));
    const v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(wasm_v128_load(s + j + 4), half));
    const v128_t c = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(wasm_v128_load(s + j + 8), half));
    const v128_t e = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_add(wasm_v128_load(s + j + 12), half));
    wasm_v128_store(d + j, wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(a, b), wasm_i16x8_narrow_i32x4(c, e)));
  }
  for (; j < n; j++) {
    const float v = s[j] + 0.5f;
    d[j] = (uint8_t)(v >= 255.0f ? 255.0f : v <= 0.0f ? 0.0f : v);
  }
}

// Separable Gaussian blur of interleaved RGB bytes, edges replicated. k holds the 2r+1 taps of a
// symmetric kernel summing to 1; tmp holds w*h*3 floats, line (w+2r)*3 floats (at least w*3).
// Every loop over j runs along a row of contiguous values, so clang vectorises it 4 wide.
void blur_rgb(const uint8_t *src, uint8_t *dst, float *tmp, float *line, int w, int h, const float *k, int r) {
  const int row = w * 3;
  for (int y = 0; y < h; y++) {
    const uint8_t *s = src + y * row;
    for (int x = 0; x < r; x++) {
      for (int c = 0; c < 3; c++) {
        line[x * 3 + c] = s[c];
        line[(r + w + x) * 3 + c] = s[row - 3 + c];
      }
    }
    float *mid = line + r * 3;
    bytes_to_floats(s, mid, row);
    float *t = tmp + y * row;
    const float kc = k[r];
    for (int j = 0; j < row; j++) t[j] = kc * mid[j];
    for (int i = 0; i < r; i++) {
      const float ki = k[i];
      const float *a = line + i * 3;
      const float *b = line + (2 * r - i) * 3;
      for (int j = 0; j < row; j++) t[j] += ki * (a[j] + b[j]);
    }
  }
  for (int y = 0; y < h; y++) {
    float *acc = line;
    const float *c0 = tmp + y * row;
    const float kc = k[r];
    for (int j = 0; j < row; j++) acc[j] = kc * c0[j];
    for (int i = 0; i < r; i++) {
      const float ki = k[i];
      const float *a = tmp + clampi(y - r + i, 0, h - 1) * row;
      const float *b = tmp + clampi(y + r - i, 0, h - 1) * row;
      for (int j = 0; j < row; j++) acc[j] += ki * (a[j] + b[j]);
    }
    floats_to_bytes(acc, dst + y * row, row);
  }
}

// ---- Baseline JPEG, lossy stages only -------------------------------------------------------
// What libjpeg does to pixels with 4:2:0 sampling, without the (lossless) entropy coding:
// RGB -> YCbCr in libjpeg's fixed point, planes padded to 16 by edge replication, chroma 2x2
// averaged with libjpeg's alternating bias, 8x8 float DCT (AAN, as libjpeg's jfdctflt.c),
// quantisation rounding half away from zero, dequantisation, inverse DCT rounded and clamped,
// libjpeg's "fancy" (triangular) chroma upsampling and its fixed-point YCbCr -> RGB. libjpeg's
// default integer DCT rounds differently in the last bit, so a coefficient near a quantisation
// boundary can go the other way: 50-58 dB PSNR from a real round trip, not bit-identical.

#define FIX(x) ((int32_t)((x) * 65536.0 + 0.5))
#define ONE_HALF (1 << 15)

static inline uint8_t clamp_byte(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

// 8-point DCT and inverse in Arai-Agui-Nakajima form (as libjpeg's jfdctflt.c / jidctflt.c), on
// four independent columns at once (one per lane). Their output scale, 8 aan[u] aan[v], is folded
// into the quantisation tables the caller passes.
static inline void fdct8(v128_t *d[8]) {
  const v128_t c707 = wasm_f32x4_splat(0.707106781f), c382 = wasm_f32x4_splat(0.382683433f);
  const v128_t c541 = wasm_f32x4_splat(0.541196100f), c1306 = wasm_f32x4_splat(1.306562965f);
  const v128_t tmp0 = wasm_f32x4_add(*d[0], *d[7]), tmp7 = wasm_f32x4_sub(*d[0], *d[7]);
  const v128_t tmp1 = wasm_f32x4_add(*d[1], *d[6]), tmp6 = wasm_f32x4_sub(*d[1], *d[6]);
  const v128_t tmp2 = wasm_f32x4_add(*d[2], *d[5]), tmp5 = wasm_f32x4_sub(*d[2], *d[5]);
  const v128_t tmp3 = wasm_f32x4_add(*d[3], *d[4]), tmp4 = wasm_f32x4_sub(*d[3], *d[4]);
  v128_t tmp10 = wasm_f32x4_add(tmp0, tmp3), tmp13 = wasm_f32x4_sub(tmp0, tmp3);
  v128_t tmp11 = wasm_f32x4_add(tmp1, tmp2), tmp12 = wasm_f32x4_sub(tmp1, tmp2);
  *d[0] = wasm_f32x4_add(tmp10, tmp11);
  *d[4] = wasm_f32x4_sub(tmp10, tmp11);
  const v128_t z1 = wasm_f32x4_mul(wasm_f32x4_add(tmp12, tmp13), c707);
  *d[2] = wasm_f32x4_add(tmp13, z1);
  *d[6] = wasm_f32x4_sub(tmp13, z1);
  tmp10 = wasm_f32x4_add(tmp4, tmp5);
  tmp11 = wasm_f32x4_add(tmp5, tmp6);
  tmp12 = wasm_f32x4_add(tmp6, tmp7);
  const v128_t z5 = wasm_f32x4_mul(wasm_f32x4_sub(tmp10, tmp12), c382);
  const v128_t z2 = wasm_f32x4_add(wasm_f32x4_mul(c541, tmp10), z5);
  const v128_t z4 = wasm_f32x4_add(wasm_f32x4_mul(c1306, tmp12), z5);
  const v128_t z3 = wasm_f32x4_mul(tmp11, c707);
  const v128_t z11 = wasm_f32x4_add(tmp7, z3), z13 = wasm_f32x4_sub(tmp7, z3);
  *d[5] = wasm_f32x4_add(z13, z2);
  *d[3] = wasm_f32x4_sub(z13, z2);
  *d[1] = wasm_f32x4_add(z11, z4);
  *d[7] = wasm_f32x4_sub(z11, z4);
}

static inline void idct8(v128_t *d[8]) {
  const v128_t c1414 = wasm_f32x4_splat(1.414213562f), c1847 = wasm_f32x4_splat(1.847759065f);
  const v128_t c1082 = wasm_f32x4_splat(1.082392200f), c2613 = wasm_f32x4_splat(2.613125930f);
  v128_t tmp10 = wasm_f32x4_add(*d[0], *d[4]), tmp11 = wasm_f32x4_sub(*d[0], *d[4]);
  v128_t tmp13 = wasm_f32x4_add(*d[2], *d[6]);
  v128_t tmp12 = wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_sub(*d[2], *d[6]), c1414), tmp13);
  const v128_t e0 = wasm_f32x4_add(tmp10, tmp13), e3 = wasm_f32x4_sub(tmp10, tmp13);
  const v128_t e1 = wasm_f32x4_add(tmp11, tmp12), e2 = wasm_f32x4_sub(tmp11, tmp12);
  const v128_t z13 = wasm_f32x4_add(*d[5], *d[3]), z10 = wasm_f32x4_sub(*d[5], *d[3]);
  const v128_t z11 = wasm_f32x4_add(*d[1], *d[7]), z12 = wasm_f32x4_sub(*d[1], *d[7]);
  const v128_t o7 = wasm_f32x4_add(z11, z13);
  tmp11 = wasm_f32x4_mul(wasm_f32x4_sub(z11, z13), c1414);
  const v128_t z5 = wasm_f32x4_mul(wasm_f32x4_add(z10, z12), c1847);
  tmp10 = wasm_f32x4_sub(wasm_f32x4_mul(c1082, z12), z5);
  tmp12 = wasm_f32x4_sub(z5, wasm_f32x4_mul(c2613, z10));
  const v128_t o6 = wasm_f32x4_sub(tmp12, o7);
  const v128_t o5 = wasm_f32x4_sub(tmp11, o6);
  const v128_t o4 = wasm_f32x4_add(tmp10, o5);
  *d[0] = wasm_f32x4_add(e0, o7);
  *d[7] = wasm_f32x4_sub(e0, o7);
  *d[1] = wasm_f32x4_add(e1, o6);
  *d[6] = wasm_f32x4_sub(e1, o6);
  *d[2] = wasm_f32x4_add(e2, o5);
  *d[5] = wasm_f32x4_sub(e2, o5);
  *d[4] = wasm_f32x4_add(e3, o4);
  *d[3] = wasm_f32x4_sub(e3, o4);
}

static inline void transpose4(v128_t *a, v128_t *b, v128_t *c, v128_t *d) {
  const v128_t t0 = wasm_i32x4_shuffle(*a, *b, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(*a, *b, 2, 6, 3, 7);
  const v128_t t2 = wasm_i32x4_shuffle(*c, *d, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(*c, *d, 2, 6, 3, 7);
  *a = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
  *b = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  *c = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
  *d = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

// v[2r + h]: row r, columns 4h..4h+3. Transposes the 8x8 block.
static inline void transpose8(v128_t *v) {
  transpose4(&v[0], &v[2], &v[4], &v[6]);
  transpose4(&v[1], &v[3], &v[5], &v[7]);
  transpose4(&v[8], &v[10], &v[12], &v[14]);
  transpose4(&v[9], &v[11], &v[13], &v[15]);
  // Swap the off-diagonal 4x4 blocks.
  for (int r = 0; r < 4; r++) {
    const v128_t t = v[2 * r + 1];
    v[2 * r + 1] = v[2 * (r + 4)];
    v[2 * (r + 4)] = t;
  }
}

static inline void columns(v128_t *v, int h, int inverse) {
  v128_t *d[8];
  for (int r = 0; r < 8; r++) d[r] = &v[2 * r + h];
  if (inverse) idct8(d);
  else fdct8(d);
}

// The 2-D transform: columns, transpose, columns again (so the result comes out transposed).
static inline void transform2d(v128_t *v, int inverse) {
  columns(v, 0, inverse);
  columns(v, 1, inverse);
  transpose8(v);
  columns(v, 0, inverse);
  columns(v, 1, inverse);
}

// One plane, in place: every 8x8 block through DCT, quantisation and back. The DCT output comes out
// transposed (v[2 v + h] holds coefficient (u, v) in lane u - 4h), so both tables are given in that
// layout: div = 1 / (8 aan[u] aan[v] Q[u][v]), mul = Q[u][v] aan[u] aan[v] / 8.
static void quantise_plane(float *p, int pw, int ph, const float *div, const float *mul) {
  const v128_t half = wasm_f32x4_splat(0.5f);
  const v128_t sign = wasm_i32x4_splat((int32_t)0x80000000);
  const v128_t centre = wasm_f32x4_splat(128.0f);
  const v128_t zero = wasm_f32x4_splat(0.0f), top = wasm_f32x4_splat(255.0f);
  v128_t v[16];
  for (int by = 0; by < ph; by += 8) {
    for (int bx = 0; bx < pw; bx += 8) {
      float *blk = p + by * pw + bx;
      for (int r = 0; r < 8; r++) {
        v[2 * r] = wasm_f32x4_sub(wasm_v128_load(blk + r * pw), centre);
        v[2 * r + 1] = wasm_f32x4_sub(wasm_v128_load(blk + r * pw + 4), centre);
      }
      transform2d(v, 0);
      for (int i = 0; i < 16; i++) {
        // Quantise rounding half away from zero (libjpeg's integer path), then dequantise.
        const v128_t x = wasm_f32x4_mul(v[i], wasm_v128_load(div + 4 * i));
        const v128_t q = wasm_f32x4_trunc(wasm_f32x4_add(x, wasm_v128_or(half, wasm_v128_and(x, sign))));
        v[i] = wasm_f32x4_mul(q, wasm_v128_load(mul + 4 * i));
      }
      transform2d(v, 1);
      for (int r = 0; r < 8; r++) {
        for (int h = 0; h < 2; h++) {
          // Round half up, clamp to bytes as libjpeg's range limit does.
          v128_t x = wasm_f32x4_floor(wasm_f32x4_add(wasm_f32x4_add(v[2 * r + h], centre), half));
          wasm_v128_store(blk + r * pw + 4 * h, wasm_f32x4_min(wasm_f32x4_max(x, zero), top));
        }
      }
    }
  }
}

// 16 interleaved RGB pixels (48 bytes) to planar R, G, B.
static inline void deinterleave16(const uint8_t *s, v128_t *r, v128_t *g, v128_t *b) {
  const v128_t v0 = wasm_v128_load(s), v1 = wasm_v128_load(s + 16), v2 = wasm_v128_load(s + 32);
  const v128_t tr = wasm_i8x16_shuffle(v0, v1, 0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0, 0, 0, 0, 0);
  *r = wasm_i8x16_shuffle(tr, v2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 17, 20, 23, 26, 29);
  const v128_t tg = wasm_i8x16_shuffle(v0, v1, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 0, 0, 0, 0, 0);
  *g = wasm_i8x16_shuffle(tg, v2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 18, 21, 24, 27, 30);
  const v128_t tb = wasm_i8x16_shuffle(v0, v1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0, 0, 0, 0, 0, 0);
  *b = wasm_i8x16_shuffle(tb, v2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 19, 22, 25, 28, 31);
}

// Planar R, G, B (16 each) to 48 interleaved bytes.
static inline void interleave16(uint8_t *d, v128_t r, v128_t g, v128_t b) {
  const v128_t t0 = wasm_i8x16_shuffle(r, g, 0, 16, 0, 1, 17, 0, 2, 18, 0, 3, 19, 0, 4, 20, 0, 5);
  wasm_v128_store(d, wasm_i8x16_shuffle(t0, b, 0, 1, 16, 3, 4, 17, 6, 7, 18, 9, 10, 19, 12, 13, 20, 15));
  const v128_t t1 = wasm_i8x16_shuffle(r, g, 21, 0, 6, 22, 0, 7, 23, 0, 8, 24, 0, 9, 25, 0, 10, 26);
  wasm_v128_store(d + 16, wasm_i8x16_shuffle(t1, b, 0, 21, 2, 3, 22, 5, 6, 23, 8, 9, 24, 11, 12, 25, 14, 15));
  const v128_t t2 = wasm_i8x16_shuffle(r, g, 0, 11, 27, 0, 12, 28, 0, 13, 29, 0, 14, 30, 0, 15, 31, 0);
  wasm_v128_store(d + 32, wasm_i8x16_shuffle(t2, b, 26, 1, 2, 27, 4, 5, 28, 7, 8, 29, 10, 11, 30, 13, 14, 31));
}

// Bytes to four i32x4 (lanes 0-3, 4-7, 8-11, 12-15).
static inline void widen(v128_t v, v128_t out[4]) {
  const v128_t lo = wasm_u16x8_extend_low_u8x16(v), hi = wasm_u16x8_extend_high_u8x16(v);
  out[0] = wasm_u32x4_extend_low_u16x8(lo);
  out[1] = wasm_u32x4_extend_high_u16x8(lo);
  out[2] = wasm_u32x4_extend_low_u16x8(hi);
  out[3] = wasm_u32x4_extend_high_u16x8(hi);
}

// Four i32x4 to 16 bytes, saturating (which is libjpeg's range limit to 0..255).
static inline v128_t narrow(const v128_t v[4]) {
  return wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(v[0], v[1]), wasm_i16x8_narrow_i32x4(v[2], v[3]));
}

static inline void ycc_pixel(int r, int g, int b, float *y, int *cb, int *cr) {
  *y = (float)((FIX(0.29900) * r + FIX(0.58700) * g + FIX(0.11400) * b + ONE_HALF) >> 16);
  *cb = (-FIX(0.16874) * r - FIX(0.33126) * g + FIX(0.5) * b + (128 << 16) + ONE_HALF - 1) >> 16;
  *cr = (FIX(0.5) * r - FIX(0.41869) * g - FIX(0.08131) * b + (128 << 16) + ONE_HALF - 1) >> 16;
}

// One image row to Y (floats) and full-resolution Cb, Cr (ints), libjpeg's rgb_ycc_convert.
static void ycc_row(const uint8_t *s, int w, float *yr, int *cbr, int *crr) {
  const v128_t fy_r = wasm_i32x4_splat(FIX(0.29900)), fy_g = wasm_i32x4_splat(FIX(0.58700)), fy_b = wasm_i32x4_splat(FIX(0.11400));
  const v128_t fcb_r = wasm_i32x4_splat(-FIX(0.16874)), fcb_g = wasm_i32x4_splat(-FIX(0.33126)), fhalf = wasm_i32x4_splat(FIX(0.5));
  const v128_t fcr_g = wasm_i32x4_splat(-FIX(0.41869)), fcr_b = wasm_i32x4_splat(-FIX(0.08131));
  const v128_t yoff = wasm_i32x4_splat(ONE_HALF), coff = wasm_i32x4_splat((128 << 16) + ONE_HALF - 1);
  int x = 0;
  for (; x + 16 <= w; x += 16) {
    v128_t r8, g8, b8, r[4], g[4], b[4];
    deinterleave16(s + x * 3, &r8, &g8, &b8);
    widen(r8, r);
    widen(g8, g);
    widen(b8, b);
    for (int k = 0; k < 4; k++) {
      const v128_t y = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_mul(fy_r, r[k]), wasm_i32x4_mul(fy_g, g[k])), wasm_i32x4_add(wasm_i32x4_mul(fy_b, b[k]), yoff));
      wasm_v128_store(yr + x + 4 * k, wasm_f32x4_convert_i32x4(wasm_i32x4_shr(y, 16)));
      const v128_t cb = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_mul(fcb_r, r[k]), wasm_i32x4_mul(fcb_g, g[k])), wasm_i32x4_add(wasm_i32x4_mul(fhalf, b[k]), coff));
      wasm_v128_store(cbr + x + 4 * k, wasm_i32x4_shr(cb, 16));
      const v128_t cr = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_mul(fhalf, r[k]), wasm_i32x4_mul(fcr_g, g[k])), wasm_i32x4_add(wasm_i32x4_mul(fcr_b, b[k]), coff));
      wasm_v128_store(crr + x + 4 * k, wasm_i32x4_shr(cr, 16));
    }
  }
  for (; x < w; x++) ycc_pixel(s[x * 3], s[x * 3 + 1], s[x * 3 + 2], yr + x, cbr + x, crr + x);
}

// libjpeg's h2v2 fancy (triangular) upsampling of one output row: colsum = 3 near + far per chroma
// column, then each output pixel weighs its own colsum 3 and the neighbour's 1, biases 8 and 7.
static void fancy_row(const int *near, const int *far, int cw, int *colsum, int *out, int ow) {
  for (int c = 0; c < cw; c++) colsum[c + 1] = near[c] * 3 + far[c];
  colsum[0] = colsum[1];
  colsum[cw + 1] = colsum[cw];
  for (int c = 0; c < cw; c++) {
    const int t = colsum[c + 1] * 3;
    if (2 * c < ow) out[2 * c] = (t + colsum[c] + 8) >> 4;
    if (2 * c + 1 < ow) out[2 * c + 1] = (t + colsum[c + 2] + 7) >> 4;
  }
}

// src, dst: w x h RGB bytes. yp: pw x ph floats, pw and ph the size rounded up to 16; cbp, crp:
// (pw/2) x (ph/2) floats each; scratch: 2 pw ph + 3 (pw + 4) ints. div/mul: see quantise_plane.
void jpeg_round_trip(const uint8_t *src, uint8_t *dst, int w, int h, float *yp, float *cbp, float *crp, int *scratch,
                     const float *div_y, const float *mul_y, const float *div_c, const float *mul_c) {
  const int pw = (w + 15) & ~15, ph = (h + 15) & ~15, cpw = pw / 2, cph = ph / 2;
  int *cbf = scratch, *crf = scratch + pw * ph;
  // Colour conversion, then edge replication to the padded size (jcprepct.c, jcsample.c).
  for (int y = 0; y < h; y++) {
    float *yr = yp + y * pw;
    int *cbr = cbf + y * pw, *crr = crf + y * pw;
    ycc_row(src + y * w * 3, w, yr, cbr, crr);
    for (int x = w; x < pw; x++) {
      yr[x] = yr[w - 1];
      cbr[x] = cbr[w - 1];
      crr[x] = crr[w - 1];
    }
  }
  for (int y = h; y < ph; y++) {
    for (int x = 0; x < pw; x++) {
      yp[y * pw + x] = yp[(h - 1) * pw + x];
      cbf[y * pw + x] = cbf[(h - 1) * pw + x];
      crf[y * pw + x] = crf[(h - 1) * pw + x];
    }
  }
  // 2x2 averages, (sum + bias) >> 2 with bias 1, 2, 1, 2, ... along the row (h2v2_downsample).
  for (int cy = 0; cy < cph; cy++) {
    const int *b0 = cbf + 2 * cy * pw, *b1 = b0 + pw, *r0 = crf + 2 * cy * pw, *r1 = r0 + pw;
    for (int cx = 0; cx < cpw; cx++) {
      const int bias = 1 + (cx & 1);
      cbp[cy * cpw + cx] = (float)((b0[2 * cx] + b0[2 * cx + 1] + b1[2 * cx] + b1[2 * cx + 1] + bias) >> 2);
      crp[cy * cpw + cx] = (float)((r0[2 * cx] + r0[2 * cx + 1] + r1[2 * cx] + r1[2 * cx + 1] + bias) >> 2);
    }
  }
  quantise_plane(yp, pw, ph, div_y, mul_y);
  quantise_plane(cbp, cpw, cph, div_c, mul_c);
  quantise_plane(crp, cpw, cph, div_c, mul_c);
  // Chroma back to ints (cw = ceil(w/2) columns, ch = ceil(h/2) rows are the real ones), upsampled
  // with edge rows replicated (jdmainct.c context rows), then libjpeg's fixed-point ycc_rgb_convert.
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  for (int i = 0; i < cpw * cph; i++) {
    cbf[i] = (int)cbp[i];
    crf[i] = (int)crp[i];
  }
  int *cbu = scratch + 2 * pw * ph, *cru = cbu + pw + 4, *colsum = cru + pw + 4;
  const v128_t fr = wasm_i32x4_splat(FIX(1.40200)), fb = wasm_i32x4_splat(FIX(1.77200));
  const v128_t fgb = wasm_i32x4_splat(-FIX(0.34414)), fgr = wasm_i32x4_splat(-FIX(0.71414));
  const v128_t half = wasm_i32x4_splat(ONE_HALF), c128 = wasm_i32x4_splat(128);
  for (int y = 0; y < h; y++) {
    const int cy = y >> 1;
    const int fy = (y & 1) ? (cy + 1 < ch ? cy + 1 : cy) : (cy > 0 ? cy - 1 : 0);
    fancy_row(cbf + cy * cpw, cbf + fy * cpw, cw, colsum, cbu, w);
    fancy_row(crf + cy * cpw, crf + fy * cpw, cw, colsum, cru, w);
    const float *yr = yp + y * pw;
    uint8_t *d = dst + y * w * 3;
    int x = 0;
    for (; x + 16 <= w; x += 16) {
      v128_t R[4], G[4], B[4];
      for (int k = 0; k < 4; k++) {
        const v128_t yy = wasm_i32x4_trunc_sat_f32x4(wasm_v128_load(yr + x + 4 * k));
        const v128_t cb = wasm_i32x4_sub(wasm_v128_load(cbu + x + 4 * k), c128);
        const v128_t cr = wasm_i32x4_sub(wasm_v128_load(cru + x + 4 * k), c128);
        R[k] = wasm_i32x4_add(yy, wasm_i32x4_shr(wasm_i32x4_add(wasm_i32x4_mul(fr, cr), half), 16));
        G[k] = wasm_i32x4_add(yy, wasm_i32x4_shr(wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_mul(fgb, cb), half), wasm_i32x4_mul(fgr, cr)), 16));
        B[k] = wasm_i32x4_add(yy, wasm_i32x4_shr(wasm_i32x4_add(wasm_i32x4_mul(fb, cb), half), 16));
      }
      interleave16(d + x * 3, narrow(R), narrow(G), narrow(B));
    }
    for (; x < w; x++) {
      const int yy = (int)yr[x], cb = cbu[x] - 128, cr = cru[x] - 128;
      d[x * 3] = clamp_byte(yy + ((FIX(1.40200) * cr + ONE_HALF) >> 16));
      d[x * 3 + 1] = clamp_byte(yy + ((-FIX(0.34414) * cb + ONE_HALF - FIX(0.71414) * cr) >> 16));
      d[x * 3 + 2] = clamp_byte(yy + ((FIX(1.77200) * cb + ONE_HALF) >> 16));
    }
  }
}
