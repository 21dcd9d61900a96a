/*
 * tapegrad_mpi: the collectives of data-parallel training (include/tapegrad/mpi.h).
 * Only the public API of tapegrad is used: this library links against the
 * shared or the static tapegrad like any other program.
 */
#include "mpi_internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int tg__mpi_err(tg_error *err, int code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

int tg__mpi_ready(MPI_Comm comm) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin) return TG_ERR_STATE;
    if (comm == MPI_COMM_NULL) return TG_ERR_ARG;
    return TG_OK;
}

void tg__mpi_errors_return(MPI_Comm comm, MPI_Errhandler *saved) {
    MPI_Comm_get_errhandler(comm, saved);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
}

void tg__mpi_errors_restore(MPI_Comm comm, MPI_Errhandler *saved) {
    MPI_Comm_set_errhandler(comm, *saved);
    MPI_Errhandler_free(saved);
}

/* MPI counts are ints: a buffer beyond INT_MAX elements goes in pieces (a
 * store that large is 8 GiB of float32; in practice this is one call). */
static int allreduce_sum(void *buf, int64_t n, tg_dtype dt, MPI_Comm comm) {
    MPI_Datatype type = dt == TG_F64 ? MPI_DOUBLE : MPI_FLOAT;
    size_t es = dt == TG_F64 ? sizeof(double) : sizeof(float);
    char *p = buf;
    while (n > 0) {
        int count = n > INT_MAX ? INT_MAX : (int)n;
        if (MPI_Allreduce(MPI_IN_PLACE, p, count, type, MPI_SUM, comm) != MPI_SUCCESS)
            return TG_ERR_IO;
        p += (size_t)count * es;
        n -= count;
    }
    return TG_OK;
}

static void scale(void *buf, int64_t n, tg_dtype dt, double s) {
    if (dt == TG_F64) {
        double *g = buf;
        for (int64_t i = 0; i < n; i++) g[i] *= s;
    } else {
        float *g = buf, fs = (float)s;
        for (int64_t i = 0; i < n; i++) g[i] *= fs;
    }
}

/* The shared body of the two gradient reductions: pre-scale, sum, post-scale. */
static int reduce_grads(tg_params *ps, double pre, double post, MPI_Comm comm) {
    if (!ps) return TG_ERR_NULL;
    int rc = tg__mpi_ready(comm);
    if (rc) return rc;
    int64_t n = tg_params_size(ps);
    void *g = tg_params_grads(ps);
    tg_dtype dt = tg_params_dtype(ps);
    if (n == 0 || !g) return TG_OK; /* an empty store on every rank */
    if (pre != 1) scale(g, n, dt, pre);
    MPI_Errhandler saved;
    tg__mpi_errors_return(comm, &saved);
    rc = allreduce_sum(g, n, dt, comm);
    tg__mpi_errors_restore(comm, &saved);
    if (!rc && post != 1) scale(g, n, dt, post);
    return rc;
}

int tg_mpi_allreduce_grads(tg_params *ps, MPI_Comm comm) {
    if (!ps) return TG_ERR_NULL;
    int rc = tg__mpi_ready(comm), size = 1;
    if (rc) return rc;
    MPI_Comm_size(comm, &size);
    return reduce_grads(ps, 1, 1.0 / size, comm);
}

int tg_mpi_allreduce_grads_weighted(tg_params *ps, double weight, MPI_Comm comm) {
    if (!ps) return TG_ERR_NULL;
    if (!(weight >= 0) || !isfinite(weight)) return TG_ERR_ARG;
    return reduce_grads(ps, weight, 1, comm);
}

int tg_mpi_bcast_params(tg_params *ps, int root, MPI_Comm comm) {
    if (!ps) return TG_ERR_NULL;
    int rc = tg__mpi_ready(comm), size = 1;
    if (rc) return rc;
    MPI_Comm_size(comm, &size);
    if (root < 0 || root >= size) return TG_ERR_ARG;
    /* Agree on the layout first: max of (x, -x) gives max and -min at once. */
    int64_t n = tg_params_size(ps), count = tg_params_count(ps), dt = tg_params_dtype(ps);
    int64_t v[6] = {n, -n, count, -count, dt, -dt};
    MPI_Errhandler saved;
    tg__mpi_errors_return(comm, &saved);
    if (MPI_Allreduce(MPI_IN_PLACE, v, 6, MPI_INT64_T, MPI_MAX, comm) != MPI_SUCCESS) {
        rc = TG_ERR_IO;
    } else if (v[0] != -v[1] || v[2] != -v[3] || v[4] != -v[5]) {
        rc = TG_ERR_STATE;
    } else {
        MPI_Datatype type = dt == TG_F64 ? MPI_DOUBLE : MPI_FLOAT;
        size_t es = dt == TG_F64 ? sizeof(double) : sizeof(float);
        char *p = tg_params_data(ps);
        for (int64_t left = n; left > 0 && !rc;) {
            int c = left > INT_MAX ? INT_MAX : (int)left;
            if (MPI_Bcast(p, c, type, root, comm) != MPI_SUCCESS) rc = TG_ERR_IO;
            p += (size_t)c * es;
            left -= c;
        }
    }
    tg__mpi_errors_restore(comm, &saved);
    return rc;
}

int tg_mpi_agree(int status, MPI_Comm comm, int *failed_rank) {
    if (failed_rank) *failed_rank = -1;
    int rc = tg__mpi_ready(comm);
    if (rc) return rc;
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int lowest = status ? rank : size; /* min over the ranks: the first failure */
    MPI_Errhandler saved;
    tg__mpi_errors_return(comm, &saved);
    if (MPI_Allreduce(MPI_IN_PLACE, &lowest, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        rc = TG_ERR_IO;
    tg__mpi_errors_restore(comm, &saved);
    if (rc) return status ? status : rc;
    if (lowest >= size) return TG_OK;
    if (failed_rank) *failed_rank = lowest;
    return status ? status : TG_ERR_STATE;
}

void tg_mpi_shard(size_t rows, int rank, int size, size_t *first, size_t *count) {
    size_t f = 0, c = 0;
    if (size >= 1 && rank >= 0 && rank < size) {
        size_t q = rows / (size_t)size, r = rows % (size_t)size, k = (size_t)rank;
        f = k * q + (k < r ? k : r);
        c = q + (k < r);
    }
    if (first) *first = f;
    if (count) *count = c;
}
