/* retrysim's native engine: the send-hear-decide loop of retrysim/sim/engine.py, compiled.
 *
 * It runs the same model as the Python engine for the scenarios the lowering
 * (retrysim/sim/native_lower.py) accepts: one tier, one replica, no pools or network, no
 * guards or hedging, the ideal or queue service, the fault strategies of faults.py, and a
 * policy whose strategies are tenacity's mirrored ones. It schedules the same events in the
 * same order, draws the same counter-based numbers and does the same float arithmetic in the
 * same order, so its records are the Python engine's byte for byte (tests/test_native.py
 * proves it against tenacity's own iter()). Whatever it does not model runs in Python.
 */
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
       EV_REACH_SERVER, EV_TIMEOUT_DUE, EV_DELIVERED };
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
    int64_t reads;        /* occ: 1 when a read precedes the write (read_then_write) */
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
    const int32_t *gates, *spikes, *resets;
    Py_ssize_t n_gates, n_spikes, n_resets;
    /* the policy */
    rs_policy policy;
    int32_t stop_root, wait_root;
    const uint8_t *verdicts;
    int served_judged, none_code, answer_base, timeout_code, rate_limited_code;
    /* the server */
    rs_server server;
    int64_t slots, busy, in_flight;
    double tokens, last;           /* a rate limit's bucket */
    rs_waiter *waiting;            /* a FIFO; a lock's expired waiters stay as tombstones */
    size_t wait_head, wait_size, wait_capacity, waiters;  /* waiters: live ones */
    uint8_t *queued;               /* 1 while attempt row a waits (a lock's, processor sharing's) */
    size_t queued_size;
    /* occ: the record's version; each attempt's version read and write's service time */
    int64_t version;
    rs_rows occ;                   /* per attempt row: {int64 version read, double write time} */
    rs_share server_share;         /* processor sharing's */
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
static void at_with(rs_run *R, double t, unsigned kind, uint32_t call, uint64_t a, int code,
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

static void send(rs_run *R, uint32_t call);
static void respond(rs_run *R, uint32_t call, uint64_t a, int code, double hint);
static void submit(rs_run *R, uint32_t call, uint64_t a, double t, double service);
static int flag_room(uint8_t **flags, size_t *size, uint64_t a);
static void share_add(rs_run *R, uint32_t index, double now, double work, rs_job job);

/* -- an attempt's phases (retrysim/sim/attempt.py) ------------------------------------------ */

/* Phase 2, the door: PASS, BLACKHOLE or the code it fails with, and that gate's hint. */
static int gate_verdict(rs_run *R, double t, uint64_t key, uint64_t n, double *hint) {
    *hint = NAN;
    for (Py_ssize_t g = 0; g < R->n_gates; g++) {
        int verdict = rs_gate(&R->faults, R->gates[g], t, key, n);
        if (verdict != RS_PASS) {
            *hint = R->faults.items[R->gates[g]].hint;  /* FaultPlan.hint: that gate's */
            return verdict;
        }
    }
    return RS_PASS;
}

/* Phase 3: the latency draw plus the spikes (their sum first, as FaultPlan sums them). */
static double service_time(rs_run *R, double t, uint64_t key, uint64_t n) {
    double service = rs_sample(&R->faults.samplers[0], R->faults.table, rs_unit(R->latency_key, key, n));
    if (R->n_spikes) {
        double extra = 0.0;
        for (Py_ssize_t s = 0; s < R->n_spikes; s++) extra = extra + rs_extra(&R->faults, R->spikes[s], t, key, n);
        service = service + extra;
    }
    return service;
}

/* Phase 4: the share of the service time after which a reset cuts in (-1: none), its code. */
static double reset_share(rs_run *R, double t, uint64_t key, uint64_t n, int *code) {
    for (Py_ssize_t r = 0; r < R->n_resets; r++) {
        double share = rs_reset(&R->faults, R->resets[r], t, key, n);
        if (share >= 0.0) {
            *code = R->faults.items[R->resets[r]].code;
            return share;
        }
    }
    return -1.0;
}

/* The call ends now (engine._end_call); a closed loop's client calls again after thinking. */
static void end_call(rs_run *R, uint32_t call, int outcome, int error) {
    rs_call *c = call_row(R, call);
    c->end = R->now;
    c->outcome = (uint8_t)outcome;
    c->error = (uint8_t)error;
    R->ended++;
    double limit = R->calls_per_client;
    if (limit == 0 || (double)c->index + 1 >= limit) return;
    double start = R->now + R->think_time;
    if (start < R->duration) at(R, start, EV_NEXT_CALL, c->client, (uint64_t)c->index + 1, 0);
}

/* FastDecider.decide for a policy of mirrors (a verdict per code): the seconds to wait, or
 * SUCCEEDED_NOW / GAVE_UP_NOW. */
static double decide(rs_run *R, uint32_t call, int code, double hint) {
    if (code == 0) {
        if (!R->served_judged) return SUCCEEDED_NOW;
        code = R->none_code;
    }
    rs_live *live = live_of(R, call);
    if (!R->verdicts[code]) return code < R->answer_base ? GAVE_UP_NOW : SUCCEEDED_NOW;
    rs_state s;
    s.stream = live->stream;
    s.start = call_row(R, call)->start;
    s.outcome_time = R->now;
    rs_call *c = call_row(R, call);
    s.attempt_number = c->attempts;
    s.error_code = (uint8_t)code;
    s.upcoming_sleep = 0.0;
    /* Only RateLimited carries its hint (failures.make_error); _valid_hint's finite, >= 0. */
    s.hint = code == R->rate_limited_code && isfinite(hint) && hint >= 0.0 ? hint : NAN;
    s.previous = R->remembers ? (double *)(R->remembered.rows + (size_t)call * R->remembered.width) : NULL;
    double sleep = rs_wait(&R->policy, R->wait_root, &s);
    s.upcoming_sleep = sleep;
    live->stream = s.stream;
    if (rs_stop(&R->policy, R->stop_root, &s)) return GAVE_UP_NOW;
    c->attempts++;
    return sleep;
}

/* The client hears attempt a's answer now (engine._hear): record it, decide what follows. */
static void release(rs_run *R, uint64_t a, int code);

static void hear(rs_run *R, uint32_t call, uint64_t a, int code, int outcome, double hint) {
    if (R->connected) release(R, a, code);  /* its connection goes back to its pool */
    rs_attempt *row = attempt_row(R, a);
    row->end = R->now;
    row->error = (uint8_t)code;
    row->outcome = (uint8_t)(code == 0 ? OUT_OK : (outcome ? outcome : OUT_FAILED));
    double wait = decide(R, call, code, hint);
    if (wait >= 0) {
        if (code == 0) {
            row->error = (uint8_t)R->none_code;
            row->outcome = OUT_FAILED;
        }
        row->wait = wait;
        at(R, R->now + wait, EV_RETRY, call, 0, 0);
    } else if (wait == SUCCEEDED_NOW) {
        if (code >= R->answer_base) row->outcome = OUT_OK;
        end_call(R, call, CALL_SUCCEEDED, 0);
    } else {
        if (code == 0) {
            row->error = (uint8_t)(code = R->none_code);
            row->outcome = OUT_FAILED;
        }
        end_call(R, call, CALL_GAVE_UP, code);
    }
}

/* -- the network, the pools and the client CPU (retrysim/sim/connections.py, connected.py) -- */

static inline uint64_t key_of(rs_run *R, uint32_t call) {
    rs_call *c = call_row(R, call);
    return ((uint64_t)c->client << RS_CALL_KEY_SHIFT) | c->index;
}

static inline uint64_t draw_index(rs_run *R, uint64_t a) { return attempt_row(R, a)->attempt; }

/* Connections._draw: an rtt draw of a stream (0 without a network). */
static double net_draw(rs_run *R, uint64_t stream, uint64_t key, uint64_t n) {
    if (R->net.rtt < 0) return 0.0;
    return rs_sample(&R->faults.samplers[R->net.rtt], R->faults.table, rs_unit(stream, key, n));
}

static double leg_out(rs_run *R, uint64_t key, uint64_t n) {
    return net_draw(R, R->net.rtt_key, key, n) / 2;
}

static double leg_back(rs_run *R, uint64_t key, uint64_t n) {
    return net_draw(R, R->net.per_leg ? R->net.back_key : R->net.rtt_key, key, n) / 2;
}

static double round_trip(rs_run *R, uint64_t key, uint64_t n) {
    if (R->net.per_leg) return leg_out(R, key, n) + leg_back(R, key, n);
    return net_draw(R, R->net.rtt_key, key, n);
}

/* Engine.round_trip: an occ read's answer back and its write out (0 without connections). */
static double read_to_write(rs_run *R, uint32_t call, uint64_t a) {
    if (!R->connected) return 0.0;
    uint64_t key = key_of(R, call), n = draw_index(R, a);
    if (!R->net.per_leg) return net_draw(R, R->net.rtt_key, key, n);
    double back = net_draw(R, R->net.read_back_key, key, n) / 2;
    return back + net_draw(R, R->net.write_out_key, key, n) / 2;
}

static inline int64_t cpu_index(rs_run *R, uint32_t call) {
    int64_t cpus = R->net.cpus;
    return (int64_t)call_row(R, call)->client % R->net.processes % cpus;
}

/* Cpu.run: work queued at now ends after the work before it (FIFO). */
static double cpu_run(rs_run *R, int64_t cpu, double now, double seconds) {
    double free_at = R->cpu_free_at[cpu];
    double done = (now > free_at ? now : free_at) + seconds;
    R->cpu_free_at[cpu] = done;
    return done;
}

static int cpu_work(rs_run *R, int64_t sampler, uint64_t stream, uint64_t key, uint64_t n,
                    double *seconds) {
    if (sampler < 0) return 0;
    *seconds = rs_sample(&R->faults.samplers[sampler], R->faults.table, rs_unit(stream, key, n));
    return 1;
}

/* Connections.share: the work joins the client's shared CPU; the step follows when done. */
static void cpu_share(rs_run *R, uint32_t call, double now, double work, rs_job job) {
    share_add(R, (uint32_t)cpu_index(R, call) + 1, now, work, job);
}

static void push_sorted(double *values, size_t *n, double value) {  /* bisect.insort */
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (value < values[mid]) hi = mid;
        else lo = mid + 1;
    }
    memmove(values + lo + 1, values + lo, (*n - lo) * sizeof(double));
    values[lo] = value;
    (*n)++;
}

