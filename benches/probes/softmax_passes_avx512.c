/* The float32 softmax passes in AVX-512 intrinsics, with parts taken away or swapped, to find
 * what bounds their speed on an AVX-512 machine (the README's "where smoothmax loses" cites
 * these figures). Not part of the library or its tests.
 *
 *   gcc -O2 -mavx512f -mavx512dq -mfma benches/probes/softmax_passes_avx512.c -o /tmp/probe
 *   /tmp/probe [N [ROWS]]      (default: one row of 32000, which stays in L2; ROWS for 'row'
 *                              and 'fused')
 *
 * The passes are those of rust/src/kernels/rows32.rs for a row written to another buffer:
 * the one-pass softmax pass (the per-block test against the shift's limit, the clamp, the
 * reduction by K·LN2_HI and K·LN2_LO, the degree-6 polynomial, 2^{K - K_s + 64} from the
 * exponent bits, y = 2^{..}(1 + t) rounded once and stored, y widened exactly to f64 by
 * in-lane unpacks and a shift (Simd::widen_scaled) and summed there), then the scale pass (y
 * times 1/S as an f32 pair). Blocks of 32 floats (two vectors), as in the library. Variants:
 *
 *   shipped      the one-pass pass as shipped
 *   zero-ext     y widened by zero-extension of each half in lane order instead (the upper
 *                half extracted first; what the library did before)
 *   no-sum       the same without the widening and the f64 sums (exp and store only)
 *   f32-sum      y summed in f32 instead (not accurate enough for softmax's 4 ULP bound)
 *   adds-only    y's bits added as doubles without any conversion (the four f64 additions
 *                per block alone; the sums are meaningless)
 *   cvt          y widened by vcvtps2pd instead of zero-extension
 *   f2s-seed     y summed in f32 by Fast2Sum onto a seed at least as large as every term (three
 *                operations give the sum and its exact error), the errors summed in f32 beside
 *                it: an exact enough float32 sum without widening, had the row's second-largest
 *                entry set the seed (a max pass keeping the top two would pay for it); timing
 *                only, the seed here sits far above every term
 *   f2s-minmax   the same without a seed, each pair put in order by max and min first
 *   scale        the scale pass alone (on y already in the buffer)
 *   max          a max pass (the two-pass kernels' first pass)
 *   row          shipped + scale per row over ROWS rows: with ROWS x N beyond L2 this is the
 *                whole softmax reading from L3 or memory
 *   fused        row, with each row's scale pass run block by block inside the next row's
 *                shipped pass (the last row's after the loop)
 *
 * Printed: median and best ns per element over 15 interleaved rounds, and cycles per 16
 * elements at the clock measured by a chain of dependent integer additions (one per cycle).
 * Then the throughput of 512-bit operations alone: FMA, add, and FMA and add mixed, per cycle.
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 15
#define MAGIC 12582912.0f
#define SF _mm512_set1_ps

static const float P[5] = {0.0013751407f, 0.008368916f, 0.041669533f, 0.16666518f,
                           0.49999988f};
static int N = 32000, ROWS = 1;
static float *X, *OUT;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* t and 2^{K - K_s + 64} of one vector, as rows32::pass_terms (ln2_lo::ABSOLUTE). */
static inline void terms(__m512 x, __m512 low, __m512 bias, __m512 *t, __m512 *p2) {
  __m512 xc = _mm512_max_ps(low, x);
  __m512 km = _mm512_fmadd_ps(xc, SF(1.44269504f), SF(MAGIC));
  __m512 k = _mm512_sub_ps(km, SF(MAGIC));
  __m512 r = _mm512_fmadd_ps(k, SF(-0.69314718f), xc);
  r = _mm512_fmadd_ps(k, SF(1.9046543e-9f), r);
  __m512 p = SF(P[0]);
  for (int i = 1; i < 5; i++) p = _mm512_fmadd_ps(p, r, SF(P[i]));
  *t = _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r);
  __m512i e = _mm512_add_epi32(_mm512_castps_si512(km), _mm512_castps_si512(bias));
  *p2 = _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}

