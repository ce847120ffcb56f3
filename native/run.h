/* The native engine's shared parts: the run's state, its records and events, and what each
 * file of the engine offers the others (calls.c, connections.c, servers.c, module.c).
 *
 * The engine runs the model of retrysim/sim/engine.py for the runs the lowering
 * (retrysim/sim/native_lower.py) accepts. It schedules the same events in the same order, draws
 * the same counter-based numbers and does the same float arithmetic in the same order, so its
 * records are the Python engine's byte for byte (tests/test_native.py proves it against
 * tenacity's own iter()).
 */
#ifndef RETRYSIM_RUN_H
#define RETRYSIM_RUN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "draws.h"
#include "faults.h"
#include "heap.h"
#include "latency.h"
#include "policy.h"
#include "records.h"

/* Record codes, as retrysim/sim/records.py numbers them. */
enum { OUT_OK = 0, OUT_FAILED = 1, OUT_TIMED_OUT = 2, OUT_OPEN = 3 };
enum { CALL_SUCCEEDED = 0, CALL_GAVE_UP = 1, CALL_UNFINISHED = 2 };
/* What happens at an event. */
enum { EV_ARRIVE = 1, EV_NEXT_CALL, EV_RETRY, EV_TIMED_OUT, EV_RESET, EV_DONE, EV_FINISH,
       EV_CAPACITY, EV_WAIT_EXPIRED, EV_LOAD_DONE, EV_READ_ANSWERED, EV_WRITE, EV_COMMIT,
       EV_SHARED_DONE, EV_TO_POOL, EV_CONNECT_TIMED_OUT, EV_ANSWER_IF_OPEN, EV_TRANSMIT,
       EV_REACH_SERVER, EV_TIMEOUT_DUE, EV_DELIVERED, EV_HEDGE_DUE, EV_HEDGE_DISPATCH };
/* Why a run stopped early. */
enum { STOP_NONE = 0, STOP_TIME, STOP_EVENTS, STOP_ATTEMPTS, STOP_ERROR };
#define SUCCEEDED_NOW (-1.0)
#define GAVE_UP_NOW (-2.0)

/* A live call is its jitter stream (8 bytes); the attempt it sends next is kept in its
 * record's attempts field, which its end writes anyway. */
typedef struct {
    uint64_t stream;
} rs_live;

/* The service model's numbers, as the lowering packs them ('<7q4d'). */
enum { SERVER_IDEAL = 0, SERVER_QUEUE, SERVER_LOCK, SERVER_LOAD_LATENCY, SERVER_RATE_LIMITED,
       SERVER_OCC, SERVER_SHARING };
enum { HINT_SECONDS = 0, HINT_EXACT, HINT_NONE };
typedef struct {
    int64_t kind, slots, queue_limit, reject_code, drop_abandoned, hint_mode, rejection;
    int64_t read_sampler; /* occ: the read's latency sampler (read_then_write), or -1 */
    int64_t cancel_abandoned;  /* processor sharing: drop a request its client gave up on */
    uint64_t server_key;  /* the server model's own draws (an occ read's latency) */
    double wait_timeout;  /* a lock's wait timeout (NaN: none) */
    double per_request;   /* load_latency: seconds each request in flight adds */
    double rate, burst;   /* rate_limited: the token bucket; occ: rate is unused */
    double cores;         /* processor sharing */
} rs_server;

typedef struct {  /* a job sharing cores (sharing.Sharing's tags): a request, or CPU work */
    double tag;
    uint64_t sequence, row;  /* row: the attempt */
    double hint, began;      /* a connect's, done on a shared CPU: its Retry-After, its start */
    uint32_t call;
    int32_t code;            /* a connect's fault verdict */
    int32_t step;            /* what follows the CPU work (STEP_*) */
} rs_job;

/* sharing.Sharing: jobs sharing cores, one pending completion event. */
typedef struct {
    rs_job *jobs;
    size_t n, capacity;
    int keyed;           /* jobs can leave early (the server's, by attempt row): present flags */
    uint8_t *present;
    size_t present_size;
    int64_t count;       /* jobs present */
    uint64_t sequence, pending_seq;
    int has_pending, settling;
    double attained, last, cores;
} rs_share;

enum { STEP_TO_POOL = 1, STEP_CONNECT };

/* The connections model's numbers ('<6q8Qd3q'): retrysim/sim/connections.py's. */
typedef struct {
    int64_t processes, pool_size, cpus, shared_cpu, per_leg, backlog;  /* -1: none */
    uint64_t rtt_key, back_key, read_back_key, write_out_key, connect_key, cpu_key,
        connect_cpu_key, pad;
    double syn_retry;
    int64_t rtt, connect, attempt_cpu;  /* samplers (-1: none) */
    int64_t connect_cpu;
    double connect_timeout;             /* NaN: none */
} rs_network;

