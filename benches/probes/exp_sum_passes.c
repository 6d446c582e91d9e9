/* The exp-and-sum pass of softmax / logsumexp, written out in AVX2 intrinsics with parts taken
 * away or swapped, to find what bounds its speed on a machine (the README's "where smoothmax
 * loses" cites these figures). Not part of the library or its tests.
 *
 *   gcc -O2 -mavx2 -mfma benches/probes/exp_sum_passes.c -o /tmp/probe -lm && /tmp/probe
 *
 * Each variant sums e^{x - shift} over 64 rows of 1008 elements (in L1/L2) as the row kernels
 * do (rust/src/kernels/rows32.rs and rows64.rs: the shifted reduction from x, the polynomial,
 * 2^{K - K_m + 64} from the exponent bits, the sums), 4 vectors interleaved. Variants run in
 * interleaved rounds; printed: median and best ns per element over the rounds.
 *
 * float64 (rows64's rounded-sum pass):
 *   full       degree-13 Taylor polynomial (Estrin), Fast2Sum per lane: the shipped pass
 *   no-poly    the polynomial replaced by a constant (what everything else costs)
 *   no-f2s     plain sums instead of Fast2Sum
 *   table      e^x = 2^{K4/4}·e^r with a 4-entry table of 2^{j/4} (hi + lo, looked up by
 *              permutes) and a degree-9 polynomial on |r| <= ln2/8: 17 multiply/FMA operations
 *              per vector instead of 21
 * float32 (rows32's rounded-sum pass):
 *   full       degree-6 polynomial in f32, terms widened to f64 (vcvtps2pd) and summed there
 *   no-widen   terms summed in f32 (what the widening costs; not accurate enough to ship)
 *   bits       terms widened by integer operations, times 2^-896 (in-lane unpack + shift, the
 *              lanes come out as 0, 1, 4, 5 / 2, 3, 6, 7): what Simd::widen_scaled does on AVX2
 *   bits+perm  the same after a lane permute that restores lane order (no gain left)
 *   bits-zx    the same by zero-extension (vpmovzxdq, lane order; what AVX-512 does)
 */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NV 4
#define ROWS 64
#define N 1008 /* a multiple of 16 (f64 chunks) and of 32 (f32 blocks) */
#define MAGIC 6755399441055744.0
#define SCALE 18446744073709551616.0

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

#define S(x) _mm256_set1_pd(x)
#define SF(x) _mm256_set1_ps(x)

static const double H13[10] = {1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                               1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600,
                               1.0 / 6227020800.0};
static const double H9[6] = {1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                             1.0 / 362880};

static inline __m256d estrin10(__m256d x) {
  __m256d v0 = _mm256_fmadd_pd(S(H13[1]), x, S(H13[0]));
  __m256d v1 = _mm256_fmadd_pd(S(H13[3]), x, S(H13[2]));
  __m256d v2 = _mm256_fmadd_pd(S(H13[5]), x, S(H13[4]));
  __m256d v3 = _mm256_fmadd_pd(S(H13[7]), x, S(H13[6]));
  __m256d v4 = _mm256_fmadd_pd(S(H13[9]), x, S(H13[8]));
  __m256d p = _mm256_mul_pd(x, x);
  v0 = _mm256_fmadd_pd(v1, p, v0);
  v1 = _mm256_fmadd_pd(v3, p, v2);
  p = _mm256_mul_pd(p, p);
  v0 = _mm256_fmadd_pd(v1, p, v0);
  p = _mm256_mul_pd(p, p);
  return _mm256_fmadd_pd(v4, p, v0);
}

static inline __m256d estrin6(__m256d x) {
  __m256d v0 = _mm256_fmadd_pd(S(H9[1]), x, S(H9[0]));
  __m256d v1 = _mm256_fmadd_pd(S(H9[3]), x, S(H9[2]));
  __m256d v2 = _mm256_fmadd_pd(S(H9[5]), x, S(H9[4]));
  __m256d p = _mm256_mul_pd(x, x);
  v0 = _mm256_fmadd_pd(v1, p, v0);
  p = _mm256_mul_pd(p, p);
  return _mm256_fmadd_pd(v2, p, v0);
}