/* Non-negative floats times 2^-896 as doubles, exactly: Simd::widen_scaled on AVX-512
 * (lanes 0, 1, 4, 5, ... or 2, 3, 6, 7, ...), and the same by zero-extension in lane order. */
static inline __m512d unpack_lo(__m512i bits) {
  return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_unpacklo_epi32(bits, _mm512_setzero_si512()), 29));
}
static inline __m512d unpack_hi(__m512i bits) {
  return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_unpackhi_epi32(bits, _mm512_setzero_si512()), 29));
}
static inline __m512d zero_ext(__m256i half) {
  return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_cvtepu32_epi64(half), 29));
}

enum {
  SHIPPED, ZERO_EXT, NO_SUM, F32_SUM, ADDS_ONLY, CVT, SCALE, MAX, ROW, FUSED, F2S_SEED, F2S_MINMAX,
  VARIANTS
};
static const char *NAMES[] = {"shipped", "zero-ext", "no-sum", "f32-sum", "adds-only",
                              "cvt",     "scale",    "max",    "row",
                              "fused",   "f2s-seed", "f2s-minmax"};

/* The one-pass pass over one row; returns the sum (or a stand-in, so nothing is dropped).
 * With `prev`, each block also scales the same block of `prev` by 1/prev_total (FUSED). */
static double exp_pass(int mode, const float *x, float *out, float *prev, double prev_total) {
  const float inv = (float)(1.0 / prev_total);
  const __m512 inv_hi = SF(inv), inv_lo = SF((float)(1.0 / prev_total - inv));
  const __m512 low = SF(-80.0f), limit = SF(1000.0f);
  const __m512 bias = _mm512_castsi512_ps(
      _mm512_add_epi32(_mm512_castps_si512(SF(MAGIC)), _mm512_set1_epi32(191 - 8)));
  __m512d a0 = _mm512_setzero_pd(), a1 = a0;
  __m512 f0 = mode == F2S_SEED ? SF(1e30f) : _mm512_setzero_ps(), f1 = f0;
  __m512 c0 = _mm512_setzero_ps(), c1 = c0;
  double moved = 0;
  for (int i = 0; i + 32 <= N; i += 32) {
    __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    if (_mm512_cmp_ps_mask(limit, _mm512_max_ps(v0, v1), _CMP_LT_OQ)) moved += 1;
    __m512 t0, p0, t1, p1;
    terms(v0, low, bias, &t0, &p0);
    terms(v1, low, bias, &t1, &p1);
    __m512 y0 = _mm512_fmadd_ps(t0, p0, p0), y1 = _mm512_fmadd_ps(t1, p1, p1);
    _mm512_storeu_ps(out + i, y0);
    _mm512_storeu_ps(out + i + 16, y1);
    __m512i b0 = _mm512_castps_si512(y0), b1 = _mm512_castps_si512(y1);
    switch (mode) {
      case NO_SUM:
        break;
      case F2S_SEED: {
        __m512 s0 = _mm512_add_ps(f0, y0), s1 = _mm512_add_ps(f1, y1);
        c0 = _mm512_add_ps(c0, _mm512_sub_ps(y0, _mm512_sub_ps(s0, f0)));
        c1 = _mm512_add_ps(c1, _mm512_sub_ps(y1, _mm512_sub_ps(s1, f1)));
        f0 = s0;
        f1 = s1;
        break;
      }
      case F2S_MINMAX: {
        __m512 a0 = _mm512_max_ps(f0, y0), b0 = _mm512_min_ps(f0, y0);
        __m512 a1 = _mm512_max_ps(f1, y1), b1 = _mm512_min_ps(f1, y1);
        f0 = _mm512_add_ps(a0, b0);
        f1 = _mm512_add_ps(a1, b1);
        c0 = _mm512_add_ps(c0, _mm512_sub_ps(b0, _mm512_sub_ps(f0, a0)));
        c1 = _mm512_add_ps(c1, _mm512_sub_ps(b1, _mm512_sub_ps(f1, a1)));
        break;
      }
      case F32_SUM:
        f0 = _mm512_add_ps(f0, y0);
        f1 = _mm512_add_ps(f1, y1);
        break;
      case ADDS_ONLY:
        a0 = _mm512_add_pd(a0, _mm512_castps_pd(y0));
        a1 = _mm512_add_pd(a1, _mm512_castps_pd(y1));
        a0 = _mm512_add_pd(a0, _mm512_castps_pd(y1));
        a1 = _mm512_add_pd(a1, _mm512_castps_pd(y0));
        break;
      case CVT:
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(y0)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(b0, 1))));
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(y1)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(b1, 1))));
        break;
      case ZERO_EXT:
        a0 = _mm512_add_pd(a0, zero_ext(_mm512_castsi512_si256(b0)));
        a1 = _mm512_add_pd(a1, zero_ext(_mm512_extracti64x4_epi64(b0, 1)));
        a0 = _mm512_add_pd(a0, zero_ext(_mm512_castsi512_si256(b1)));
        a1 = _mm512_add_pd(a1, zero_ext(_mm512_extracti64x4_epi64(b1, 1)));
        break;
      default:
        a0 = _mm512_add_pd(a0, unpack_lo(b0));
        a1 = _mm512_add_pd(a1, unpack_hi(b0));
        a0 = _mm512_add_pd(a0, unpack_lo(b1));
        a1 = _mm512_add_pd(a1, unpack_hi(b1));
    }
    if (prev) {
      __m512 q0 = _mm512_loadu_ps(prev + i), q1 = _mm512_loadu_ps(prev + i + 16);
      _mm512_storeu_ps(prev + i, _mm512_fmadd_ps(q0, inv_hi, _mm512_mul_ps(q0, inv_lo)));
      _mm512_storeu_ps(prev + i + 16, _mm512_fmadd_ps(q1, inv_hi, _mm512_mul_ps(q1, inv_lo)));
    }
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1)) +
         _mm512_reduce_add_ps(_mm512_add_ps(f0, f1)) +
         _mm512_reduce_add_ps(_mm512_add_ps(c0, c1)) + moved;
}