static size_t count_at_most(const double *values, size_t n, double t) {  /* bisect_right */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t < values[mid]) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Connections._let_in: when a connect sent at now finds fewer than backlog connects opening. */
static double let_in(rs_run *R, double now) {
    size_t done = count_at_most(R->opened, R->n_opened, now);
    if (done) {
        memmove(R->opened, R->opened + done, (R->n_opened - done) * sizeof(double));
        memmove(R->let_ins, R->let_ins + done, (R->n_let_ins - done) * sizeof(double));
        R->n_opened -= done;
        R->n_let_ins -= done;
    }
    double t = now, delay = R->net.syn_retry;
    while ((int64_t)(count_at_most(R->let_ins, R->n_let_ins, t) -
                     count_at_most(R->opened, R->n_opened, t)) >= R->net.backlog) {
        t += delay;
        delay *= 2;
    }
    return t;
}

/* Connections.connect_time: the handshake's CPU (a FIFO's), the network's connect draw, and
 * with an accept backlog the SYN retries first. */
static double connect_time(rs_run *R, uint32_t call, double now, uint64_t key, uint64_t n) {
    double seconds = 0.0, work;
    if (R->net.connect >= 0)
        seconds = rs_sample(&R->faults.samplers[R->net.connect], R->faults.table,
                            rs_unit(R->net.connect_key, key, n));
    if (!R->net.shared_cpu && cpu_work(R, R->net.connect_cpu, R->net.connect_cpu_key, key, n, &work))
        seconds += cpu_run(R, cpu_index(R, call), now, work) - now;
    if (R->net.backlog < 0) return seconds;
    double in = let_in(R, now);
    if (R->n_let_ins == R->let_capacity) {
        size_t capacity = R->let_capacity ? 2 * R->let_capacity : 256;
        double *l = realloc(R->let_ins, capacity * sizeof(double));
        if (l != NULL) R->let_ins = l;
        double *o = realloc(R->opened, capacity * sizeof(double));
        if (o != NULL) R->opened = o;
        if (l == NULL || o == NULL) {
            R->failed = 1;
            return seconds;
        }
        R->let_capacity = capacity;
    }
    push_sorted(R->let_ins, &R->n_let_ins, in);
    push_sorted(R->opened, &R->n_opened, in + seconds);
    return in - now + seconds;
}

static int pool_take(rs_pool *pool, int64_t size) {  /* Pool.take: 1 open, 0 closed, -1 wait */
    if (pool->idle_open) {
        pool->idle_open--;
        pool->in_use++;
        return 1;
    }
    if (size < 0 || pool->in_use + pool->idle_open < size) {
        pool->in_use++;
        return 0;
    }
    return -1;
}

static void transmit(rs_run *R, uint32_t call, uint64_t a, int verdict, double hint);
static void connect(rs_run *R, uint32_t call, uint64_t a, int verdict, double hint, double began);