typedef struct {  /* an attempt waiting for a pooled connection */
    uint32_t call;
    uint64_t row;
    double arrived;
    int64_t next;     /* the next waiter of its pool, or -1 */
} rs_pool_waiter;

typedef struct {
    int64_t idle_open, in_use, head, tail;  /* head/tail: its waiters (-1: none) */
} rs_pool;

typedef struct {  /* a request waiting for a queue's slot */
    uint32_t call;
    uint64_t row;
    double service;
} rs_waiter;

/* One replica of the service: the faults aimed at it, and its server's state. */
typedef struct {
    const int32_t *gates, *spikes, *resets;  /* its fault plan: rows of the faults table */
    int32_t n_gates, n_spikes, n_resets;
    int64_t slots, busy, in_flight;
    double tokens, last;           /* a rate limit's bucket */
    rs_waiter *waiting;            /* a FIFO; a lock's expired waiters stay as tombstones */
    size_t wait_head, wait_size, wait_capacity, waiters;  /* waiters: live ones */
    int64_t version;               /* occ: the record's version */
    rs_share share;                /* processor sharing's */
} rs_replica;

/* The sends of one hedged attempt (retrysim/sim/hedging.py's HedgeGroup). */
#define RS_MAX_SENDS 10
#define RS_HEDGE_SHIFT 16
#define RS_CANCELLED 4
typedef struct {
    uint32_t attempt;
    uint32_t rows[RS_MAX_SENDS];  /* every send's attempt row, in order */
    uint8_t n_rows, open, sent, active;  /* open: sends not yet answered; sent: sends made */
} rs_group;

enum { BALANCE_ROUND_ROBIN = 0, BALANCE_RANDOM, BALANCE_LEAST_OUTSTANDING, BALANCE_POWER_OF_TWO };

typedef struct {
    /* the scenario */
    const double *firsts;
    const int64_t *first_clients;
    size_t n_firsts;
    int open_loop;
    int64_t clients;
    double calls_per_client, think_time, duration, max_time, attempt_limit, timeout;
    int64_t max_events;
    int has_timeout;
    uint64_t jitter_key, latency_key;
    rs_faults faults;
    /* the policy */
    rs_policy policy;
    int32_t stop_root, wait_root;
    const uint8_t *verdicts;
    int served_judged, none_code, answer_base, timeout_code, rate_limited_code;
    /* the service: one model, a server of it per replica, and the balancer between them */
    rs_server server;
    rs_replica *replicas;
    int64_t n_replicas;
    int64_t balance_rule, turn;    /* BALANCE_*; round robin's turn */
    uint64_t balance_key;
    int64_t *outstanding;          /* by replica: sent, not yet answered */
    int retry_other_host;
    uint64_t *tried;               /* by call: the replicas it has tried (a bit each) */
    size_t tried_size;
    /* hedging: max sends an attempt, the delay between them, each call's group */
    int64_t hedge_max;             /* 0: no hedging */
    double hedge_delay;
    rs_group *groups;
    size_t groups_size;            /* bytes */
    uint8_t *queued;               /* 1 while attempt row a waits (a lock's, processor sharing's) */
    size_t queued_size;
    rs_rows occ;                   /* per attempt row: {int64 version read, double write time} */
    /* connections (pools, network, client CPU); has_network: attempts go over them */
    int connected;
    rs_network net;
    const uint8_t *closes, *fails_connect;  /* by error code */
    rs_pool *pools;
    rs_pool_waiter *pool_waiters;
    size_t n_pool_waiters, pool_waiters_capacity;
    int64_t free_waiter;
    double *cpu_free_at;           /* a FIFO CPU's: when its queued work is done */
    rs_share *cpus;                /* processor-sharing CPUs */
    int32_t *holding;              /* by attempt row: the pool whose connection it holds + 1 */
    size_t holding_size;
    double *let_ins, *opened;      /* connects let in and when they open, each sorted */
    size_t n_let_ins, n_opened, let_capacity;
    int64_t stats[4];              /* connects, connect failures, connect timeouts, pool waits */
    int hinted;                    /* attempts can carry Retry-After hints through events */
    double *hints;                 /* by attempt row: the hint its pending event carries */
    size_t hints_size;
    /* the run */
    rs_heap heap;
    rs_rows attempts, calls, live;
    rs_rows remembered;  /* each call's decorrelated jitters' last waits (width: 8 a node) */
    int32_t remembers;   /* how many such waits a call keeps */
    double now, pending_done;
    int64_t events, ended, report_every;
    int halted;
    uint64_t halted_at;
    PyObject *progress;
    int failed;  /* out of memory, or the progress callback raised */
} rs_run;

