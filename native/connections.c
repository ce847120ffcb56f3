/* The network, the pools and the client CPU (retrysim/sim/connections.py, connected.py): an
 * attempt's way to the server when the scenario models connections. */
#include "run.h"

/* -- the network, the pools and the client CPU (retrysim/sim/connections.py, connected.py) -- */

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
double rs_read_to_write(rs_run *R, uint32_t call, uint64_t a) {
    if (!R->connected) return 0.0;
    uint64_t key = key_of(R, call), n = draw_of(R, a);
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
    rs_share_add(R, (uint32_t)(R->n_replicas + cpu_index(R, call)), now, work, job);
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

static void open_connection(rs_run *R, uint32_t call, uint64_t a, int verdict, double hint, double began);

/* ConnectedPath._connection: attempt a, at its pool since arrived, has a connection now. */
static void connection(rs_run *R, uint32_t call, uint64_t a, int64_t pool, int got, double arrived) {
    double t = R->now;
    attempt_row(R, a)->pool_wait = t - arrived;
    if (rs_flag_room((uint8_t **)&R->holding, &R->holding_size, (a + 1) * sizeof(int32_t)) < 0) {
        R->failed = 1;
        return;
    }
    R->holding[a] = (int32_t)pool + 1;
    uint64_t key = key_of(R, call), n = draw_of(R, a);
    double hint = NAN;
    int verdict = rs_gate_verdict(R, replica_of(R, a), t, key, n, &hint);  /* as it is sent */
    if (verdict <= 0) hint = NAN;
    if (got == 1) {
        rs_transmit(R, call, a, verdict, hint);
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
        open_connection(R, call, a, verdict, hint, t);
    }
}

/* ConnectedPath._to_pool: the attempt takes a connection of its process's pool, or queues. */
void rs_to_pool(rs_run *R, uint32_t call, uint64_t a) {
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
void rs_release(rs_run *R, uint64_t a, int code) {
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
static void open_connection(rs_run *R, uint32_t call, uint64_t a, int verdict, double hint, double began) {
    double t = R->now;
    uint64_t key = key_of(R, call), n = draw_of(R, a);
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
void rs_transmit(rs_run *R, uint32_t call, uint64_t a, int verdict, double hint) {
    if (attempt_row(R, a)->outcome != OUT_OPEN) return;  /* it gave up while connecting */
    uint64_t key = key_of(R, call), n = draw_of(R, a);
    if (verdict > 0) {  /* the error comes back after the round trip */
        at_with(R, R->now + round_trip(R, key, n), EV_ANSWER_IF_OPEN, call, a, (int16_t)verdict, hint);
    } else if (verdict != RS_BLACKHOLE) {
        at(R, R->now + leg_out(R, key, n), EV_REACH_SERVER, call, a, 0);
    }
}


/* ConnectedPath._reach_server: service time, a reset and its news back, the server. */
void rs_reach_server(rs_run *R, uint32_t call, uint64_t a) {
    double t = R->now;
    uint64_t key = key_of(R, call), n = draw_of(R, a);
    rs_replica *P = replica_of(R, a);
    double service = rs_service_time(R, P, t, key, n);
    int code;
    double share = rs_reset_share(R, P, t, key, n, &code);
    if (share >= 0.0) {
        double back = leg_back(R, key, n);
        at(R, t + share * service + back, EV_RESET, call, a, (int16_t)code);
    }
    rs_submit(R, call, a, t, service);
}

/* ConnectedPath._send_connected: the client's timeout, then the process's CPU, the pool. */
void rs_send_connected(rs_run *R, uint32_t call, uint64_t a) {
    double now = R->now, work;
    if (R->has_timeout) at(R, now + R->timeout, EV_TIMEOUT_DUE, call, a, 0);
    uint64_t key = key_of(R, call), n = draw_of(R, a);
    if (!cpu_work(R, R->net.attempt_cpu, R->net.cpu_key, key, n, &work)) {
        rs_to_pool(R, call, a);
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
void rs_cpu_done(rs_run *R, const rs_job *job) {
    if (job->step == STEP_TO_POOL) rs_to_pool(R, job->call, job->row);
    else open_connection(R, job->call, job->row, job->code, job->hint, job->began);
}

/* Engine.respond: the server answers now; the client hears it after the trip back. */
void rs_respond(rs_run *R, uint32_t call, uint64_t a, int code, double hint) {
    if (R->connected) {
        double back = leg_back(R, key_of(R, call), draw_of(R, a));
        if (back > 0) {
            at_with(R, R->now + back, EV_DELIVERED, call, a, (int16_t)code, hint);
            return;
        }
    }
    /* a refusal of a request its client gave up on (timed out, or its hedge won): no one hears */
    if (attempt_row(R, a)->outcome == OUT_OPEN) rs_hear(R, call, a, code, 0, hint);
}
