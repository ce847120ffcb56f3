/* The herd model of benchmarks/models.py's run_floor, in plain C: the suite's C floor.
 *
 * Why it exists: the native core's speed needs a yardstick that is not Python. This is what
 * the same model costs when written directly in C, with nothing general about it: one typed
 * binary heap of (time, sequence) events, SplitMix64 draws made as they are needed, and every
 * attempt's record (call, number, start, end, outcome) stored into arrays allocated once.
 * The events are run_floor's: a call sends an attempt (SEND), the server finishes an attempt's
 * work (DONE), the client stops waiting for an attempt (TIMEOUT).
 *
 * Usage (the order of HerdSpec's fields; a timeout of inf waits for ever, a concurrency of 0
 * is the ideal server):
 *   herd CLIENTS CALLS_PER_CLIENT THINK TIMEOUT DURATION ARRIVE_AT OUTAGE_START OUTAGE_END
 *        CONCURRENCY QUEUE_LIMIT MU SIGMA MAX_ATTEMPTS MIN_WAIT MAX_WAIT JITTER SEED
 * Prints one line: calls=N succeeded=N attempts=N cpu_s=S checksum=X, where cpu_s is the
 * process CPU time of the simulation alone (argument parsing and the checksum excluded) and
 * the checksum reads every record back, so that no store can be optimised away.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { SEND, DONE, TIMEOUT };
enum { OPEN, SUCCEEDED, REFUSED, REJECTED, TIMED_OUT };

typedef struct {
    double t;
    uint64_t seq;
    uint32_t kind;
    uint32_t x; /* a call (SEND) or an attempt (DONE, TIMEOUT) */
} event;

typedef struct {
    event *items;
    size_t size, capacity;
    uint64_t seq;
} heap;

static void *need(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL) {
        fputs("herd: out of memory\n", stderr);
        exit(2);
    }
    return p;
}

static inline int before(const event *a, const event *b) {
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(heap *h, double t, uint32_t kind, uint32_t x) {
    if (h->size == h->capacity) {
        h->capacity = h->capacity ? 2 * h->capacity : 1024;
        h->items = realloc(h->items, h->capacity * sizeof(event));
        if (h->items == NULL) {
            fputs("herd: out of memory\n", stderr);
            exit(2);
        }
    }
    event e = {t, h->seq++, kind, x};
    size_t i = h->size++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&e, &h->items[parent])) break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = e;
}

static event pop(heap *h) {
    event top = h->items[0], last = h->items[--h->size];
    size_t n = h->size, i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && before(&h->items[child + 1], &h->items[child])) child++;
        if (!before(&h->items[child], &last)) break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (n) h->items[i] = last;
    return top;
}

/* SplitMix64: the next uniform in [0, 1), and a normal by Box-Muller (its pair's second kept). */
static uint64_t state;
static int has_spare;
static double spare;

static inline double uniform(void) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

static double normal(void) {
    if (has_spare) {
        has_spare = 0;
        return spare;
    }
    double radius = sqrt(-2.0 * log(1.0 - uniform())), angle = 2.0 * M_PI * uniform();
    spare = radius * sin(angle);
    has_spare = 1;
    return radius * cos(angle);
}

typedef struct {
    long clients, calls_per_client, concurrency, queue_limit, max_attempts;
    double think, timeout, duration, arrive_at, outage_start, outage_end;
    double mu, sigma, min_wait, max_wait, jitter;
} spec;

typedef struct {
    /* per call */
    int32_t *call_index, *call_attempts;
    /* per attempt: the records */
    uint32_t *attempt_call;
    uint16_t *attempt_number;
    uint8_t *outcome;
    double *start, *end;
    long calls, attempts, succeeded;
} run;

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A call ended at `now` (heard a success, or gave up): its client's next call, if one is due. */
static void next_call(const spec *s, run *r, heap *h, uint32_t call, double now) {
    if (r->call_index[call] + 1 < s->calls_per_client && now + s->think < s->duration) {
        uint32_t nxt = (uint32_t)r->calls++;
        r->call_index[nxt] = r->call_index[call] + 1;
        r->call_attempts[nxt] = 0;
        push(h, now + s->think, SEND, nxt);
    }
}

