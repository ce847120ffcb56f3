/* The event heap: (time, sequence) keys in a typed binary heap, no Python objects.
 *
 * Ties in time run in the order they were scheduled (the sequence number), as in
 * retrysim/sim/kernel.py, so the native engine runs the same events in the same order.
 */
#ifndef RETRYSIM_HEAP_H
#define RETRYSIM_HEAP_H

#include <stdint.h>
#include <stdlib.h>

/* 24 bytes: a million clients' pending retries are a million events. */
typedef struct {
    double t;
    uint64_t order;  /* sequence << 16 | kind << 8 | code: ties in t run in sequence order */
    uint32_t row;    /* an attempt row, an arrival's index, a call's number among its client's */
    uint32_t call;   /* a call's row (or a client, or a sharing's number) */
} rs_event;

#define RS_EV_SEQ(e) ((e)->order >> 16)
#define RS_EV_KIND(e) ((unsigned)(((e)->order >> 8) & 0xff))
#define RS_EV_CODE(e) ((int)((e)->order & 0xff))

typedef struct {
    rs_event *items;
    size_t size, capacity;
    uint64_t seq;
} rs_heap;

static inline int rs_before(const rs_event *a, const rs_event *b) {
    return a->t < b->t || (a->t == b->t && a->order < b->order);
}

/* Schedule an event (its sequence is the heap's next); what kind and code say is the
 * engine's to read. */
static inline int rs_heap_push(rs_heap *h, double t, unsigned kind, uint32_t call, uint32_t row,
                        unsigned code) {
    if (h->size == h->capacity) {
        size_t more = h->capacity ? h->capacity / 2 : 1024;
        rs_event *grown = realloc(h->items, (h->capacity + more) * sizeof(rs_event));
        if (grown == NULL) return -1;
        h->items = grown;
        h->capacity += more;
    }
    rs_event e = {t, (h->seq++ << 16) | ((uint64_t)(kind & 0xff) << 8) | (code & 0xff), row, call};
    size_t i = h->size++;
    rs_event *items = h->items;
    while (i > 0) {
        size_t parent = (i - 1) >> 1;
        if (!rs_before(&e, &items[parent])) break;
        items[i] = items[parent];
        i = parent;
    }
    items[i] = e;
    return 0;
}

/* Remove the earliest event into *out (the heap must not be empty). */
static inline void rs_heap_pop(rs_heap *h, rs_event *out) {
    rs_event *items = h->items;
    *out = items[0];
    rs_event last = items[--h->size];
    size_t n = h->size, i = 0;
    if (n == 0) return;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && rs_before(&items[child + 1], &items[child])) child++;
        if (!rs_before(&items[child], &last)) break;
        items[i] = items[child];
        i = child;
    }
    items[i] = last;
}

#endif
