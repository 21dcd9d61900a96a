/*
 * sgemm_limit.c - the "limit" row of the tapegrad W1/W3 benchmark.
 *
 * Measures the OpenBLAS cblas_sgemm time of the matrix products of one
 * training step of a dense sigmoid/relu MLP and reports the samples/s that
 * this GEMM time alone would allow.  For layer sizes n0-n1-...-nL and batch B:
 *   forward       A_{l-1}[B,n_{l-1}] . W_l[n_{l-1},n_l]       (l = 1..L)
 *   weight grads  A_{l-1}^T . D_l  -> [n_{l-1}, n_l]          (l = 1..L)
 *   input grads   D_l[B,n_l] . W_l^T -> [B, n_{l-1}]          (l = 2..L;
 *                 layer 1 needs no input gradient)
 * For 784-100-10 these are the five products X.W1, A1.W2, X^T.D1, A1^T.D2 and
 * D2.W2^T: 2*(784*100 + 100*10 + 784*100 + 100*10 + 10*100) = 319,600 flops
 * per sample.  Transposed operands are passed as CblasTrans, never copied.
 *
 * One repetition walks an "epoch": the X operand of step k is rows
 * [k*B, (k+1)*B) of a 60000 x n0 float32 matrix (as a pre-shuffled data set
 * would be), so the cost of streaming the inputs from memory is included;
 * a last partial batch is dropped.  The other operands are per-step buffers
 * reused across steps (as any framework would).  Reported: the median over
 * repetitions of (GEMM time per step), samples_per_s = B / that median, and
 * the achieved GFLOP/s; a first (cold) repetition runs before them and is
 * reported apart as first_samples_per_s, as every tool's first epoch is.
 *
 * Usage: sgemm_limit BATCH [REPS] [SIZES] [MAXSTEPS]
 *        SIZES default "784,100,10"; MAXSTEPS caps the steps of one repetition
 *        (default: a whole epoch, 60000/BATCH), e.g.
 *        sgemm_limit 1024 3 784,1024,1024,10 10   (the W3 shapes, 10 steps/rep)
 * Threads: OPENBLAS_NUM_THREADS; kernel: OPENBLAS_CORETYPE (both from env).
 *
 * Output, one line:
 * peer=sgemm workload=W1 batch=10 sizes=784,100,10 flops_per_sample=319600
 *   reps=5 steps=6000 step_us=... samples_per_s=... first_samples_per_s=... gflops=...
 *   corename=Haswell blas_threads=1
 * (workload=W3 when more than one hidden layer.)
 */
#define _POSIX_C_SOURCE 200112L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *openblas_get_corename(void);
int openblas_get_num_threads(void);

#define MAXL 8
#define NDATA 60000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;
static float frand(void)
{
    /* xorshift64*, mapped to [-0.5, 0.5) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    unsigned long long r = rng_state * 2685821657736338717ULL;
    return (float)((r >> 40) * (1.0 / 16777216.0)) - 0.5f;
}

static float *alloc_fill(size_t n)
{
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, n * sizeof(float) + 64) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BATCH [REPS] [SIZES] [MAXSTEPS]\n", argv[0]);
        return 2;
    }
    int B = atoi(argv[1]);
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    const char *sizes_s = argc > 3 ? argv[3] : "784,100,10";
    int n[MAXL + 1], L = -1;
    {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", sizes_s);
        for (char *tok = strtok(buf, ","); tok && L < MAXL; tok = strtok(NULL, ","))
            n[++L] = atoi(tok);
    }
    if (B <= 0 || L < 1 || reps < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    int steps = NDATA / B;
    if (argc > 4 && atoi(argv[4]) > 0 && atoi(argv[4]) < steps)
        steps = atoi(argv[4]);
    if (steps < 1)
        steps = 1;

    float *X = alloc_fill((size_t)steps * B * n[0]);
    float *W[MAXL + 1], *A[MAXL + 1], *D[MAXL + 1], *G[MAXL + 1], *DA[MAXL + 1];
    for (int l = 1; l <= L; l++) {
        W[l] = alloc_fill((size_t)n[l - 1] * n[l]);
        A[l] = alloc_fill((size_t)B * n[l]);   /* activations of layer l */
        D[l] = alloc_fill((size_t)B * n[l]);   /* dC/dz of layer l */
        G[l] = alloc_fill((size_t)n[l - 1] * n[l]);
        DA[l] = alloc_fill((size_t)B * n[l - 1]); /* dC/dA_{l-1} */
    }
    double flops = 0;
    for (int l = 1; l <= L; l++)
        flops += 2.0 * n[l - 1] * n[l] * (l == 1 ? 2 : 3);

    double *per_step = malloc(sizeof(double) * (reps + 1)), first = 0;
    for (int r = -1; r < reps; r++) { /* r = -1 is a warm-up repetition */
        double t0 = now();
        for (int s = 0; s < steps; s++) {
            const float *x = X + (size_t)s * B * n[0];
            for (int l = 1; l <= L; l++) {
                const float *in = l == 1 ? x : A[l - 1];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n[l], n[l - 1],
                            1.0f, in, n[l - 1], W[l], n[l], 0.0f, A[l], n[l]);
            }
            for (int l = L; l >= 1; l--) {
                const float *in = l == 1 ? x : A[l - 1];
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n[l - 1], n[l], B,
                            1.0f, in, n[l - 1], D[l], n[l], 0.0f, G[l], n[l]);
                if (l > 1)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n[l - 1], n[l],
                                1.0f, D[l], n[l], W[l], n[l], 0.0f, DA[l], n[l - 1]);
            }
        }
        double t = now() - t0;
        if (r >= 0)
            per_step[r] = t / steps;
        else
            first = t / steps;
    }
    qsort(per_step, reps, sizeof(double), cmp_double);
    double med = reps % 2 ? per_step[reps / 2] : 0.5 * (per_step[reps / 2 - 1] + per_step[reps / 2]);

    /* keep the results observable */
    volatile float sink = G[1][0] + DA[L][0] + A[L][0];
    (void)sink;

    printf("peer=sgemm workload=%s batch=%d sizes=%s flops_per_sample=%.0f reps=%d steps=%d "
           "step_us=%.6g samples_per_s=%.6g first_samples_per_s=%.6g gflops=%.6g corename=%s "
           "blas_threads=%d\n",
           L > 2 ? "W3" : "W1", B, sizes_s, flops, reps, steps, med * 1e6, B / med, B / first,
           flops * B / med * 1e-9, openblas_get_corename(), openblas_get_num_threads());
    return 0;
}
