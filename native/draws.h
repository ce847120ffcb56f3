/* Counter-based draws (SplitMix64 on uint64), and Python's float % and // on doubles.
 *
 * Every function here computes, operation for operation, what retrysim/sim/streams.py and
 * CPython's float operators compute, so the native engine's draws and times are the Python
 * engine's bit for bit. Built with -ffp-contract=off: a fused multiply-add would round once
 * where Python rounds twice.
 */
#ifndef RETRYSIM_DRAWS_H
#define RETRYSIM_DRAWS_H

#include <math.h>
#include <stdint.h>

#define RS_GOLDEN 0x9E3779B97F4A7C15ULL
#define RS_CALL_STEP 0xD1B54A32D192ED03ULL
#define RS_ATTEMPT_STEP 0xABC98388FB8FAC03ULL
#define RS_INV53 0x1p-53

/* SplitMix64's finaliser (streams.mix). */
static inline uint64_t rs_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* streams.unit: a uniform in [0, 1) for (stream key, call, attempt). */
static inline double rs_unit(uint64_t key, uint64_t call, uint64_t attempt) {
    return (double)(rs_mix(key + call * RS_CALL_STEP + attempt * RS_ATTEMPT_STEP) >> 11) * RS_INV53;
}

/* streams.Stream.random: the next draw of a call's own jitter stream. */
static inline double rs_next(uint64_t *state) {
    *state += RS_GOLDEN;
    return (double)(rs_mix(*state) >> 11) * RS_INV53;
}

/* CPython's float % (the result takes the divisor's sign). */
static inline double rs_py_mod(double x, double w) {
    double mod = fmod(x, w);
    if (mod != 0.0) {
        if ((w < 0) != (mod < 0)) mod += w;
    } else {
        mod = copysign(0.0, w);
    }
    return mod;
}

/* CPython's float // (floor division, as float_floor_div computes it). */
static inline double rs_py_floordiv(double x, double w) {
    double mod = fmod(x, w);
    double div = (x - mod) / w;
    double floordiv;
    if (mod != 0.0 && ((w < 0) != (mod < 0))) div -= 1.0;
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, x / w);
    }
    return floordiv;
}

#endif
