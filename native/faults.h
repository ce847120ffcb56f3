/* Fault strategies at an attempt's door, on its service time and on its connection
 * (retrysim/sim/faults.py), each drawing on its own counter-based stream.
 */
#ifndef RETRYSIM_FAULTS_H
#define RETRYSIM_FAULTS_H

#include <math.h>
#include <stdint.h>

#include "draws.h"
#include "latency.h"

#define RS_PASS 0
#define RS_BLACKHOLE (-1)
#define RS_CALL_KEY_SHIFT 24
#define RS_MAX_RETRANSMISSIONS 15

enum { F_OUTAGE = 1, F_FLAKY, F_RAMP, F_FIRST_N, F_EVERY_NTH,  /* gates */
       F_SPIKE = 10, F_LOSS,                                     /* extra seconds */
       F_RESET = 20 };                                           /* a cut connection */

/* One fault strategy, as the lowering packs it ('<iiiiiiiidddddddddQQQ'). */
typedef struct {
    int32_t kind;
    int32_t code;        /* the error (or answer) code a gate fails with; BLACKHOLE */
    int32_t n;           /* a count gate's n; a loss's segments; a spike's sampler */
    int32_t narrowed;    /* limited in time or to some clients (faults.Narrowed) */
    int32_t clients_off; /* the listed clients (sorted) in the table of keys; -1: any */
    int32_t clients_len;
    int32_t keys_off;    /* a loss's segment keys in the table of keys */
    int32_t pad;
    double start, end, probability, rto;
    double every, duration, share, count_every, hint;  /* hint: a gate's Retry-After (NaN) */
    uint64_t key, share_key, radius_key;
} rs_fault;

/* A count gate's state: it counts the attempts that reach it (faults.CountGate). */
typedef struct {
    int64_t count;
    int64_t occurrence;
} rs_count;

typedef struct {
    const rs_fault *items;
    rs_count *counts;      /* one per fault (used by count gates) */
    const uint64_t *keys;
    const rs_sampler *samplers;
    const double *table;
} rs_faults;

static inline int rs_listed(const uint64_t *sorted, int32_t len, uint64_t client) {
    int32_t lo = 0, hi = len;
    while (lo < hi) {
        int32_t mid = (lo + hi) >> 1;
        if (sorted[mid] < client) lo = mid + 1;
        else hi = mid;
    }
    return lo < len && sorted[lo] == client;
}

/* Narrowed: whether the fault is on for this attempt (else it answers "off" unasked). */
static inline int rs_narrowed_on(const rs_faults *fs, const rs_fault *f, double t, uint64_t call_key) {
    if (f->every != INFINITY && rs_py_mod(t - f->start, f->every) >= f->duration) return 0;
    uint64_t client = call_key >> RS_CALL_KEY_SHIFT;
    if (f->clients_off >= 0 && !rs_listed(fs->keys + f->clients_off, f->clients_len, client))
        return 0;
    if (f->share < 1.0 && rs_unit(f->radius_key, client, 0) >= f->share) return 0;
    return 1;
}

static inline int rs_gate(const rs_faults *fs, int32_t i, double t, uint64_t key, uint64_t attempt) {
    const rs_fault *f = &fs->items[i];
    if (f->narrowed && !rs_narrowed_on(fs, f, t, key)) return RS_PASS;
    switch (f->kind) {
    case F_OUTAGE:
        return f->start <= t && t < f->end ? f->code : RS_PASS;
    case F_FLAKY:
        if (f->start <= t && t < f->end && rs_unit(f->key, key, attempt) < f->probability)
            return f->code;
        return RS_PASS;
    case F_RAMP: {
        if (!(f->start <= t && t < f->end)) return RS_PASS;
        double p = f->probability * (f->end - t) / (f->end - f->start);
        return rs_unit(f->key, key, attempt) < p ? f->code : RS_PASS;
    }
    case F_FIRST_N:
    case F_EVERY_NTH: {
        if (!(f->start <= t && t < f->end)) return RS_PASS;
        rs_count *c = &fs->counts[i];
        int64_t occurrence = 0;
        if (!isinf(f->count_every)) occurrence = (int64_t)rs_py_floordiv(t - f->start, f->count_every);
        if (occurrence != c->occurrence) {
            c->occurrence = occurrence;
            c->count = 0;
        }
        c->count += 1;
        int hit = f->kind == F_FIRST_N ? c->count <= f->n : c->count % f->n == 0;
        return hit ? f->code : RS_PASS;
    }
    }
    return RS_PASS;
}

/* faults.retransmissions: how many times in a row a segment is lost, for the draw u. */
static inline int64_t rs_retransmissions(double u, double probability) {
    if (probability <= 0.0) return 0;
    double tail = 1.0 - u;
    double k = log(tail) / log(probability);
    int64_t whole = (int64_t)k;
    return whole < RS_MAX_RETRANSMISSIONS ? whole : RS_MAX_RETRANSMISSIONS;
}

static inline double rs_extra(const rs_faults *fs, int32_t i, double t, uint64_t key, uint64_t attempt) {
    const rs_fault *f = &fs->items[i];
    if (f->narrowed && !rs_narrowed_on(fs, f, t, key)) return 0.0;
    if (!(f->start <= t && t < f->end)) return 0.0;
    if (f->kind == F_SPIKE) return rs_sample(&fs->samplers[f->n], fs->table, rs_unit(f->key, key, attempt));
    double total = 0.0;  /* F_LOSS */
    for (int32_t s = 0; s < f->n; s++) {
        int64_t k = rs_retransmissions(rs_unit(fs->keys[f->keys_off + s], key, attempt), f->probability);
        if (k) total += f->rto * (pow(2.0, (double)k) - 1.0);
    }
    return total;
}

/* A reset rule: the share of the service time after which it cuts the client off, or -1. */
static inline double rs_reset(const rs_faults *fs, int32_t i, double t, uint64_t key, uint64_t attempt) {
    const rs_fault *f = &fs->items[i];
    if (f->narrowed && !rs_narrowed_on(fs, f, t, key)) return -1.0;
    if (f->start <= t && t < f->end && rs_unit(f->key, key, attempt) < f->probability)
        return rs_unit(f->share_key, key, attempt);
    return -1.0;
}

#endif