/* ConnectedPath._connection: attempt a, at its pool since arrived, has a connection now. */
static void connection(rs_run *R, uint32_t call, uint64_t a, int64_t pool, int got, double arrived) {
    double t = R->now;
    attempt_row(R, a)->pool_wait = t - arrived;
    if (flag_room((uint8_t **)&R->holding, &R->holding_size, (a + 1) * sizeof(int32_t)) < 0) {
        R->failed = 1;
        return;
    }
    R->holding[a] = (int32_t)pool + 1;
    uint64_t key = key_of(R, call), n = draw_index(R, a);
    double hint = NAN;
    int verdict = gate_verdict(R, t, key, n, &hint);  /* faults judge it as it is sent */
    if (verdict <= 0) hint = NAN;
    if (got == 1) {
        transmit(R, call, a, verdict, hint);
        return;
    }
    R->stats[0]++;
    double work;
    if (R->net.shared_cpu && cpu_work(R, R->net.connect_cpu, R->net.connect_cpu_key, key, n, &work)) {
        rs_job job = {0};
        job.row = a;
        job.call = call;
        job.code = verdict;
        job.hint = hint;
        job.began = t;
        job.step = STEP_CONNECT;
        cpu_share(R, call, t, work, job);
    } else {
        connect(R, call, a, verdict, hint, t);
    }
}

/* ConnectedPath._to_pool: the attempt takes a connection of its process's pool, or queues. */
static void to_pool(rs_run *R, uint32_t call, uint64_t a) {
    if (attempt_row(R, a)->outcome != OUT_OPEN) return;  /* it timed out on the CPU */
    int64_t index = (int64_t)call_row(R, call)->client % R->net.processes;
    rs_pool *pool = &R->pools[index];
    int got = pool->head >= 0 ? -1 : pool_take(pool, R->net.pool_size);
    if (got < 0) {
        R->stats[3]++;
        int64_t w = R->free_waiter;
        if (w >= 0) {
            R->free_waiter = R->pool_waiters[w].next;
        } else {
            if (R->n_pool_waiters == R->pool_waiters_capacity) {
                size_t capacity = R->pool_waiters_capacity ? 2 * R->pool_waiters_capacity : 1024;
                rs_pool_waiter *grown = realloc(R->pool_waiters, capacity * sizeof(rs_pool_waiter));
                if (grown == NULL) {
                    R->failed = 1;
                    return;
                }
                R->pool_waiters = grown;
                R->pool_waiters_capacity = capacity;
            }
            w = (int64_t)R->n_pool_waiters++;
        }
        R->pool_waiters[w] = (rs_pool_waiter){call, a, R->now, -1};
        if (pool->tail >= 0) R->pool_waiters[pool->tail].next = w;
        else pool->head = w;
        pool->tail = w;
        return;
    }
    connection(R, call, a, index, got, R->now);
}

/* ConnectedPath._release: the attempt is answered; its connection goes back to its pool,
 * to the first attempt still waiting there. */
static void release(rs_run *R, uint64_t a, int code) {
    if (a * sizeof(int32_t) >= R->holding_size || !R->holding[a]) return;
    int64_t index = R->holding[a] - 1;
    R->holding[a] = 0;
    rs_pool *pool = &R->pools[index];
    pool->in_use--;
    if (!R->closes[code]) pool->idle_open++;
    while (pool->head >= 0) {
        int64_t w = pool->head;
        rs_pool_waiter waiter = R->pool_waiters[w];
        if (attempt_row(R, waiter.row)->outcome == OUT_OPEN) {
            int got = pool_take(pool, R->net.pool_size);
            if (got < 0) return;
            pool->head = waiter.next;
            if (pool->head < 0) pool->tail = -1;
            R->pool_waiters[w].next = R->free_waiter;
            R->free_waiter = w;
            connection(R, waiter.call, waiter.row, index, got, waiter.arrived);
            pool = &R->pools[index];
        } else {  /* it timed out in the queue */
            pool->head = waiter.next;
            if (pool->head < 0) pool->tail = -1;
            R->pool_waiters[w].next = R->free_waiter;
            R->free_waiter = w;
        }
    }
}

/* ConnectedPath._connect: open the attempt's connection, begun at began. */
static void connect(rs_run *R, uint32_t call, uint64_t a, int verdict, double hint, double began) {
    double t = R->now;
    uint64_t key = key_of(R, call), n = draw_index(R, a);
    double seconds = t - began + connect_time(R, call, t, key, n);
    double limit = R->net.connect_timeout;
    if (!isnan(limit) && (verdict == RS_BLACKHOLE || seconds > limit)) {
        double due = began + limit;
        at(R, t > due ? t : due, EV_CONNECT_TIMED_OUT, call, a, 0);
    } else if (verdict > 0 && R->fails_connect[verdict]) {  /* refused: the handshake says so */
        R->stats[1]++;
        at_with(R, began + seconds, EV_ANSWER_IF_OPEN, call, a, (int16_t)verdict, hint);
    } else if (verdict != RS_BLACKHOLE) {
        at_with(R, began + seconds, EV_TRANSMIT, call, a, (int16_t)verdict, hint);
    }
}

/* ConnectedPath._transmit: the request goes over the open connection. */
static void transmit(rs_run *R, uint32_t call, uint64_t a, int verdict, double hint) {
    if (attempt_row(R, a)->outcome != OUT_OPEN) return;  /* it gave up while connecting */
    uint64_t key = key_of(R, call), n = draw_index(R, a);
    if (verdict > 0) {  /* the error comes back after the round trip */
        at_with(R, R->now + round_trip(R, key, n), EV_ANSWER_IF_OPEN, call, a, (int16_t)verdict, hint);
    } else if (verdict != RS_BLACKHOLE) {
        at(R, R->now + leg_out(R, key, n), EV_REACH_SERVER, call, a, 0);
    }
}

static void submit(rs_run *R, uint32_t call, uint64_t a, double t, double service);

/* ConnectedPath._reach_server: service time, a reset and its news back, the server. */
static void reach_server(rs_run *R, uint32_t call, uint64_t a) {
    double t = R->now;
    uint64_t key = key_of(R, call), n = draw_index(R, a);
    double service = service_time(R, t, key, n);
    int code;
    double share = reset_share(R, t, key, n, &code);
    if (share >= 0.0) {
        double back = leg_back(R, key, n);
        at(R, t + share * service + back, EV_RESET, call, a, (int16_t)code);
    }
    submit(R, call, a, t, service);
}