static void simulate(const spec *s, run *r) {
    long most_calls = s->clients * s->calls_per_client, most = most_calls * s->max_attempts;
    r->call_index = need(most_calls * sizeof(int32_t));
    r->call_attempts = need(most_calls * sizeof(int32_t));
    r->attempt_call = need(most * sizeof(uint32_t));
    r->attempt_number = need(most * sizeof(uint16_t));
    r->outcome = need(most * sizeof(uint8_t));
    r->start = need(most * sizeof(double));
    r->end = need(most * sizeof(double));
    long slots = s->concurrency, limit = s->queue_limit, busy = 0;
    uint32_t *waiting = need((limit + 1) * sizeof(uint32_t)); /* a ring of queued attempts */
    long head = 0, queued = 0;
    int has_timeout = isfinite(s->timeout);
    heap h = {NULL, 0, 0, 0};
    for (long c = 0; c < s->clients; c++) { /* call c < clients is client c's first call */
        r->call_index[c] = 0;
        r->call_attempts[c] = 0;
        push(&h, s->arrive_at, SEND, (uint32_t)c);
    }
    r->calls = s->clients;
    while (h.size) {
        event e = pop(&h);
        double now = e.t;
        uint32_t call;
        if (e.kind == DONE) { /* the server finished attempt x (heard if still open) */
            if (slots) {
                busy--;
                if (queued) {
                    uint32_t w = waiting[head];
                    head = (head + 1) % (limit + 1);
                    queued--;
                    busy++;
                    push(&h, now + exp(s->mu + s->sigma * normal()), DONE, w);
                }
            }
            if (r->outcome[e.x] != OPEN) continue;
            r->outcome[e.x] = SUCCEEDED;
            r->end[e.x] = now;
            r->succeeded++;
            next_call(s, r, &h, r->attempt_call[e.x], now);
            continue;
        }
        if (e.kind == TIMEOUT) {
            if (r->outcome[e.x] != OPEN) continue;
            r->outcome[e.x] = TIMED_OUT;
            r->end[e.x] = now;
            call = r->attempt_call[e.x];
        } else { /* SEND: call x sends its next attempt now */
            call = e.x;
            uint32_t a = (uint32_t)r->attempts++;
            r->attempt_call[a] = call;
            r->attempt_number[a] = (uint16_t)++r->call_attempts[call];
            r->start[a] = now;
            r->outcome[a] = OPEN;
            if (now < s->outage_start || now >= s->outage_end) {
                if (!slots) {
                    double done = now + exp(s->mu + s->sigma * normal());
                    push(&h, done, DONE, a);
                    if (has_timeout && done > now + s->timeout)
                        push(&h, now + s->timeout, TIMEOUT, a);
                    continue;
                }
                if (busy < slots || queued < limit) {
                    if (busy < slots) {
                        busy++;
                        push(&h, now + exp(s->mu + s->sigma * normal()), DONE, a);
                    } else {
                        waiting[(head + queued++) % (limit + 1)] = a;
                    }
                    if (has_timeout) push(&h, now + s->timeout, TIMEOUT, a);
                    continue;
                }
                r->outcome[a] = REJECTED; /* the queue is full */
            } else {
                r->outcome[a] = REFUSED; /* the outage */
            }
            r->end[a] = now;
        }
        /* The call's latest attempt failed now: retry after the backoff, or give up. */
        long n = r->call_attempts[call];
        if (n < s->max_attempts) {
            double wait = s->min_wait * ldexp(1.0, (int)n - 1) + uniform() * s->jitter;
            push(&h, now + (wait < s->max_wait ? wait : s->max_wait), SEND, call);
        } else {
            next_call(s, r, &h, call, now);
        }
    }
    free(h.items);
    free(waiting);
}

int main(int argc, char **argv) {
    if (argc != 18) {
        fputs("usage: herd CLIENTS CALLS_PER_CLIENT THINK TIMEOUT DURATION ARRIVE_AT "
              "OUTAGE_START OUTAGE_END CONCURRENCY QUEUE_LIMIT MU SIGMA MAX_ATTEMPTS "
              "MIN_WAIT MAX_WAIT JITTER SEED\n",
              stderr);
        return 2;
    }
    spec s = {
        .clients = atol(argv[1]),
        .calls_per_client = atol(argv[2]),
        .think = strtod(argv[3], NULL),
        .timeout = strtod(argv[4], NULL),
        .duration = strtod(argv[5], NULL),
        .arrive_at = strtod(argv[6], NULL),
        .outage_start = strtod(argv[7], NULL),
        .outage_end = strtod(argv[8], NULL),
        .concurrency = atol(argv[9]),
        .queue_limit = atol(argv[10]),
        .mu = strtod(argv[11], NULL),
        .sigma = strtod(argv[12], NULL),
        .max_attempts = atol(argv[13]),
        .min_wait = strtod(argv[14], NULL),
        .max_wait = strtod(argv[15], NULL),
        .jitter = strtod(argv[16], NULL),
    };
    state = strtoull(argv[17], NULL, 10);
    run r = {0};
    double t0 = cpu_now();
    simulate(&s, &r);
    double cpu = cpu_now() - t0;
    double checksum = 0.0;
    for (long a = 0; a < r.attempts; a++)
        checksum += r.end[a] - r.start[a] + r.outcome[a] + r.attempt_number[a] + r.attempt_call[a];
    printf("calls=%ld succeeded=%ld attempts=%ld cpu_s=%.9f checksum=%.17g\n", r.calls,
           r.succeeded, r.attempts, cpu, checksum);
    return 0;
}