enum { F64_FULL, F64_NO_POLY, F64_NO_F2S, F64_TABLE };

/* Sum of 2^64·e^{x - K_m·ln2} over one row (K_m = round(m / ln 2)). */
static inline __attribute__((always_inline)) double pass64(const double *x, long n, double km,
                                                           int variant) {
  __m256d hi[NV], lo[NV];
  for (int j = 0; j < NV; j++) {
    hi[j] = S(4.0 * SCALE);
    lo[j] = S(0.0);
  }
  const double q = variant == F64_TABLE ? 4.0 : 1.0;
  const __m256d low = S((km - 1087) * 0.6931471805599453);
  const __m256d kmm = S(MAGIC + q * km), ksh = S(q * (km - 64 - 1023));
  const __m256 th = _mm256_castpd_ps(
      _mm256_setr_pd(1.0, 1.189207115002721, 1.4142135623730951, 1.681792830507429));
  const __m256 tl = _mm256_castpd_ps(_mm256_setr_pd(0.0, 3.982015231465646e-17,
                                                    -9.667293313452913e-17, 8.199010020581497e-17));
  const __m256i odd = _mm256_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1);
  const __m256i emask = _mm256_set1_epi64x(0x7FF0000000000000LL);
  for (long i = 0; i < n; i += 4 * NV) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) {
      __m256d v = _mm256_max_pd(low, _mm256_loadu_pd(x + i + 4 * j));
      __m256d k = _mm256_fmadd_pd(v, S(q * 1.4426950408889634), S(MAGIC));
      __m256d negk = _mm256_sub_pd(S(MAGIC), k);
      __m256d krel = _mm256_sub_pd(k, kmm);
      __m256d r1 = _mm256_fmadd_pd(negk, S(0.6931471805599453 / q), v);
      __m256d r = _mm256_fmadd_pd(krel, S(-2.3190468138462996e-17 / q), r1);
      __m256d y;
      if (variant == F64_TABLE) {
        __m256d p = _mm256_fmadd_pd(_mm256_fmadd_pd(estrin6(r), r, S(1.0 / 6)), r, S(0.5));
        __m256d t = _mm256_fmadd_pd(_mm256_mul_pd(r, r), p, r);
        __m256i idx = _mm256_or_si256(
            _mm256_slli_epi32(_mm256_shuffle_epi32(_mm256_castpd_si256(k), 0xA0), 1), odd);
        __m256d t_hi = _mm256_castps_pd(_mm256_permutevar8x32_ps(th, idx));
        __m256d t_lo = _mm256_castps_pd(_mm256_permutevar8x32_ps(tl, idx));
        __m256d pow = _mm256_castsi256_pd(_mm256_and_si256(
            _mm256_slli_epi64(_mm256_castpd_si256(_mm256_sub_pd(k, ksh)), 50), emask));
        y = _mm256_mul_pd(_mm256_add_pd(t_hi, _mm256_fmadd_pd(t_hi, t, t_lo)), pow);
      } else {
        __m256d p = variant == F64_NO_POLY
                        ? S(0.5)
                        : _mm256_fmadd_pd(_mm256_fmadd_pd(estrin10(r), r, S(1.0 / 6)), r, S(0.5));
        __m256d t = _mm256_fmadd_pd(_mm256_mul_pd(r, r), p, r);
        __m256d pow = _mm256_castsi256_pd(
            _mm256_slli_epi64(_mm256_castpd_si256(_mm256_sub_pd(k, ksh)), 52));
        y = _mm256_fmadd_pd(t, pow, pow);
      }
      __m256d s = _mm256_add_pd(hi[j], y);
      if (variant != F64_NO_F2S)
        lo[j] = _mm256_add_pd(lo[j], _mm256_sub_pd(y, _mm256_sub_pd(s, hi[j])));
      hi[j] = s;
    }
  }
  double o[4], acc = 0;
  for (int j = 0; j < NV; j++) {
    _mm256_storeu_pd(o, _mm256_add_pd(_mm256_sub_pd(hi[j], S(4.0 * SCALE)), lo[j]));
    acc += o[0] + o[1] + o[2] + o[3];
  }
  return acc;
}