/* ConnectedPath._send_connected: the client's timeout, then the process's CPU, the pool. */
static void send_connected(rs_run *R, uint32_t call, uint64_t a) {
    double now = R->now, work;
    if (R->has_timeout) at(R, now + R->timeout, EV_TIMEOUT_DUE, call, a, 0);
    uint64_t key = key_of(R, call), n = draw_index(R, a);
    if (!cpu_work(R, R->net.attempt_cpu, R->net.cpu_key, key, n, &work)) {
        to_pool(R, call, a);
    } else if (R->net.shared_cpu) {
        rs_job job = {0};
        job.row = a;
        job.call = call;
        job.step = STEP_TO_POOL;
        cpu_share(R, call, now, work, job);
    } else {
        at(R, cpu_run(R, cpu_index(R, call), now, work), EV_TO_POOL, call, a, 0);
    }
}

/* A shared CPU's work is done: the step that follows it (connections._resume). */
static void cpu_done(rs_run *R, const rs_job *job) {
    if (job->step == STEP_TO_POOL) to_pool(R, job->call, job->row);
    else connect(R, job->call, job->row, job->code, job->hint, job->began);
}

/* Engine.respond: the server answers now; the client hears it after the trip back. */
static void respond(rs_run *R, uint32_t call, uint64_t a, int code, double hint) {
    if (R->connected) {
        double back = leg_back(R, key_of(R, call), draw_index(R, a));
        if (back > 0) {
            at_with(R, R->now + back, EV_DELIVERED, call, a, (int16_t)code, hint);
            return;
        }
    }
    hear(R, call, a, code, 0, hint);
}

/* -- the server ------------------------------------------------------------------------- */

/* Room for a byte flag of attempt row a (flags by row, zero until set). */
static int flag_room(uint8_t **flags, size_t *size, uint64_t a) {
    if (a < *size) return 0;
    size_t grown_size = *size ? 2 * *size : 4096;
    while (grown_size <= a) grown_size *= 2;
    uint8_t *grown = realloc(*flags, grown_size);
    if (grown == NULL) return -1;
    memset(grown + *size, 0, grown_size - *size);
    *flags = grown;
    *size = grown_size;
    return 0;
}

static int enqueue(rs_run *R, uint32_t call, uint64_t a, double service) {
    if (R->wait_size == R->wait_capacity) {
        size_t capacity = R->wait_capacity ? 2 * R->wait_capacity : 1024;
        rs_waiter *grown = malloc(capacity * sizeof(rs_waiter));
        if (grown == NULL) return -1;
        for (size_t i = 0; i < R->wait_size; i++)
            grown[i] = R->waiting[(R->wait_head + i) % R->wait_capacity];
        free(R->waiting);
        R->waiting = grown;
        R->wait_head = 0;
        R->wait_capacity = capacity;
    }
    R->waiting[(R->wait_head + R->wait_size) % R->wait_capacity] = (rs_waiter){call, a, service};
    R->wait_size++;
    R->waiters++;
    if (R->server.kind == SERVER_LOCK || R->server.kind == SERVER_SHARING) {
        if (flag_room(&R->queued, &R->queued_size, a) < 0) return -1;
        R->queued[a] = 1;
    }
    return 0;
}

/* -- processor sharing (retrysim/sim/sharing.py): the server's cores, a client CPU ----------- */

static inline int job_before(const rs_job *x, const rs_job *y) {
    return x->tag < y->tag || (x->tag == y->tag && x->sequence < y->sequence);
}

static int jobs_push(rs_share *sh, rs_job job) {
    if (sh->n == sh->capacity) {
        size_t capacity = sh->capacity ? 2 * sh->capacity : 1024;
        rs_job *grown = realloc(sh->jobs, capacity * sizeof(rs_job));
        if (grown == NULL) return -1;
        sh->jobs = grown;
        sh->capacity = capacity;
    }
    size_t i = sh->n++;
    while (i > 0) {
        size_t parent = (i - 1) >> 1;
        if (!job_before(&job, &sh->jobs[parent])) break;
        sh->jobs[i] = sh->jobs[parent];
        i = parent;
    }
    sh->jobs[i] = job;
    return 0;
}

static void jobs_pop(rs_share *sh) {
    rs_job last = sh->jobs[--sh->n];
    size_t n = sh->n, i = 0;
    if (n == 0) return;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && job_before(&sh->jobs[child + 1], &sh->jobs[child])) child++;
        if (!job_before(&sh->jobs[child], &last)) break;
        sh->jobs[i] = sh->jobs[child];
        i = child;
    }
    sh->jobs[i] = last;
}

static inline int job_present(const rs_share *sh, const rs_job *job) {
    return !sh->keyed || sh->present[job->row];
}

static double share_rate(const rs_share *sh) {  /* min(1.0, cores / n) */
    if (!sh->count) return 0.0;
    double each = sh->cores / (double)sh->count;
    return each < 1.0 ? each : 1.0;
}

static void share_advance(rs_share *sh, double now) {
    sh->attained += (now - sh->last) * share_rate(sh);
    sh->last = now;
}

/* Which sharing an EV_SHARED_DONE is for: 0 the server's, i + 1 client CPU i. */
static inline rs_share *share_of(rs_run *R, uint32_t index) {
    return index == 0 ? &R->server_share : &R->cpus[index - 1];
}

/* Sharing._reschedule: the one completion event, for the smallest tag still present (the
 * one pending before is dropped when it surfaces: its sequence is no longer the pending). */
static void share_reschedule(rs_run *R, rs_share *sh, uint32_t index) {
    if (sh->settling) return;
    sh->has_pending = 0;
    while (sh->n && !job_present(sh, &sh->jobs[0])) jobs_pop(sh);
    if (!sh->count) {
        sh->n = 0;
        sh->attained = 0.0;
        return;
    }
    double delay = (sh->jobs[0].tag - sh->attained) / share_rate(sh);
    delay = delay > 0.0 ? delay : 0.0;
    sh->pending_seq = R->heap.seq;
    sh->has_pending = 1;
    at(R, sh->last + delay, EV_SHARED_DONE, index, 0, 0);
}

static void share_add(rs_run *R, uint32_t index, double now, double work, rs_job job) {
    rs_share *sh = share_of(R, index);
    share_advance(sh, now);
    job.tag = sh->attained + work;
    job.sequence = sh->sequence++;
    if (jobs_push(sh, job) < 0 || (sh->keyed && flag_room(&sh->present, &sh->present_size, job.row) < 0)) {
        R->failed = 1;
        return;
    }
    if (sh->keyed) sh->present[job.row] = 1;
    sh->count++;
    share_reschedule(R, sh, index);
}

static void finish_slot(rs_run *R, uint32_t call, uint64_t a);
static void cpu_done(rs_run *R, const rs_job *job);

