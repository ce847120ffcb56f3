/* tenacity's mirrored stop and wait strategies as a tree of typed nodes.
 *
 * retrysim/sim/native_lower.py walks the policy's real tenacity objects and packs each into
 * a node; what a node cannot compute exactly from its numbers alone (wait_exponential's
 * value, a power of the base) it works out per attempt number with the Python mirror's own
 * arithmetic and hands over as a table. The retry is not here: whether an error code is
 * retried is learnt once per code from the policy's real retry object (a verdict table).
 */
#ifndef RETRYSIM_POLICY_H
#define RETRYSIM_POLICY_H

#include <math.h>
#include <stdint.h>

#include "draws.h"

enum {
    W_FIXED = 1,     /* a: seconds */
    W_RANDOM,        /* a: low, b: high - low */
    W_TABLE,         /* wait_exponential's value per attempt number */
    W_RANDOM_EXP,    /* a: min, table: high - min per attempt number */
    W_EXP_JITTER,    /* a: jitter, b: max, c: floor, table: multiplier * base**n (NaN: overflow) */
    W_COMBINE,       /* children summed */
    W_PER_ERROR,     /* a child per error code (256) */
    W_CAPPED,        /* a: the cap on its one child */
    W_EQUAL_JITTER,  /* a: floor, table: half the capped exponential per attempt number */
    W_DECORRELATED,  /* a: base, b: max, c: floor; the call's previous wait in its state */
    W_RETRY_AFTER,   /* a: cap; its one child the fallback wait */
    S_AFTER_ATTEMPT = 20,  /* a: attempts */
    S_AFTER_DELAY,   /* a: seconds */
    S_BEFORE_DELAY,  /* a: seconds */
    S_ANY,
    S_ALL,
    S_PER_ERROR_ATTEMPT  /* table: attempts per error code (256) */
};

/* One node, as the lowering packs it ('<iiiiiiddd'). */
typedef struct {
    int32_t op;
    int32_t child;   /* first child's place in the children table */
    int32_t count;   /* how many children */
    int32_t table;   /* offset in the table of doubles */
    int32_t length;  /* entries in it */
    int32_t slot;    /* a decorrelated jitter's place among the call's remembered waits */
    double a, b, c;
} rs_node;

/* What the strategies read of a call (tenacity's RetryCallState, as FastCallState slims it). */
typedef struct {
    uint64_t stream;         /* the call's jitter stream */
    double start;            /* start_time */
    double outcome_time;     /* outcome_timestamp */
    double upcoming_sleep;
    double hint;             /* the failed attempt's Retry-After seconds (NaN: none) */
    double *previous;        /* decorrelated jitters' last waits for the call (NaN: none) */
    uint32_t attempt_number;
    uint8_t error_code;
} rs_state;

typedef struct {
    const rs_node *nodes;
    const int32_t *children;
    const double *table;
} rs_policy;

/* A table's entry for the state's attempt: past its end, the last (the lowering checked that
 * the strategy's value no longer changes there). */
static inline double rs_by_attempt(const rs_policy *p, const rs_node *n, uint32_t attempt) {
    uint32_t i = attempt - 1;
    if (i >= (uint32_t)n->length) i = (uint32_t)n->length - 1;
    return p->table[n->table + i];
}

static inline double rs_wait(const rs_policy *p, int32_t index, rs_state *s) {
    const rs_node *n = &p->nodes[index];
    switch (n->op) {
    case W_FIXED:
        return n->a;
    case W_RANDOM:  /* low + (random() * (high - low)) */
        return n->a + (rs_next(&s->stream) * n->b);
    case W_TABLE:
        return rs_by_attempt(p, n, s->attempt_number);
    case W_RANDOM_EXP:  /* uniform(min, high): min + (high - min) * random() */
        return n->a + rs_by_attempt(p, n, s->attempt_number) * rs_next(&s->stream);
    case W_EXP_JITTER: {
        double jitter = 0.0 + n->a * rs_next(&s->stream);  /* uniform(0, jitter) */
        double power = rs_by_attempt(p, n, s->attempt_number);
        double result = isnan(power) ? n->b : power + jitter;
        result = n->b < result ? n->b : result;
        return result > n->c ? result : n->c;
    }
    case W_COMBINE: {
        double sum = 0.0;
        for (int32_t i = 0; i < n->count; i++) sum = sum + rs_wait(p, p->children[n->child + i], s);
        return sum;
    }
    case W_PER_ERROR:
        return rs_wait(p, p->children[n->child + s->error_code], s);
    case W_CAPPED: {  /* min(cap, inner) */
        double inner = rs_wait(p, p->children[n->child], s);
        return inner < n->a ? inner : n->a;
    }
    case W_EQUAL_JITTER: {  /* v / 2 + uniform(0, v / 2), floored */
        double half = rs_by_attempt(p, n, s->attempt_number);
        double wait = half + (0.0 + (half - 0.0) * rs_next(&s->stream));
        return n->a > 0 && wait < n->a ? n->a : wait;
    }
    case W_DECORRELATED: {  /* min(max, uniform(base, 3 * previous)), floored */
        double *remembered = &s->previous[n->slot];
        double previous = isnan(*remembered) || s->attempt_number <= 1 ? n->a : *remembered;
        double wait = n->a + (3.0 * previous - n->a) * rs_next(&s->stream);
        wait = wait < n->b ? wait : n->b;
        *remembered = wait;
        return n->c > 0 && wait < n->c ? n->c : wait;
    }
    case W_RETRY_AFTER: {  /* max(fallback, min(hint, cap)) when the hint is longer */
        double wait = rs_wait(p, p->children[n->child], s);
        if (!isnan(s->hint) && s->hint > wait) {
            double capped = n->a < s->hint ? n->a : s->hint;
            wait = capped > wait ? capped : wait;
        }
        return wait;
    }
    }
    return NAN;
}

static inline int rs_stop(const rs_policy *p, int32_t index, const rs_state *s) {
    const rs_node *n = &p->nodes[index];
    switch (n->op) {
    case S_AFTER_ATTEMPT:
        return (double)s->attempt_number >= n->a;
    case S_AFTER_DELAY:
        return s->outcome_time - s->start >= n->a;
    case S_BEFORE_DELAY:
        return s->outcome_time - s->start + s->upcoming_sleep >= n->a;
    case S_ANY:
        for (int32_t i = 0; i < n->count; i++)
            if (rs_stop(p, p->children[n->child + i], s)) return 1;
        return 0;
    case S_ALL:
        for (int32_t i = 0; i < n->count; i++)
            if (!rs_stop(p, p->children[n->child + i], s)) return 0;
        return 1;
    case S_PER_ERROR_ATTEMPT:
        return (double)s->attempt_number >= p->table[n->table + s->error_code];
    }
    return 1;
}

#endif
