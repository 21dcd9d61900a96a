/*
 * adolc_w2.cpp - W2 peer: ADOL-C 2.7 (Debian libadolc-dev) on the scalar-tape
 * workload of the tapegrad benchmark, plus the plain-C and hand-written
 * gradient baselines that the W2 ratios are taken against.
 *
 *   f(x) = sum_{i<n-1} ( x_i * x_{i+1} + sin(x_i) * exp(-x_{i+1}) ),  n = 1,000,000
 *   inputs x_i = cos(0.37 * i)  (the same in torch_w2.py)
 *
 * Usage: adolc_w2 [N] [REPS]        (defaults 1000000 and 3; medians over REPS)
 *
 * Timed as every tool in the benchmark: each figure is a median over REPS
 * repetitions that follow a first (cold) one; the process's first taping +
 * gradient (default buffers) is reported apart as first_adolc_ms.
 * Figures (all medians over REPS, milliseconds):
 *  plain_ms    f in plain double C (noinline, result stored to a volatile).
 *  hand_ms     hand-written gradient: f and df/dx in one pass (sin, cos and exp
 *              once per term).
 *  tape_ms     ADOL-C taping: trace_on(tag) .. new adouble[n], x_i <<= ..., the
 *              sum, y >>= f, delete[], trace_off().
 *  grad_ms     gradient(tag, n, x, g): ADOL-C's driver, a zero-order forward
 *              sweep over the tape (recomputing the values) + first-order reverse.
 *  adolc_ms    tape_ms + grad_ms (the ADOL-C cost of one gradient from scratch).
 *              Two buffer configurations are measured and the faster one is
 *              reported (buffers=default|incore): ADOL-C's default buffer sizes
 *              (the tape spills into ADOLC-*.tap files in the current directory,
 *              removed at exit) and buffers sized from n so that the whole tape
 *              stays in core; the other one's sum is reported as adolc_other_ms.
 *  tape_keep_ms, reverse_ms: the alternative that keeps the Taylor values while
 *              taping (trace_on(tag, 1), in-core buffers) and then runs only
 *              fos_reverse: the record time and the pure reverse-sweep time.
 *  ops, locs, vals, taylors: tapestats counts (operations, location indices,
 *              constant values, Taylor stack entries); tape_bytes =
 *              ops*1 + locs*sizeof(locint) + vals*8; bytes_per_op = tape_bytes/ops;
 *              keep_bytes_per_op additionally counts the 8-byte Taylor values.
 *  peak_rss_mb after the plain, hand and default-buffer tape+gradient runs;
 *              peak_rss_incore_mb at the end (after the in-core and keep runs).
 *  max_err     max |g_adolc - g_hand| as a check.
 *
 * Output, one line:
 * peer=adolc workload=W2 n=1000000 reps=3 f=... plain_ms=... hand_ms=...
 *   tape_ms=... grad_ms=... adolc_ms=... first_adolc_ms=... buffers=default adolc_other_ms=...
 *   tape_keep_ms=... reverse_ms=...
 *   ops=... locs=... vals=... taylors=... tape_bytes=... bytes_per_op=...
 *   keep_bytes_per_op=... max_err=... peak_rss_mb=... peak_rss_incore_mb=... adolc=2.7.2
 */
#include <adolc/adolc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/resource.h>
#include <vector>

#ifndef ADOLC_VER /* no version macro in the headers: run_peers.sh passes dpkg's */
#define ADOLC_VER "2.7"
#endif

static double now()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t k = v.size();
    return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