/* Sharing._complete: every job whose tag the attained work has reached is done. */
static void share_complete(rs_run *R, uint32_t index) {
    rs_share *sh = share_of(R, index);
    sh->has_pending = 0;
    if (!sh->n) return;
    share_advance(sh, R->now);
    if (sh->jobs[0].tag > sh->attained) sh->attained = sh->jobs[0].tag;
    int outer = sh->settling;
    sh->settling = 1;
    while (sh->n && sh->jobs[0].tag <= sh->attained) {
        rs_job job = sh->jobs[0];
        jobs_pop(sh);
        if (job_present(sh, &job)) {
            if (sh->keyed) sh->present[job.row] = 0;
            sh->count--;
            if (index == 0) finish_slot(R, job.call, job.row);
            else cpu_done(R, &job);
            sh = share_of(R, index);  /* (the CPUs' array does not move; kept for clarity) */
        }
    }
    sh->settling = outer;
    share_reschedule(R, sh, index);
}

/* ProcessorSharingServer.abandon: with cancel_abandoned, the request leaves at once. */
static void start_waiting(rs_run *R);
static void share_abandon(rs_run *R, uint64_t a) {
    rs_share *sh = &R->server_share;
    if (!R->server.cancel_abandoned) return;
    if (a < R->queued_size && R->queued[a]) {  /* taken out of the FIFO: nothing used */
        R->queued[a] = 0;
        R->waiters--;
        return;
    }
    if (a >= sh->present_size || !sh->present[a]) return;
    int outer = sh->settling;
    sh->settling = 1;
    share_advance(sh, R->now);
    sh->present[a] = 0;
    sh->count--;
    R->busy--;
    start_waiting(R);
    sh->settling = outer;
    share_reschedule(R, sh, 0);
}

/* A slot's request starts being served at t: for its service time, or sharing the cores. */
static void serve(rs_run *R, uint32_t call, uint64_t a, double t, double service) {
    if (R->server.kind == SERVER_SHARING) {
        rs_job job = {0};
        job.row = a;
        job.call = call;
        share_add(R, 0, t, service, job);
    } else {
        at(R, t + service, EV_FINISH, call, a, 0);
    }
}

/* SlotServer._start_waiting: free slots take the waiters in order. */
static void start_waiting(rs_run *R) {
    while (R->waiters && R->busy < R->slots) {
        rs_waiter w = R->waiting[R->wait_head];
        R->wait_head = (R->wait_head + 1) % R->wait_capacity;
        R->wait_size--;
        if (R->queued != NULL) {
            if (!R->queued[w.row]) continue;  /* a lock waiter whose wait expired */
            R->queued[w.row] = 0;
        }
        R->waiters--;
        if (R->server.drop_abandoned && attempt_row(R, w.row)->outcome != OUT_OPEN) continue;
        R->busy++;
        serve(R, w.call, w.row, R->now, w.service);
    }
}

static void server_done(rs_run *R, uint32_t call, uint64_t a, int code);

/* The server model takes attempt a's request at t (service.py's submit of each model). */
static void submit(rs_run *R, uint32_t call, uint64_t a, double t, double service) {
    const rs_server *spec = &R->server;
    switch (spec->kind) {
    case SERVER_IDEAL:  /* Server.submit: schedule_done */
        R->pending_done = t + service;
        at(R, t + service, EV_DONE, call, a, 0);
        return;
    case SERVER_LOAD_LATENCY: {
        double busy = service + spec->per_request * (double)R->in_flight;
        R->in_flight++;
        at(R, t + busy, EV_LOAD_DONE, call, a, 0);
        return;
    }
    case SERVER_RATE_LIMITED: {
        double refilled = R->tokens + (t - R->last) * spec->rate;
        R->tokens = refilled < spec->burst ? refilled : spec->burst;  /* min(burst, refilled) */
        R->last = t;
        if (R->tokens >= 1.0 - 1e-9) {
            double left = R->tokens - 1.0;
            R->tokens = left > 0.0 ? left : 0.0;  /* max(0.0, left) */
            R->pending_done = t + service;
            at(R, t + service, EV_DONE, call, a, 0);
            return;
        }
        if (spec->rejection != R->rate_limited_code) {
            respond(R, call, a, (int)spec->rejection, NAN);
            return;
        }
        double exact = (1.0 - R->tokens) / spec->rate, hint = NAN;
        if (spec->hint_mode == HINT_SECONDS) {
            double up = ceil(exact);
            hint = up > 1 ? up : 1.0;
        } else if (spec->hint_mode == HINT_EXACT) {
            hint = exact;
        }
        respond(R, call, a, (int)R->rate_limited_code, hint);
        return;
    }
    case SERVER_OCC: {
        if (rs_rows_reserve(&R->occ, a + 1) < 0) {
            R->failed = 1;
            return;
        }
        if (R->occ.size < a + 1) R->occ.size = a + 1;
        double *write_time = (double *)(R->occ.rows + a * R->occ.width) + 1;
        int64_t *version = (int64_t *)(R->occ.rows + a * R->occ.width);
        if (spec->reads) {  /* the read first; the write one round trip after its answer */
            rs_call *c = call_row(R, call);
            uint64_t key = ((uint64_t)c->client << RS_CALL_KEY_SHIFT) | c->index;
            double u = rs_unit(R->server.server_key, key, attempt_row(R, a)->attempt);
            *write_time = service;
            at(R, t + rs_sample(&R->faults.samplers[1], R->faults.table, u), EV_READ_ANSWERED, call, a, 0);
            return;
        }
        *version = R->version;
        at(R, t + service, EV_COMMIT, call, a, 0);
        return;
    }
    }
    /* SERVER_QUEUE, SERVER_LOCK and SERVER_SHARING: SlotServer's admission */
    if (R->busy < R->slots) {
        R->busy++;
        serve(R, call, a, t, service);
    } else if ((int64_t)R->waiters < spec->queue_limit) {
        if (enqueue(R, call, a, service) < 0) R->failed = 1;
        else if (spec->kind == SERVER_LOCK && !isnan(spec->wait_timeout))  /* LockServer._queued */
            at(R, R->now + spec->wait_timeout, EV_WAIT_EXPIRED, call, a, 0);
    } else {
        respond(R, call, a, (int)spec->reject_code, NAN);
    }
}

/* OccServer._read_answered: the read answers with the version now; the write arrives one
 * round trip later (none without a network). */
static void read_answered(rs_run *R, uint32_t call, uint64_t a) {
    *(int64_t *)(R->occ.rows + a * R->occ.width) = R->version;
    at(R, R->now + read_to_write(R, call, a), EV_WRITE, call, a, 0);
}

