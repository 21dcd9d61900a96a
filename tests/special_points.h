/*
 * The grid of special values that test_nonfinite.c feeds every elementwise
 * op (all combinations of them for ops of two or three inputs) and that
 * test_agreement.c differentiates at: NaN of both signs, +-inf, +-0,
 * subnormals, the smallest normal, the kinks and domain edges +-1 and 0,
 * ordinary values, values whose square or exponential overflows. Entry i of
 * one list plays the role of entry i of the other in its dtype.
 */
#ifndef TG_TEST_SPECIAL_POINTS_H
#define TG_TEST_SPECIAL_POINTS_H

#include <float.h>
#include <math.h>

static const double specials_f64[] = {
    NAN,  -NAN, INFINITY, -INFINITY, 0.0,  -0.0,    DBL_TRUE_MIN, -1e-310, DBL_MIN,
    1.0,  -1.0, 0.5,      -2.5,      3.0,  1e300,   -1e300,       700.0,   -745.0,
};
static const double specials_f32[] = {
    NAN,  -NAN, INFINITY, -INFINITY, 0.0,  -0.0,  FLT_TRUE_MIN, -1e-40, FLT_MIN,
    1.0,  -1.0, 0.5,      -2.5,      3.0,  3e38,  -3e38,        80.0,   -100.0,
};
#define NSPECIAL (sizeof specials_f64 / sizeof *specials_f64)

#endif
