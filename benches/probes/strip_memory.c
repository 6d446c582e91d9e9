/* What the memory system allows a softmax along axis 0 of a float32 (1000, 4096) array, whose
 * strips (rust/src/kernels/strips32.rs: 256 columns, 1 KB per row, rows 16 KB apart) are read
 * three times and written once. Not part of the library or its tests.
 *
 *   gcc -O2 -mavx512f benches/probes/strip_memory.c -o /tmp/strip_memory && /tmp/strip_memory
 *
 * NumPy asks for 2 MB pages for large arrays (the machine's THP setting is "madvise"); the
 * probe's buffers are allocated the same way.
 *
 * A. Whether a strip stays in the caches between its passes: the time per 64-byte line to
 *    re-read (sum) a strip of R rows of 1 KB, rows 16 KB apart, against the same bytes packed
 *    contiguously (what copying the strip into a buffer in its first pass would give the
 *    others). Measured: alike up to 512 rows (0.9–1.1 ns a line), 1.26 against 0.92 ns at 1000
 *    rows, so a copy has little to win.
 * B. The write pass: out = x * c over the whole array, by strips of W columns (rows of each
 *    strip in turn, the out rows asked for 8 rows ahead), against one pass in row order
 *    (W = 4096). Measured: 0.6–1.05 ms whole rows, 1.3–1.9 ms by strips of 256 columns (the
 *    narrow strips' width) and slower still narrower: writing runs of 1 KB a row stride apart
 *    costs the memory system 1.3–2.2× as much as writing whole rows, which is why softmax's
 *    narrow strips leave their writes to one pass over whole rows (strips32::write_rows).
 * Printed: medians over 15 passes (A: after one warm pass; B: ms per pass over 16 MB).
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define ROWS 1000
#define COLS 4096
#define PASSES 15

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, by_value);
    return v[n / 2];
}

static float *huge_alloc(size_t bytes) {
    float *p = aligned_alloc(1 << 21, bytes);
    if (!p) {
        perror("aligned_alloc");
        exit(1);
    }
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

/* Sum a strip of `rows` rows of 256 floats, `stride` floats apart. */
static float sum_strip(const float *x, int rows, size_t stride) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int i = 0; i < rows; i++) {
        const float *r = x + i * stride;
        for (int c = 0; c < 256; c += 64)
            for (int k = 0; k < 4; k++)
                acc[k] = _mm512_add_ps(acc[k], _mm512_loadu_ps(r + c + 16 * k));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]),
                                              _mm512_add_ps(acc[2], acc[3])));
}

/* out = x * c by strips of w columns, out rows asked for 8 rows ahead. */
static void write_pass(const float *x, float *out, int w) {
    const __m512 c = _mm512_set1_ps(1.0001f);
    for (int c0 = 0; c0 < COLS; c0 += w)
        for (int i = 0; i < ROWS; i++) {
            if (i + 8 < ROWS)
                for (int b = 0; b < w * 4; b += 64)
                    _mm_prefetch((const char *)(out + (size_t)(i + 8) * COLS + c0) + b,
                                 _MM_HINT_T0);
            const float *s = x + (size_t)i * COLS + c0;
            float *d = out + (size_t)i * COLS + c0;
            for (int k = 0; k < w; k += 16)
                _mm512_storeu_ps(d + k, _mm512_mul_ps(_mm512_loadu_ps(s + k), c));
        }
}

int main(void) {
    size_t bytes = (size_t)ROWS * COLS * sizeof(float);
    float *x = huge_alloc(bytes), *out = huge_alloc(bytes), *packed = huge_alloc(bytes);
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++) x[i] = packed[i] = out[i] = (float)(i % 7);
    volatile float sink = 0;
    double t[PASSES];

    printf("A. re-read a strip of R rows of 1 KB: ns per line\n");
    printf("%6s %14s %14s\n", "R", "16 KB apart", "contiguous");
    int rows[] = {16, 32, 64, 96, 128, 256, 512, 1000};
    for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
        int r = rows[k];
        double ns[2];
        for (int layout = 0; layout < 2; layout++) {
            const float *base = layout == 0 ? x : packed;
            size_t stride = layout == 0 ? COLS : 256;
            sink += sum_strip(base, r, stride);
            for (int p = 0; p < PASSES; p++) {
                double t0 = now();
                sink += sum_strip(base, r, stride);
                t[p] = now() - t0;
            }
            ns[layout] = median(t, PASSES) * 1e9 / (r * 16.0);
        }
        printf("%6d %14.2f %14.2f\n", r, ns[0], ns[1]);
    }

    printf("\nB. out = x * c over (%d, %d) by strips of W columns: ms per pass\n", ROWS, COLS);
    int widths[] = {4096, 1024, 256, 128, 64};
    for (int round = 0; round < 2; round++)
        for (size_t k = 0; k < sizeof widths / sizeof *widths; k++) {
            write_pass(x, out, widths[k]);
            for (int p = 0; p < PASSES; p++) {
                double t0 = now();
                write_pass(x, out, widths[k]);
                t[p] = now() - t0;
            }
            printf("round %d  W = %4d  %.3f ms\n", round, widths[k], median(t, PASSES) * 1e3);
        }
    return sink == 12345.0f;
}