/* OccServer._write: a compare-and-set, unless the client stopped waiting before it. */
static void occ_write(rs_run *R, uint32_t call, uint64_t a) {
    if (attempt_row(R, a)->outcome != OUT_OPEN) return;
    int64_t read = *(int64_t *)(R->occ.rows + a * R->occ.width);
    double write_time = *((double *)(R->occ.rows + a * R->occ.width) + 1);
    int code = read == R->version ? 0 : (int)R->server.reject_code;
    if (code == 0) R->version++;
    R->pending_done = R->now + write_time;
    at(R, R->now + write_time, EV_DONE, call, a, (int16_t)code);
}

static void occ_commit(rs_run *R, uint32_t call, uint64_t a) {
    if (*(int64_t *)(R->occ.rows + a * R->occ.width) == R->version) {
        R->version++;
        server_done(R, call, a, 0);
    } else {
        server_done(R, call, a, (int)R->server.reject_code);
    }
}

/* SlotServer._finish: a slot's work is done; the next waiter takes it. */
static void finish_slot(rs_run *R, uint32_t call, uint64_t a) {
    R->busy--;
    server_done(R, call, a, 0);
    start_waiting(R);
}

/* A lock waiter still in the FIFO when its wait timeout passes fails with busy_error. */
static void wait_expired(rs_run *R, uint32_t call, uint64_t a) {
    if (a < R->queued_size && R->queued[a]) {
        R->queued[a] = 0;
        R->waiters--;
        server_done(R, call, a, (int)R->server.reject_code);
    }
}

/* Engine.server_done: the work is done (code 0), or the server failed it; the client hears
 * it if it still waits. */
static void server_done(rs_run *R, uint32_t call, uint64_t a, int code) {
    rs_attempt *row = attempt_row(R, a);
    if (code == 0) {
        row->executed = 1;
        call_row(R, call)->executions++;
    }
    if (row->outcome == OUT_OPEN) respond(R, call, a, code, NAN);
}

/* -- attempts and calls -------------------------------------------------------------------- */

/* Engine._send: one attempt through its phases, door, service time, reset, server, timeout. */
static void send(rs_run *R, uint32_t call) {
    double t = R->now;
    uint64_t n = call_row(R, call)->attempts;
    uint64_t a = R->attempts.size;
    if ((double)a >= R->attempt_limit) {
        if (!R->halted) {
            R->halted = 1;
            R->halted_at = a;
        }
        return;
    }
    if (rs_rows_reserve(&R->attempts, a + 1) < 0) {
        R->failed = 1;
        return;
    }
    R->attempts.size = a + 1;
    rs_call *c = call_row(R, call);
    rs_attempt *row = attempt_row(R, a);
    *row = (rs_attempt){call, c->client, (uint16_t)n, OUT_OPEN, 0, t, NAN, NAN, 0, 0.0, 0, 0};
    if (R->connected) {  /* over the network, the pool and the process's CPU */
        send_connected(R, call, a);
        return;
    }
    uint64_t key = ((uint64_t)c->client << RS_CALL_KEY_SHIFT) | c->index;
    double hint;
    int verdict = gate_verdict(R, t, key, n, &hint);
    if (verdict > 0) {
        hear(R, call, a, verdict, 0, hint);
        return;
    }
    if (verdict == RS_BLACKHOLE) {
        if (R->has_timeout) at(R, t + R->timeout, EV_TIMED_OUT, call, a, 0);
        return;
    }
    double service = service_time(R, t, key, n);
    int code;
    double share = reset_share(R, t, key, n, &code);
    if (share >= 0.0) at(R, t + share * service, EV_RESET, call, a, (int16_t)code);
    R->pending_done = NAN;
    submit(R, call, a, t, service);
    if (R->has_timeout && attempt_row(R, a)->outcome == OUT_OPEN) {
        double done = R->pending_done;
        if (isnan(done) || done > t + R->timeout) at(R, t + R->timeout, EV_TIMED_OUT, call, a, 0);
    }
}

/* Engine._new_call: the call starts now and sends its first attempt. */
static void new_call(rs_run *R, int64_t client, int64_t index) {
    uint64_t id = R->calls.size;
    if (rs_rows_reserve(&R->calls, id + 1) < 0 || rs_rows_reserve(&R->live, id + 1) < 0 ||
        (R->remembers && rs_rows_reserve(&R->remembered, id + 1) < 0)) {
        R->failed = 1;
        return;
    }
    R->calls.size = R->live.size = id + 1;
    if (R->remembers) {
        double *remembered = (double *)(R->remembered.rows + id * R->remembered.width);
        for (int32_t i = 0; i < R->remembers; i++) remembered[i] = NAN;
    }
    *call_row(R, (uint32_t)id) = (rs_call){(uint32_t)id, (uint32_t)client, (uint32_t)index,
                                           R->now, NAN, 1, CALL_UNFINISHED, 0, 0};
    uint64_t key = ((uint64_t)client << RS_CALL_KEY_SHIFT) | (uint64_t)index;
    *live_of(R, (uint32_t)id) = (rs_live){R->jitter_key + key * RS_CALL_STEP};
    send(R, (uint32_t)id);
}

/* Engine._arrive: arrival i and every later one due at the same instant. */
static void arrive(rs_run *R, uint64_t i) {
    double now = R->now;
    for (;;) {
        if (R->open_loop) new_call(R, (int64_t)i % R->clients, (int64_t)i / R->clients);
        else new_call(R, R->first_clients[i], 0);
        i++;
        if (i >= R->n_firsts) return;
        if (R->firsts[i] != now) {
            at(R, R->firsts[i], EV_ARRIVE, 0, i, 0);
            return;
        }
    }
}

/* Engine._timed_out: the client stops waiting; a server that can cancel the work may. */
static void timed_out(rs_run *R, uint32_t call, uint64_t a) {
    if (attempt_row(R, a)->outcome != OUT_OPEN) return;
    hear(R, call, a, R->timeout_code, OUT_TIMED_OUT, NAN);
    if (R->server.kind == SERVER_SHARING) share_abandon(R, a);  /* Server.abandon */
}