enum { F32_FULL, F32_NO_WIDEN, F32_BITS, F32_BITS_PERM, F32_BITS_ZX };

/* rows32's rounded-sum pass: degree-6 polynomial in f32, terms widened to f64. */
static inline __attribute__((always_inline)) double pass32(const float *x, long n, float m,
                                                           int variant) {
  const __m256 log2e = SF(1.44269504f), magic = SF(12582912.0f);
  const __m256 nln2hi = SF(-0.693145752f), nln2lo = SF(1.904654e-9f);
  const __m256 p0 = SF(0.0013751407f), p1 = SF(0.008368916f), p2 = SF(0.041669533f),
               p3 = SF(0.16666518f), p4 = SF(0.49999988f);
  float km = rintf(m * 1.44269504f);
  const __m256 kmm = SF(12582912.0f + km), low = SF((km - 191) * 0.6931472f);
  const __m256i bias = _mm256_set1_epi32(191 - (int)km);
  __m256d acc[4];
  __m256 acc32[2];
  for (int j = 0; j < 4; j++) acc[j] = _mm256_setzero_pd();
  acc32[0] = acc32[1] = _mm256_setzero_ps();
  for (long i = 0; i < n; i += 8 * NV) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) {
      __m256 v = _mm256_max_ps(low, _mm256_loadu_ps(x + i + 8 * j));
      __m256 kmg = _mm256_fmadd_ps(v, log2e, magic);
      __m256 k = _mm256_sub_ps(kmg, magic), kr = _mm256_sub_ps(kmg, kmm);
      __m256 r = _mm256_fmadd_ps(kr, nln2lo, _mm256_fmadd_ps(k, nln2hi, v));
      __m256 r2 = _mm256_mul_ps(r, r);
      __m256 hi = _mm256_fmadd_ps(p0, r2, _mm256_fmadd_ps(p1, r, p2));
      __m256 p = _mm256_fmadd_ps(hi, r2, _mm256_fmadd_ps(p3, r, p4));
      __m256 t = _mm256_fmadd_ps(r2, p, r);
      __m256 pw = _mm256_castsi256_ps(
          _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(kmg), bias), 23));
      __m256 y = _mm256_fmadd_ps(t, pw, pw);
      if (variant == F32_NO_WIDEN) {
        acc32[j % 2] = _mm256_add_ps(acc32[j % 2], y);
      } else if (variant == F32_BITS_ZX) {
        __m256i b = _mm256_castps_si256(y);
        __m256d lo4 = _mm256_castsi256_pd(
            _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(b)), 29));
        __m256d hi4 = _mm256_castsi256_pd(
            _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(b, 1)), 29));
        acc[2 * (j % 2)] = _mm256_add_pd(acc[2 * (j % 2)], lo4);
        acc[2 * (j % 2) + 1] = _mm256_add_pd(acc[2 * (j % 2) + 1], hi4);
      } else if (variant == F32_BITS || variant == F32_BITS_PERM) {
        __m256i b = _mm256_castps_si256(y);
        if (variant == F32_BITS_PERM) b = _mm256_permute4x64_epi64(b, 0xD8);
        __m256i z = _mm256_setzero_si256();
        __m256d lo4 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_unpacklo_epi32(b, z), 29));
        __m256d hi4 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_unpackhi_epi32(b, z), 29));
        acc[2 * (j % 2)] = _mm256_add_pd(acc[2 * (j % 2)], lo4);
        acc[2 * (j % 2) + 1] = _mm256_add_pd(acc[2 * (j % 2) + 1], hi4);
      } else {
        acc[2 * (j % 2)] = _mm256_add_pd(acc[2 * (j % 2)], _mm256_cvtps_pd(_mm256_castps256_ps128(y)));
        acc[2 * (j % 2) + 1] =
            _mm256_add_pd(acc[2 * (j % 2) + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)));
      }
    }
  }
  __m256d s = _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3]));
  __m256 a32 = _mm256_add_ps(acc32[0], acc32[1]);
  s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_castps256_ps128(a32)));
  s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_extractf128_ps(a32, 1)));
  double o[4];
  _mm256_storeu_pd(o, s);
  return o[0] + o[1] + o[2] + o[3];
}

