/* The run's records, written in place in the layout of retrysim/sim/records.py's numpy
 * dtypes (packed rows), in blocks handed to numpy without a copy (a buffer object).
 */
#ifndef RETRYSIM_RECORDS_H
#define RETRYSIM_RECORDS_H

#include <stdint.h>
#include <stdlib.h>

#pragma pack(push, 1)
typedef struct {  /* records.ATTEMPT_DTYPE: 48 bytes */
    uint32_t call, client;
    uint16_t attempt;
    uint8_t outcome, error;
    double start, end, wait;
    uint8_t executed;
    double pool_wait;
    uint16_t replica;
    uint8_t hedge;
} rs_attempt;

typedef struct {  /* records.CALL_DTYPE: 34 bytes */
    uint32_t call, client, index;
    double start, end;
    uint16_t attempts;
    uint8_t outcome, error;
    uint16_t executions;
} rs_call;
#pragma pack(pop)

_Static_assert(sizeof(rs_attempt) == 48, "attempt rows are records.ATTEMPT_DTYPE's 48 bytes");
_Static_assert(sizeof(rs_call) == 34, "call rows are records.CALL_DTYPE's 34 bytes");

/* Rows grown by half (at most this many at once), as records._Columns grows. */
#define RS_MOST_GROWTH (1u << 18)
#define RS_FIRST_CAPACITY (1u << 12)

typedef struct {
    char *rows;
    size_t size, capacity, width;
} rs_rows;

static inline int rs_rows_reserve(rs_rows *r, size_t want) {
    if (want <= r->capacity) return 0;
    size_t more = r->capacity / 2;
    if (more < RS_FIRST_CAPACITY) more = RS_FIRST_CAPACITY;
    if (more > RS_MOST_GROWTH) more = RS_MOST_GROWTH;
    size_t capacity = r->capacity + more;
    if (capacity < want) capacity = want;
    char *grown = realloc(r->rows, capacity * r->width);
    if (grown == NULL) return -1;
    r->rows = grown;
    r->capacity = capacity;
    return 0;
}

#endif