static void dispatch(rs_run *R, const rs_event *e) {
    int code = RS_EV_CODE(e);
    switch (RS_EV_KIND(e)) {
    case EV_ARRIVE:
        arrive(R, e->row);
        break;
    case EV_NEXT_CALL:
        new_call(R, e->call, (int64_t)e->row);
        break;
    case EV_RETRY:
        send(R, e->call);
        break;
    case EV_TIMED_OUT:
        timed_out(R, e->call, e->row);
        break;
    case EV_RESET:
        if (attempt_row(R, e->row)->outcome == OUT_OPEN) hear(R, e->call, e->row, code, 0, NAN);
        break;
    case EV_DONE:
        server_done(R, e->call, e->row, code);
        break;
    case EV_FINISH:
        finish_slot(R, e->call, e->row);
        break;
    case EV_READ_ANSWERED:
        read_answered(R, e->call, e->row);
        break;
    case EV_WRITE:
        occ_write(R, e->call, e->row);
        break;
    case EV_COMMIT:
        occ_commit(R, e->call, e->row);
        break;
    case EV_SHARED_DONE:
        share_complete(R, e->call);
        break;
    case EV_TO_POOL:
        to_pool(R, e->call, e->row);
        break;
    case EV_CONNECT_TIMED_OUT:  /* the client library's error, not the caller's timeout */
        if (attempt_row(R, e->row)->outcome == OUT_OPEN) {
            R->stats[2]++;
            hear(R, e->call, e->row, R->timeout_code, 0, NAN);
        }
        break;
    case EV_ANSWER_IF_OPEN:
    case EV_DELIVERED:
        if (attempt_row(R, e->row)->outcome == OUT_OPEN) hear(R, e->call, e->row, code, 0, hint_of(R, e->row));
        break;
    case EV_TRANSMIT:
        transmit(R, e->call, e->row, code, hint_of(R, e->row));
        break;
    case EV_REACH_SERVER:
        reach_server(R, e->call, e->row);
        break;
    case EV_TIMEOUT_DUE:  /* an answer due at the same instant is heard first */
        if (!code && R->heap.size && R->heap.items[0].t == R->now) {
            at(R, R->now, EV_TIMEOUT_DUE, e->call, e->row, 1);
            break;
        }
        timed_out(R, e->call, e->row);
        break;
    case EV_LOAD_DONE:
        R->in_flight--;
        server_done(R, e->call, e->row, 0);
        break;
    case EV_WAIT_EXPIRED:
        wait_expired(R, e->call, e->row);
        break;
    case EV_CAPACITY:  /* QueueServer.capacity_change (other models have no slots to change) */
        if (R->server.kind == SERVER_QUEUE) {
            R->slots = code ? (int64_t)e->row : R->server.slots;
            start_waiting(R);
        }
        break;
    }
}

/* Kernel.run: events in time order until none is left or a limit is reached. */
static int run_loop(rs_run *R, uint64_t *stop_arg) {
    rs_event e;
    while (R->heap.size) {
        rs_heap_pop(&R->heap, &e);
        if (RS_EV_KIND(&e) == EV_SHARED_DONE) {
            rs_share *sh = share_of(R, e.call);
            if (!(sh->has_pending && RS_EV_SEQ(&e) == sh->pending_seq))
                continue;  /* cancelled (Kernel.cancel): it neither runs, moves the clock nor counts */
        }
        if (e.t > R->max_time) return STOP_TIME;
        R->now = e.t;
        dispatch(R, &e);
        if (R->failed) return STOP_ERROR;
        R->events++;
        if (R->events >= R->max_events) return STOP_EVENTS;
        if ((R->events & (R->report_every - 1)) == 0) {
            if (PyErr_CheckSignals() < 0) return STOP_ERROR;
            if (R->progress != Py_None) {
                PyObject *r = PyObject_CallFunction(R->progress, "LLd", (long long)R->ended,
                                                    (long long)R->calls.size, R->now);
                if (r == NULL) return STOP_ERROR;
                Py_DECREF(r);
            }
        }
        if (R->halted) {
            *stop_arg = R->halted_at;
            return STOP_ATTEMPTS;
        }
    }
    return STOP_NONE;
}

/* -- rows handed to numpy ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t size;
    Py_ssize_t exports;
} RowsObject;

static int rows_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    RowsObject *rows = (RowsObject *)self;
    if (PyBuffer_FillInfo(view, self, rows->data, rows->size, 0, flags) < 0) return -1;
    rows->exports++;
    return 0;
}

static void rows_releasebuffer(PyObject *self, Py_buffer *view) {
    (void)view;
    ((RowsObject *)self)->exports--;
}

static void rows_dealloc(PyObject *self) {
    free(((RowsObject *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs rows_as_buffer = {rows_getbuffer, rows_releasebuffer};

static PyTypeObject RowsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "retrysim.sim._native.Rows",
    .tp_doc = "Records written by the native engine (numpy reads them in place).",
    .tp_basicsize = sizeof(RowsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = rows_dealloc,
    .tp_as_buffer = &rows_as_buffer,
};

/* The rows written, shrunk to their size, owned by a Rows object from now on. */
static PyObject *hand_over(rs_rows *r) {
    RowsObject *rows = PyObject_New(RowsObject, &RowsType);
    if (rows == NULL) return NULL;
    size_t bytes = r->size * r->width;
    char *data = r->rows;
    if (bytes && bytes < r->capacity * r->width) {
        char *shrunk = realloc(data, bytes);
        if (shrunk != NULL) data = shrunk;
    }
    rows->data = data;
    rows->size = (Py_ssize_t)bytes;
    rows->exports = 0;
    r->rows = NULL;
    r->size = r->capacity = 0;
    return (PyObject *)rows;
}

/* -- the module ---------------------------------------------------------------------------- */

static const char run_doc[] =
    "run(...) -> (attempt rows, call rows, events, end time, stop kind, stop argument)\n\n"
    "Run one lowered scenario (retrysim/sim/native_lower.py builds the arguments).";

