/*
 * S2: a Jacobian of GradBench's ba shape (21 cameras of 11 parameters,
 * 11,315 points, 36,455 observations: 109,365 rows, 70,631 columns, 15
 * nonzeros in each reprojection row) through tg_sparse, against the
 * objective. The residuals are vectorised over the observations (cameras
 * and points gathered by index_select): a small-angle rotation about the
 * camera centre, the perspective division, a radial distortion k1 r^2 +
 * k2 r^4, a focal length, each weighted; and the weights' own residuals
 * 1 - w^2. The structure (which parameters each row reads) is the ba
 * problem's; the camera model is shortened. Prints the median times of
 * the objective (recorded afresh and replayed) and of one tg_sparse_eval,
 * the colours and the nonzeros.
 *   usage: ba_jacobian [REPS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <tapegrad.h>
#include <tapegrad/sparse.h>

#include "bench.h"

enum { CAMS = 21, PTS = 11315, OBS = 36455, CP = 11 };
static unsigned long long seed = 5;
static double uniform(void) { return (double)(bench_next(&seed) >> 11) * 0x1p-53 - 0.5; }

static int64_t cam_of[OBS], pt_of[OBS];
static double *feat;

/* Column k of a [OBS, m] node as [OBS, 1]. */
static tg_node *col(tg_node *x, int k) { return tg_slice(x, 1, k, 1); }

/* The residuals [2 OBS + OBS] from cameras [CAMS, 11], points [PTS, 3],
 * weights [OBS]. */
static tg_node *residuals(tg_tape *t, tg_node *cams, tg_node *pts, tg_node *w) {
    tg_node *c = tg_index_select(cams, 0, cam_of, OBS), *x = tg_index_select(pts, 0, pt_of, OBS);
    tg_node *r[3], *p[3], *q[3];
    for (int i = 0; i < 3; i++) {
        r[i] = col(c, i);
        p[i] = tg_sub(col(x, i), col(c, 3 + i)); /* the point from the centre */
    }
    for (int i = 0; i < 3; i++) { /* p + r x p */
        int j = (i + 1) % 3, k = (i + 2) % 3;
        q[i] = tg_add(p[i], tg_sub(tg_mul(r[j], p[k]), tg_mul(r[k], p[j])));
    }
    tg_node *u = tg_neg(tg_div(q[0], q[2])), *v = tg_neg(tg_div(q[1], q[2]));
    tg_node *rr = tg_add(tg_square(u), tg_square(v));
    tg_node *d = tg_add(tg_const(t, 1), tg_mul(rr, tg_add(col(c, 7), tg_mul(col(c, 8), rr))));
    tg_node *f = tg_mul(col(c, 6), d), *wk = tg_reshape(w, 2, (int64_t[]){OBS, 1});
    int64_t fs[2] = {OBS, 1};
    tg_node *fu = tg_input(t, TG_F64, 2, fs, feat), *fv = tg_input(t, TG_F64, 2, fs, feat + OBS);
    tg_node *eu = tg_mul(wk, tg_sub(tg_mul(f, u), fu)), *ev = tg_mul(wk, tg_sub(tg_mul(f, v), fv));
    tg_node *ew = tg_sub(tg_const(t, 1), tg_square(wk));
    return tg_concat(3, (tg_node *[]){eu, ev, ew}, 0);
}

static volatile double sink;

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 9;
    if (reps < 1) reps = 1;
    double *cam = malloc(CAMS * CP * sizeof *cam), *pt = malloc(PTS * 3 * sizeof *pt);
    double *wv = malloc(OBS * sizeof *wv);
    feat = malloc(2 * OBS * sizeof *feat);
    if (!cam || !pt || !wv || !feat) return 1;
    for (int i = 0; i < CAMS * CP; i++) cam[i] = 0.1 * uniform();
    for (int i = 0; i < CAMS; i++) cam[i * CP + 5] = -10, cam[i * CP + 6] = 1 + uniform();
    for (int i = 0; i < PTS * 3; i++) pt[i] = uniform();
    for (int i = 0; i < OBS; i++) {
        wv[i] = 1 + 0.1 * uniform();
        cam_of[i] = (int64_t)(bench_next(&seed) % CAMS);
        pt_of[i] = i < PTS ? i : (int64_t)(bench_next(&seed) % PTS);
    }
    for (int i = 0; i < 2 * OBS; i++) feat[i] = uniform();
    double *rec = malloc((size_t)reps * sizeof *rec), *rep = malloc((size_t)reps * sizeof *rep);
    double *jac = malloc((size_t)reps * sizeof *jac);
    if (!rec || !rep || !jac) return 1;
    tg_tape *t = tg_tape_new();
    for (int k = -1; k < reps; k++) { /* the objective recorded afresh */
        tg_tape_reset(t);
        double t0 = bench_now();
        tg_node *e = residuals(t, tg_tensor(t, TG_F64, 2, (int64_t[]){CAMS, CP}, cam),
                               tg_tensor(t, TG_F64, 2, (int64_t[]){PTS, 3}, pt),
                               tg_tensor(t, TG_F64, 1, (int64_t[]){OBS}, wv));
        sink += tg_value_at(e, 0);
        if (k >= 0) rec[k] = bench_now() - t0;
    }
    tg_tape_reset(t);
    tg_node *in[3] = {tg_tensor(t, TG_F64, 2, (int64_t[]){CAMS, CP}, cam),
                      tg_tensor(t, TG_F64, 2, (int64_t[]){PTS, 3}, pt),
                      tg_tensor(t, TG_F64, 1, (int64_t[]){OBS}, wv)};
    tg_node *e = residuals(t, in[0], in[1], in[2]);
    tg_mark m = tg_tape_mark(t);
    for (int k = -1; k < reps; k++) { /* the objective replayed */
        double t0 = bench_now();
        tg_forward(t);
        if (k >= 0) rep[k] = bench_now() - t0;
    }
    double t0 = bench_now();
    tg_sparse *sp;
    if (tg_sparse_jacobian_new(e, 3, in, &sp)) {
        fprintf(stderr, "ba_jacobian: %s\n", tg_status_message(t));
        return 1;
    }
    double made = bench_now() - t0;
    tg_sparse_info info;
    tg_sparse_info_get(sp, &info);
    double *values = malloc((size_t)info.nnz * sizeof *values);
    if (!values) return 1;
    for (int k = -1; k < reps; k++) {
        t0 = bench_now();
        tg_sparse_eval(sp, values);
        if (k >= 0) jac[k] = bench_now() - t0;
        sink += values[0];
    }
    double mr = bench_median(rec, reps), mp = bench_median(rep, reps), mj = bench_median(jac, reps);
    printf("tool=tapegrad workload=S2_ba rows=%lld cols=%lld nnz=%lld colours=%d "
           "objective_recorded_ms=%.2f objective_replayed_ms=%.2f jacobian_ms=%.2f "
           "jacobian_over_recorded=%.1f jacobian_over_replayed=%.1f made_ms=%.0f reps=%d\n",
           (long long)info.rows, (long long)info.cols, (long long)info.nnz, (int)info.colors,
           1e3 * mr, 1e3 * mp, 1e3 * mj, mj / mr, mj / mp, 1e3 * made, reps);
    int bad = tg_status(t) != TG_OK;
    (void)m;
    tg_sparse_free(sp);
    tg_tape_free(t);
    free(cam), free(pt), free(wv), free(feat), free(rec), free(rep), free(jac), free(values);
    return bad || sink != sink;
}