static void scale_pass(float *out, double total) {
  float hi = (float)(1.0 / total);
  const __m512 inv_hi = SF(hi), inv_lo = SF((float)(1.0 / total - hi));
  for (int i = 0; i + 32 <= N; i += 32) {
    __m512 y0 = _mm512_loadu_ps(out + i), y1 = _mm512_loadu_ps(out + i + 16);
    _mm512_storeu_ps(out + i, _mm512_fmadd_ps(y0, inv_hi, _mm512_mul_ps(y0, inv_lo)));
    _mm512_storeu_ps(out + i + 16, _mm512_fmadd_ps(y1, inv_hi, _mm512_mul_ps(y1, inv_lo)));
  }
}

static double max_pass(const float *x) {
  __m512 m0 = SF(-1e30f), m1 = m0;
  for (int i = 0; i + 32 <= N; i += 32) {
    m0 = _mm512_max_ps(_mm512_loadu_ps(x + i), m0);
    m1 = _mm512_max_ps(_mm512_loadu_ps(x + i + 16), m1);
  }
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

static double run(int mode) {
  double sink = 0;
  if (mode == FUSED) {
    float *prev = 0;
    double prev_total = 1.0;
    for (int row = 0; row < ROWS; row++) {
      float *out = OUT + (size_t)row * N;
      prev_total = exp_pass(SHIPPED, X + (size_t)row * N, out, prev, prev_total) + 1.0;
      prev = out;
    }
    scale_pass(prev, prev_total);
    return sink + OUT[N / 2];
  }
  for (int row = 0; row < (mode == ROW ? ROWS : 1); row++) {
    const float *x = X + (size_t)row * N;
    float *out = OUT + (size_t)row * N;
    if (mode == SCALE) {
      scale_pass(out, 3.0);
    } else if (mode == MAX) {
      sink += max_pass(x);
    } else if (mode == ROW) {
      scale_pass(out, exp_pass(SHIPPED, x, out, 0, 1.0) + 1.0);
    } else {
      sink += exp_pass(mode, x, out, 0, 1.0);
    }
    sink += out[N / 2];
  }
  return sink;
}

static int cmp(const void *a, const void *b) {
  double d = *(const double *)a - *(const double *)b;
  return (d > 0) - (d < 0);
}

/* The clock: 4·10^9 dependent integer additions take 4·10^9 cycles. */
static double clock_ghz(void) {
  long n = 1000000000L, acc = 0;
  double t = now();
  for (long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(acc));
  return 4.0 * n / (now() - t) / 1e9;
}

#define TWELVE(OP) OP(v0); OP(v1); OP(v2); OP(v3); OP(v4); OP(v5); OP(v6); OP(v7); OP(v8); OP(v9); OP(va); OP(vb);
#define KEEP __asm__ volatile("" : "+v"(v0), "+v"(v1), "+v"(v2), "+v"(v3), "+v"(v4), "+v"(v5), "+v"(v6), "+v"(v7), "+v"(v8), "+v"(v9), "+v"(va), "+v"(vb))
#define FMA(v) v = _mm512_fmadd_ps(v, m, c)
#define ADD(v) v = _mm512_add_ps(v, c)
#define MIX(v) v##f = _mm512_fmadd_ps(v##f, m, c); v = _mm512_add_ps(v, c)
/* Independent chains of one operation (or FMA and add interleaved), ops per cycle. */
static double op_rate(int kind, double ghz) {
  const long n = 50000000L;
  const __m512 m = SF(0.999f), c = SF(0.001f);
  __m512 v0 = SF(1), v1 = v0, v2 = v0, v3 = v0, v4 = v0, v5 = v0, v6 = v0, v7 = v0, v8 = v0,
         v9 = v0, va = v0, vb = v0;
  __m512 v0f = v0, v1f = v0, v2f = v0, v3f = v0, v4f = v0, v5f = v0;
  double t = now(), ops = 12.0 * n;
  for (long i = 0; i < n; i++) {
    if (kind == 0) {
      TWELVE(FMA)
    } else if (kind == 1) {
      TWELVE(ADD)
    } else {
      MIX(v0); MIX(v1); MIX(v2); MIX(v3); MIX(v4); MIX(v5);
      __asm__ volatile("" : "+v"(v0f), "+v"(v1f), "+v"(v2f), "+v"(v3f), "+v"(v4f), "+v"(v5f));
    }
    KEEP;
  }
  t = now() - t;
  float keep[16];
  _mm512_storeu_ps(keep, _mm512_add_ps(_mm512_add_ps(v0, vb), v0f));
  return ops / t / 1e9 / ghz + keep[0] * 0.0;
}

int main(int argc, char **argv) {
  if (argc > 1) N = atoi(argv[1]) / 32 * 32;
  if (argc > 2) ROWS = atoi(argv[2]);
  size_t len = (size_t)N * ROWS;
  X = aligned_alloc(64, len * 4);
  OUT = aligned_alloc(64, len * 4);
  unsigned s = 1;
  for (size_t i = 0; i < len; i++) {
    s = s * 1103515245u + 12345u;
    X[i] = ((s >> 8) / 16777216.0f - 0.5f) * 34.6f; /* uniform, spread like N(0,1)·10 */
    OUT[i] = 1.0f;
  }
  double ghz = clock_ghz();
  printf("row of %d floats, %d rows for 'row'; clock %.2f GHz\n", N, ROWS, ghz);
  double times[VARIANTS][ROUNDS];
  volatile double sink = 0;
  for (int round = 0; round < ROUNDS; round++) {
    for (int mode = 0; mode < VARIANTS; mode++) {
      double elems = (double)N * (mode >= ROW ? ROWS : 1);
      int reps = (int)(4e6 / elems) + 1;
      double t = now();
      for (int r = 0; r < reps; r++) sink += run(mode);
      times[mode][round] = (now() - t) / reps / elems * 1e9;
    }
  }
  for (int mode = 0; mode < VARIANTS; mode++) {
    qsort(times[mode], ROUNDS, sizeof(double), cmp);
    double med = times[mode][ROUNDS / 2];
    printf("%-10s %.4f ns/el (best %.4f)  %5.2f cycles per 16\n", NAMES[mode], med,
           times[mode][0], med * ghz * 16);
  }
  printf("512-bit ops per cycle: FMA %.2f, add %.2f, FMA and add mixed %.2f\n", op_rate(0, ghz),
         op_rate(1, ghz), op_rate(2, ghz));
  return sink == 12345.678;
}