static PyObject *native_run(PyObject *module, PyObject *args) {
    (void)module;
    Py_buffer firsts, first_clients, samplers, faults, gates, spikes, resets, keys, table, nodes,
        children, verdicts, windows, server, network, closes, fails_connect;
    rs_run R;
    memset(&R, 0, sizeof R);
    long long clients, max_events, expected;
    int open_loop, served_judged;
    if (!PyArg_ParseTuple(args, "y*y*pLddddLddKKy*y*y*y*y*y*y*y*y*iiiy*piiiiy*y*y*y*y*pLLO", &firsts,
                          &first_clients, &open_loop, &clients, &R.calls_per_client,
                          &R.think_time, &R.duration, &R.max_time, &max_events,
                          &R.attempt_limit, &R.timeout, &R.jitter_key, &R.latency_key,
                          &samplers, &faults, &gates, &spikes, &resets, &keys, &table, &nodes,
                          &children, &R.stop_root, &R.wait_root, &R.remembers, &verdicts, &served_judged,
                          &R.none_code, &R.answer_base, &R.timeout_code,
                          &R.rate_limited_code, &server, &network, &closes, &fails_connect,
                          &windows, &R.hinted, &expected, &R.report_every, &R.progress))
        return NULL;
    PyObject *result = NULL;
    Py_buffer *held[] = {&firsts, &first_clients, &samplers, &faults, &gates, &spikes, &resets,
                         &keys, &table, &nodes, &children, &verdicts, &windows, &server,
                         &network, &closes, &fails_connect};
    if (verdicts.len != 256 || server.len != (Py_ssize_t)sizeof(rs_server)) {
        PyErr_SetString(PyExc_ValueError, "verdicts: one byte per record code (256); one server");
        goto release;
    }
    memcpy(&R.server, server.buf, sizeof(rs_server));
    if (network.len) {  /* attempts go over connections */
        if (network.len != (Py_ssize_t)sizeof(rs_network) || closes.len != 256 || fails_connect.len != 256) {
            PyErr_SetString(PyExc_ValueError, "network: one row; closes, fails_connect: 256 codes");
            goto release;
        }
        memcpy(&R.net, network.buf, sizeof(rs_network));
        R.connected = 1;
        R.closes = closes.buf;
        R.fails_connect = fails_connect.buf;
        R.free_waiter = -1;
        R.pools = malloc((size_t)R.net.processes * sizeof(rs_pool));
        if (R.net.shared_cpu) R.cpus = calloc((size_t)R.net.cpus, sizeof(rs_share));
        else R.cpu_free_at = calloc((size_t)R.net.cpus, sizeof(double));
        if (R.pools == NULL || (R.cpus == NULL && R.cpu_free_at == NULL)) {
            PyErr_NoMemory();
            goto release;
        }
        for (int64_t p = 0; p < R.net.processes; p++) R.pools[p] = (rs_pool){0, 0, -1, -1};
        for (int64_t c = 0; R.cpus != NULL && c < R.net.cpus; c++) R.cpus[c].cores = 1.0;
    }
    R.occ.width = sizeof(int64_t) + sizeof(double);
    R.server_share.keyed = 1;
    R.server_share.cores = R.server.cores;
    R.slots = R.server.slots;
    R.tokens = R.server.burst;
    R.firsts = firsts.buf;
    R.first_clients = first_clients.buf;
    R.n_firsts = (size_t)(firsts.len / (Py_ssize_t)sizeof(double));
    R.open_loop = open_loop;
    R.clients = clients;
    R.max_events = max_events;
    R.has_timeout = !isnan(R.timeout);
    R.faults.items = faults.buf;
    R.faults.keys = keys.buf;
    R.faults.samplers = samplers.buf;
    R.faults.table = table.buf;
    Py_ssize_t n_faults = faults.len / (Py_ssize_t)sizeof(rs_fault);
    R.faults.counts = calloc(n_faults ? (size_t)n_faults : 1, sizeof(rs_count));
    R.gates = gates.buf;
    R.n_gates = gates.len / (Py_ssize_t)sizeof(int32_t);
    R.spikes = spikes.buf;
    R.n_spikes = spikes.len / (Py_ssize_t)sizeof(int32_t);
    R.resets = resets.buf;
    R.n_resets = resets.len / (Py_ssize_t)sizeof(int32_t);
    R.policy.nodes = nodes.buf;
    R.policy.children = children.buf;
    R.policy.table = table.buf;
    R.verdicts = verdicts.buf;
    R.served_judged = served_judged;
    R.attempts.width = sizeof(rs_attempt);
    R.calls.width = sizeof(rs_call);
    R.live.width = sizeof(rs_live);
    R.remembered.width = (size_t)(R.remembers > 0 ? R.remembers : 1) * sizeof(double);
    if (R.faults.counts == NULL || (expected > 0 && (rs_rows_reserve(&R.calls, (size_t)expected) < 0 ||
                                                     rs_rows_reserve(&R.live, (size_t)expected) < 0))) {
        PyErr_NoMemory();
        goto release;
    }
    /* Capacity windows first (a request arriving at a window's start sees it), then the
     * first arrival: the order engine.run schedules them in. */
    const double *w = windows.buf;
    for (Py_ssize_t i = 0; i < windows.len / (Py_ssize_t)(3 * sizeof(double)); i++) {
        at(&R, w[3 * i], EV_CAPACITY, 0, (uint64_t)w[3 * i + 2], 1);
        if (isfinite(w[3 * i + 1])) at(&R, w[3 * i + 1], EV_CAPACITY, 0, 0, 0);
    }
    if (R.n_firsts) at(&R, R.firsts[0], EV_ARRIVE, 0, 0, 0);
    uint64_t stop_arg = 0;
    int stop = run_loop(&R, &stop_arg);
    if (stop == STOP_ERROR) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto release;
    }
    PyObject *attempt_rows = hand_over(&R.attempts);
    PyObject *call_rows = attempt_rows == NULL ? NULL : hand_over(&R.calls);
    if (call_rows != NULL)
        result = Py_BuildValue("NNLdiK(LLLL)", attempt_rows, call_rows, (long long)R.events,
                               R.now, stop, (unsigned long long)stop_arg, (long long)R.stats[0],
                               (long long)R.stats[1], (long long)R.stats[2], (long long)R.stats[3]);
    else
        Py_XDECREF(attempt_rows);
release:
    for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) PyBuffer_Release(held[i]);
    free(R.faults.counts);
    free(R.heap.items);
    free(R.attempts.rows);
    free(R.calls.rows);
    free(R.live.rows);
    free(R.remembered.rows);
    free(R.waiting);
    free(R.queued);
    free(R.occ.rows);
    free(R.server_share.jobs);
    free(R.server_share.present);
    free(R.pools);
    free(R.pool_waiters);
    free(R.cpu_free_at);
    for (int64_t c = 0; R.cpus != NULL && c < R.net.cpus; c++) free(R.cpus[c].jobs);
    free(R.cpus);
    free(R.holding);
    free(R.let_ins);
    free(R.opened);
    free(R.hints);
    return result;
}

static PyMethodDef native_methods[] = {
    {"run", native_run, METH_VARARGS, run_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native",
    "The native engine's loop (see retrysim/sim/native.py for when it runs).", -1,
    native_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&RowsType) < 0) return NULL;
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) return NULL;
    Py_INCREF(&RowsType);
    if (PyModule_AddObject(module, "Rows", (PyObject *)&RowsType) < 0) {
        Py_DECREF(&RowsType);
        Py_DECREF(module);
        return NULL;
    }
    /* Row widths, which the Python side checks against its dtypes. */
    PyModule_AddIntConstant(module, "ATTEMPT_ROW", (long)sizeof(rs_attempt));
    PyModule_AddIntConstant(module, "CALL_ROW", (long)sizeof(rs_call));
    PyModule_AddIntConstant(module, "FAULT_ROW", (long)sizeof(rs_fault));
    PyModule_AddIntConstant(module, "NODE_ROW", (long)sizeof(rs_node));
    PyModule_AddIntConstant(module, "SAMPLER_ROW", (long)sizeof(rs_sampler));
    PyModule_AddIntConstant(module, "SERVER_ROW", (long)sizeof(rs_server));
    PyModule_AddIntConstant(module, "NETWORK_ROW", (long)sizeof(rs_network));
    return module;
}
