/* Private helpers of tapegrad_mpi (src/mpi); never installed. */
#ifndef TG_MPI_INTERNAL_H
#define TG_MPI_INTERNAL_H

#include <tapegrad/mpi.h>

/* Fills err (when not NULL) with code and a printf-style message; returns code. */
int tg__mpi_err(tg_error *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* TG_OK when MPI is initialised and not finalised and comm is not
 * MPI_COMM_NULL; else TG_ERR_STATE or TG_ERR_ARG. */
int tg__mpi_ready(MPI_Comm comm);

/* Sets MPI_ERRORS_RETURN on comm, keeping its handler in *saved; and puts
 * the saved handler back (and releases the reference). */
void tg__mpi_errors_return(MPI_Comm comm, MPI_Errhandler *saved);
void tg__mpi_errors_restore(MPI_Comm comm, MPI_Errhandler *saved);

#endif
