/* Latency samplers: one uniform in, seconds out (retrysim/sim/latency.py's formulas).
 *
 * The normal quantile is Wichura's AS241 rational approximation, the one CPython's
 * statistics.NormalDist.inv_cdf evaluates, in the same order of operations.
 */
#ifndef RETRYSIM_LATENCY_H
#define RETRYSIM_LATENCY_H

#include <math.h>
#include <stdint.h>

enum { LAT_CONSTANT = 1, LAT_UNIFORM, LAT_EXPONENTIAL, LAT_NORMAL, LAT_LOGNORMAL, LAT_WEIBULL,
       LAT_EMPIRICAL };

/* One sampler, as retrysim/sim/native_lower.py packs it ('<iiiidd'). */
typedef struct {
    int32_t kind;
    int32_t reflect;  /* a normal's negative draws: 1 reflected, 0 clipped */
    int32_t q_off;    /* an empirical's quantiles: offset and count in the table of doubles */
    int32_t q_len;
    double a, b;      /* the distribution's numbers, worked out by the lowering */
} rs_sampler;

/* AS241 (Wichura 1988), with mu 0 and sigma 1: 0.0 + x * 1.0, as NormalDist() adds them. */
static inline double rs_std_inv_cdf(double p) {
    double q = p - 0.5, r, num, den, x;
    if (fabs(q) <= 0.425) {
        r = 0.180625 - q * q;
        num = (((((((2.5090809287301226727e+3 * r + 3.3430575583588128105e+4) * r +
                    6.7265770927008700853e+4) * r + 4.5921953931549871457e+4) * r +
                  1.3731693765509461125e+4) * r + 1.9715909503065514427e+3) * r +
                1.3314166789178437745e+2) * r + 3.3871328727963666080e+0) * q;
        den = (((((((5.2264952788528545610e+3 * r + 2.8729085735721942674e+4) * r +
                    3.9307895800092710610e+4) * r + 2.1213794301586595867e+4) * r +
                  5.3941960214247511077e+3) * r + 6.8718700749205790830e+2) * r +
                4.2313330701600911252e+1) * r + 1.0);
        x = num / den;
        return 0.0 + (x * 1.0);
    }
    r = q <= 0.0 ? p : 1.0 - p;
    r = sqrt(-log(r));
    if (r <= 5.0) {
        r = r - 1.6;
        num = (((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r +
                    2.41780725177450611770e-1) * r + 1.27045825245236838258e+0) * r +
                  3.64784832476320460504e+0) * r + 5.76949722146069140550e+0) * r +
                4.63033784615654529590e+0) * r + 1.42343711074968357734e+0);
        den = (((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r +
                    1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r +
                  6.89767334985100004550e-1) * r + 1.67638483018380384940e+0) * r +
                2.05319162663775882187e+0) * r + 1.0);
    } else {
        r = r - 5.0;
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r +
                    1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r +
                  2.96560571828504891230e-1) * r + 1.78482653991729133580e+0) * r +
                5.46378491116411436990e+0) * r + 6.65790464350110377720e+0);
        den = (((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r +
                    1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r +
                  1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r +
                5.99832206555887937690e-1) * r + 1.0);
    }
    x = num / den;
    if (q < 0.0) x = -x;
    return 0.0 + (x * 1.0);
}

/* latency._inv_cdf: u kept inside (0, 1) first. */
static inline double rs_inv_cdf(double u) {
    double p = u < 1e-300 ? 1e-300 : u;
    const double top = 1.0 - 0x1p-53;
    if (top < p) p = top;
    return rs_std_inv_cdf(p);
}

static inline double rs_sample(const rs_sampler *s, const double *table, double u) {
    double x;
    switch (s->kind) {
    case LAT_CONSTANT:
        return s->a;
    case LAT_UNIFORM:  /* low + (high - low) * u */
        return s->a + s->b * u;
    case LAT_EXPONENTIAL:  /* -mean * log1p(-u) */
        return s->a * log1p(-u);
    case LAT_NORMAL:
        x = s->a + s->b * rs_inv_cdf(u);
        if (s->reflect) return fabs(x);
        return x > 0.0 ? x : 0.0;  /* max(0.0, x) */
    case LAT_LOGNORMAL:
        return exp(s->a + s->b * rs_inv_cdf(u));
    case LAT_WEIBULL:  /* scale * (-log1p(-u)) ** (1 / shape) */
        return s->a * pow(-log1p(-u), s->b);
    case LAT_EMPIRICAL: {
        const double *q = table + s->q_off;
        int32_t steps = s->q_len - 1;
        double at = u * steps;
        int32_t i = (int32_t)at;
        if (i > steps - 1) i = steps - 1;
        double v = q[i] + (q[i + 1] - q[i]) * (at - i);
        return q[i + 1] < v ? q[i + 1] : v;
    }
    }
    return NAN;
}

#endif