static double peak_rss_mb()
{
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

__attribute__((noinline)) static double f_plain(const double *x, long n)
{
    double s = 0.0;
    for (long i = 0; i < n - 1; i++)
        s += x[i] * x[i + 1] + std::sin(x[i]) * std::exp(-x[i + 1]);
    return s;
}

/* f and its gradient in one pass: term i contributes x_{i+1} + cos(x_i) e_i to
 * g_i and x_i - sin(x_i) e_i to g_{i+1}, with e_i = exp(-x_{i+1}). */
__attribute__((noinline)) static double grad_hand(const double *x, double *g, long n)
{
    double s = 0.0, carry = 0.0;
    for (long i = 0; i < n - 1; i++) {
        double si = std::sin(x[i]), ci = std::cos(x[i]), e = std::exp(-x[i + 1]);
        s += x[i] * x[i + 1] + si * e;
        g[i] = carry + x[i + 1] + ci * e;
        carry = x[i] - si * e;
    }
    g[n - 1] = carry;
    return s;
}

static double tape_f(short tag, int keep, int incore, const double *x, long n)
{
    if (incore) {
        /* per term: 10 operations, 21 locations, 12 Taylor entries (measured) */
        unsigned obs = (unsigned)(11 * n + 4096), lbs = (unsigned)(22 * n + 4096);
        unsigned vbs = 4096, tbs = (unsigned)(13 * n + 4096);
        trace_on(tag, keep, obs, lbs, vbs, tbs);
    } else {
        trace_on(tag, keep);
    }
    adouble *ax = new adouble[n];
    for (long i = 0; i < n; i++)
        ax[i] <<= x[i];
    adouble y = 0.0;
    for (long i = 0; i < n - 1; i++)
        y += ax[i] * ax[i + 1] + sin(ax[i]) * exp(-ax[i + 1]);
    double fy;
    y >>= fy;
    delete[] ax;
    trace_off();
    return fy;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 2 || reps < 1) {
        fprintf(stderr, "usage: %s [N>=2] [REPS>=1]\n", argv[0]);
        return 2;
    }
    std::vector<double> x(n), g_hand(n), g_ad(n);
    for (long i = 0; i < n; i++)
        x[i] = std::cos(0.37 * (double)i);

    volatile double sink = 0.0;
    std::vector<double> t_plain, t_hand, t_tape[2], t_grad[2], t_tape_keep, t_rev;

    for (int r = 0; r <= reps; r++) { /* r == 0 warms up */
        double t0 = now();
        sink = f_plain(x.data(), n);
        double t1 = now();
        sink = grad_hand(x.data(), g_hand.data(), n);
        double t2 = now();
        if (r) {
            t_plain.push_back(t1 - t0);
            t_hand.push_back(t2 - t1);
        }
    }
    double f_ref = f_plain(x.data(), n);

    const short tag = 1;
    double f_ad = 0.0, rss_main = 0.0, first_ms = 0.0;
    size_t st[STAT_SIZE];
    for (int incore = 0; incore < 2; incore++) {
        for (int r = 0; r <= reps; r++) { /* r == 0 is the cold one */
            double t0 = now();
            f_ad = tape_f(tag, 0, incore, x.data(), n);
            double t1 = now();
            gradient(tag, (int)n, x.data(), g_ad.data());
            double t2 = now();
            if (!r && !incore)
                first_ms = 1e3 * (t2 - t0);
            if (!r)
                continue;
            t_tape[incore].push_back(t1 - t0);
            t_grad[incore].push_back(t2 - t1);
        }
        if (!incore) {
            rss_main = peak_rss_mb();
            tapestats(tag, st);
        }
    }

    double max_err = 0.0;
    for (long i = 0; i < n; i++)
        max_err = std::max(max_err, std::fabs(g_ad[i] - g_hand[i]));
    for (long i = 0; i < n; i++)
        g_ad[i] = 0.0;

    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        tape_f(tag, 1, 1, x.data(), n);
        double t1 = now();
        double u = 1.0;
        fos_reverse(tag, 1, (int)n, &u, g_ad.data());
        double t2 = now();
        if (r) {
            t_tape_keep.push_back(t1 - t0);
            t_rev.push_back(t2 - t1);
        }
    }
    for (long i = 0; i < n; i++)
        max_err = std::max(max_err, std::fabs(g_ad[i] - g_hand[i]));

    double ops = (double)st[NUM_OPERATIONS], locs = (double)st[NUM_LOCATIONS];
    double vals = (double)st[NUM_VALUES], tay = (double)st[TAY_STACK_SIZE];
    double tape_bytes = ops + locs * sizeof(locint) + vals * 8.0;
    double sum0 = median(t_tape[0]) + median(t_grad[0]);
    double sum1 = median(t_tape[1]) + median(t_grad[1]);
    int best = sum1 < sum0;
    double tape_ms = 1e3 * median(t_tape[best]), grad_ms = 1e3 * median(t_grad[best]);
    printf("peer=adolc workload=W2 n=%ld reps=%d f=%.17g f_check=%.3g plain_ms=%.6g hand_ms=%.6g "
           "tape_ms=%.6g grad_ms=%.6g adolc_ms=%.6g first_adolc_ms=%.6g buffers=%s adolc_other_ms=%.6g tape_keep_ms=%.6g reverse_ms=%.6g "
           "ops=%.0f locs=%.0f vals=%.0f taylors=%.0f tape_bytes=%.0f bytes_per_op=%.4g "
           "keep_bytes_per_op=%.4g max_err=%.3g peak_rss_mb=%.6g peak_rss_incore_mb=%.6g adolc=%s\n",
           n, reps, f_ad, std::fabs(f_ad - f_ref), 1e3 * median(t_plain), 1e3 * median(t_hand),
           tape_ms, grad_ms, tape_ms + grad_ms, first_ms, best ? "incore" : "default",
           1e3 * (best ? sum0 : sum1), 1e3 * median(t_tape_keep), 1e3 * median(t_rev),
           ops, locs, vals, tay, tape_bytes, tape_bytes / ops, (tape_bytes + 8.0 * tay) / ops,
           max_err, rss_main, peak_rss_mb(), ADOLC_VER);
    (void)sink;
    removeTape(tag, ADOLC_REMOVE_COMPLETELY); /* also deletes spilled tape files */
    return 0;
}