/* One function per variant, so that each is compiled with its variant constant. */
static double v64_full(const void *x, double m) { return pass64(x, N, m, F64_FULL); }
static double v64_no_poly(const void *x, double m) { return pass64(x, N, m, F64_NO_POLY); }
static double v64_no_f2s(const void *x, double m) { return pass64(x, N, m, F64_NO_F2S); }
static double v64_table(const void *x, double m) { return pass64(x, N, m, F64_TABLE); }
static double v32_full(const void *x, double m) { return pass32(x, N, (float)m, F32_FULL); }
static double v32_no_widen(const void *x, double m) { return pass32(x, N, (float)m, F32_NO_WIDEN); }
static double v32_bits(const void *x, double m) { return pass32(x, N, (float)m, F32_BITS) * 0x1p896; }
static double v32_bits_zx(const void *x, double m) {
  return pass32(x, N, (float)m, F32_BITS_ZX) * 0x1p896;
}
static double v32_bits_perm(const void *x, double m) {
  return pass32(x, N, (float)m, F32_BITS_PERM) * 0x1p896;
}

typedef struct {
  const char *name;
  double (*fn)(const void *, double);
  int f64;
} Variant;

static int cmp(const void *a, const void *b) {
  double d = *(const double *)a - *(const double *)b;
  return (d > 0) - (d < 0);
}

int main(void) {
  const Variant variants[] = {
      {"float64 full", v64_full, 1},         {"float64 no-poly", v64_no_poly, 1},
      {"float64 no-f2s", v64_no_f2s, 1},     {"float64 table", v64_table, 1},
      {"float32 full", v32_full, 0},         {"float32 no-widen", v32_no_widen, 0},
      {"float32 bits", v32_bits, 0},         {"float32 bits+perm", v32_bits_perm, 0},
      {"float32 bits-zx", v32_bits_zx, 0},
  };
  enum { NVAR = sizeof variants / sizeof variants[0], ROUNDS = 41, REPS = 20 };
  double *x64 = aligned_alloc(64, sizeof(double) * ROWS * N);
  float *x32 = aligned_alloc(64, sizeof(float) * ROWS * N);
  srand(1);
  double m64 = -INFINITY;
  float m32 = -INFINITY;
  for (long i = 0; i < (long)ROWS * N; i++) {
    x64[i] = ((rand() / (double)RAND_MAX) - 0.5) * 60.0; /* like N(0,1)·10: a spread of ~60 */
    x32[i] = (float)x64[i];
    if (x64[i] > m64) m64 = x64[i];
    if (x32[i] > m32) m32 = x32[i];
  }
  double km64 = rint(m64 / 0.6931471805599453);
  double times[NVAR][ROUNDS], check[NVAR];
  for (int r = 0; r < ROUNDS; r++) {
    for (int v = 0; v < NVAR; v++) {
      double sum = 0, t0 = now();
      for (int k = 0; k < REPS; k++)
        for (int row = 0; row < ROWS; row++)
          sum += variants[v].f64 ? variants[v].fn(x64 + (long)row * N, km64)
                                 : variants[v].fn(x32 + (long)row * N, m32);
      times[v][r] = (now() - t0) / ((double)REPS * ROWS * N) * 1e9;
      check[v] = sum;
    }
  }
  printf("%-18s %10s %10s   (sum of the last round, to keep the work)\n", "variant",
         "median ns", "best ns");
  for (int v = 0; v < NVAR; v++) {
    qsort(times[v], ROUNDS, sizeof(double), cmp);
    printf("%-18s %10.3f %10.3f   %.6g\n", variants[v].name, times[v][ROUNDS / 2], times[v][0],
           check[v]);
  }
  return 0;
}