static inline rs_attempt *attempt_row(rs_run *R, uint64_t a) { return (rs_attempt *)R->attempts.rows + a; }
static inline rs_call *call_row(rs_run *R, uint32_t c) { return (rs_call *)R->calls.rows + c; }
static inline rs_live *live_of(rs_run *R, uint32_t c) { return (rs_live *)R->live.rows + c; }

static inline void at(rs_run *R, double t, unsigned kind, uint32_t call, uint64_t row, int code) {
    if (rs_heap_push(&R->heap, t, kind, call, (uint32_t)row, (unsigned)code) < 0) R->failed = 1;
}

/* An event that carries a Retry-After hint: the hint waits in its attempt's slot (only runs
 * that can carry hints keep them). */
static inline void at_with(rs_run *R, double t, unsigned kind, uint32_t call, uint64_t a, int code,
                    double hint) {
    if (R->hinted) {
        if (a >= R->hints_size) {
            size_t size = R->hints_size ? 2 * R->hints_size : 4096;
            while (size <= a) size *= 2;
            double *grown = realloc(R->hints, size * sizeof(double));
            if (grown == NULL) {
                R->failed = 1;
                return;
            }
            R->hints = grown;
            R->hints_size = size;
        }
        R->hints[a] = hint;
    }
    at(R, t, kind, call, a, code);
}

static inline double hint_of(rs_run *R, uint64_t a) { return R->hinted ? R->hints[a] : NAN; }

/* A call's stream key (Call.key): client << 24 | its index among the client's calls. */
static inline uint64_t key_of(rs_run *R, uint32_t call) {
    rs_call *c = call_row(R, call);
    return ((uint64_t)c->client << RS_CALL_KEY_SHIFT) | c->index;
}

/* The attempt number row a's draws are keyed by: a hedge's is its own (hedging.draw_index). */
static inline uint64_t draw_of(rs_run *R, uint64_t a) {
    rs_attempt *row = attempt_row(R, a);
    return row->attempt + ((uint64_t)row->hedge << RS_HEDGE_SHIFT);
}

/* The replica attempt row a went to (the only one, with one). */
static inline rs_replica *replica_of(rs_run *R, uint64_t a) {
    return &R->replicas[attempt_row(R, a)->replica];
}

/* -- what each file offers the others ---------------------------------------------------- */

int rs_gate_verdict(rs_run *R, const rs_replica *P, double t, uint64_t key, uint64_t n, double *hint);
double rs_service_time(rs_run *R, const rs_replica *P, double t, uint64_t key, uint64_t n);
double rs_reset_share(rs_run *R, const rs_replica *P, double t, uint64_t key, uint64_t n, int *code);
void rs_route(rs_run *R, uint32_t call, uint64_t a);
void rs_hear(rs_run *R, uint32_t call, uint64_t a, int code, int outcome, double hint);
double rs_read_to_write(rs_run *R, uint32_t call, uint64_t a);
void rs_to_pool(rs_run *R, uint32_t call, uint64_t a);
void rs_release(rs_run *R, uint64_t a, int code);
void rs_transmit(rs_run *R, uint32_t call, uint64_t a, int verdict, double hint);
void rs_reach_server(rs_run *R, uint32_t call, uint64_t a);
void rs_send_connected(rs_run *R, uint32_t call, uint64_t a);
void rs_cpu_done(rs_run *R, const rs_job *job);
void rs_respond(rs_run *R, uint32_t call, uint64_t a, int code, double hint);
int rs_flag_room(uint8_t **flags, size_t *size, uint64_t a);
rs_share *rs_share_of(rs_run *R, uint32_t index);
void rs_share_add(rs_run *R, uint32_t index, double now, double work, rs_job job);
void rs_share_complete(rs_run *R, uint32_t index);
void rs_share_abandon(rs_run *R, uint64_t a);
void rs_start_waiting(rs_run *R, rs_replica *P);
void rs_submit(rs_run *R, uint32_t call, uint64_t a, double t, double service);
void rs_read_answered(rs_run *R, uint32_t call, uint64_t a);
void rs_occ_write(rs_run *R, uint32_t call, uint64_t a);
void rs_occ_commit(rs_run *R, uint32_t call, uint64_t a);
void rs_finish_slot(rs_run *R, uint32_t call, uint64_t a);
void rs_wait_expired(rs_run *R, uint32_t call, uint64_t a);
void rs_server_done(rs_run *R, uint32_t call, uint64_t a, int code);
int rs_run_loop(rs_run *R, uint64_t *stop_arg);

#endif
