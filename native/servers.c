/* The service models (retrysim/sim/service.py) and processor sharing (sharing.py), which a
 * client CPU shares too. */
#include "run.h"

/* -- the server ------------------------------------------------------------------------- */

/* Room for a byte flag of attempt row a (flags by row, zero until set). */
int rs_flag_room(uint8_t **flags, size_t *size, uint64_t a) {
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

static int enqueue(rs_run *R, rs_replica *P, uint32_t call, uint64_t a, double service) {
    if (P->wait_size == P->wait_capacity) {
        size_t capacity = P->wait_capacity ? 2 * P->wait_capacity : 1024;
        rs_waiter *grown = malloc(capacity * sizeof(rs_waiter));
        if (grown == NULL) return -1;
        for (size_t i = 0; i < P->wait_size; i++)
            grown[i] = P->waiting[(P->wait_head + i) % P->wait_capacity];
        free(P->waiting);
        P->waiting = grown;
        P->wait_head = 0;
        P->wait_capacity = capacity;
    }
    P->waiting[(P->wait_head + P->wait_size) % P->wait_capacity] = (rs_waiter){call, a, service};
    P->wait_size++;
    P->waiters++;
    if (R->server.kind == SERVER_LOCK || R->server.kind == SERVER_SHARING) {
        if (rs_flag_room(&R->queued, &R->queued_size, a) < 0) return -1;
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
rs_share *rs_share_of(rs_run *R, uint32_t index) {
    return (int64_t)index < R->n_replicas ? &R->replicas[index].share
                                          : &R->cpus[index - R->n_replicas];
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

void rs_share_add(rs_run *R, uint32_t index, double now, double work, rs_job job) {
    rs_share *sh = rs_share_of(R, index);
    share_advance(sh, now);
    job.tag = sh->attained + work;
    job.sequence = sh->sequence++;
    if (jobs_push(sh, job) < 0 || (sh->keyed && rs_flag_room(&sh->present, &sh->present_size, job.row) < 0)) {
        R->failed = 1;
        return;
    }
    if (sh->keyed) sh->present[job.row] = 1;
    sh->count++;
    share_reschedule(R, sh, index);
}


/* Sharing._complete: every job whose tag the attained work has reached is done. */
void rs_share_complete(rs_run *R, uint32_t index) {
    rs_share *sh = rs_share_of(R, index);
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
            if ((int64_t)index < R->n_replicas) rs_finish_slot(R, job.call, job.row);
            else rs_cpu_done(R, &job);
        }
    }
    sh->settling = outer;
    share_reschedule(R, sh, index);
}

/* ProcessorSharingServer.abandon: with cancel_abandoned, the request leaves at once. */
void rs_share_abandon(rs_run *R, uint64_t a) {
    rs_replica *P = replica_of(R, a);
    rs_share *sh = &P->share;
    if (!R->server.cancel_abandoned) return;
    if (a < R->queued_size && R->queued[a]) {  /* taken out of the FIFO: nothing used */
        R->queued[a] = 0;
        P->waiters--;
        return;
    }
    if (a >= sh->present_size || !sh->present[a]) return;
    int outer = sh->settling;
    sh->settling = 1;
    share_advance(sh, R->now);
    sh->present[a] = 0;
    sh->count--;
    P->busy--;
    rs_start_waiting(R, P);
    sh->settling = outer;
    share_reschedule(R, sh, (uint32_t)(P - R->replicas));
}

/* A slot's request starts being served at t: for its service time, or sharing the cores. */
static void serve(rs_run *R, rs_replica *P, uint32_t call, uint64_t a, double t, double service) {
    if (R->server.kind == SERVER_SHARING) {
        rs_job job = {0};
        job.row = a;
        job.call = call;
        rs_share_add(R, (uint32_t)(P - R->replicas), t, service, job);
    } else {
        at(R, t + service, EV_FINISH, call, a, 0);
    }
}

/* SlotServer._start_waiting: free slots take the waiters in order. */
void rs_start_waiting(rs_run *R, rs_replica *P) {
    while (P->waiters && P->busy < P->slots) {
        rs_waiter w = P->waiting[P->wait_head];
        P->wait_head = (P->wait_head + 1) % P->wait_capacity;
        P->wait_size--;
        if (R->queued != NULL) {
            if (!R->queued[w.row]) continue;  /* a lock waiter whose wait expired */
            R->queued[w.row] = 0;
        }
        P->waiters--;
        if (R->server.drop_abandoned && attempt_row(R, w.row)->outcome != OUT_OPEN) continue;
        P->busy++;
        serve(R, P, w.call, w.row, R->now, w.service);
    }
}


/* The server model takes attempt a's request at t (service.py's submit of each model). */
void rs_submit(rs_run *R, uint32_t call, uint64_t a, double t, double service) {
    const rs_server *spec = &R->server;
    rs_replica *P = replica_of(R, a);
    switch (spec->kind) {
    case SERVER_IDEAL:  /* Server.submit: schedule_done */
        R->pending_done = t + service;
        at(R, t + service, EV_DONE, call, a, 0);
        return;
    case SERVER_LOAD_LATENCY: {
        double busy = service + spec->per_request * (double)P->in_flight;
        P->in_flight++;
        at(R, t + busy, EV_LOAD_DONE, call, a, 0);
        return;
    }
    case SERVER_RATE_LIMITED: {
        double refilled = P->tokens + (t - P->last) * spec->rate;
        P->tokens = refilled < spec->burst ? refilled : spec->burst;  /* min(burst, refilled) */
        P->last = t;
        if (P->tokens >= 1.0 - 1e-9) {
            double left = P->tokens - 1.0;
            P->tokens = left > 0.0 ? left : 0.0;  /* max(0.0, left) */
            R->pending_done = t + service;
            at(R, t + service, EV_DONE, call, a, 0);
            return;
        }
        if (spec->rejection != R->rate_limited_code) {
            rs_respond(R, call, a, (int)spec->rejection, NAN);
            return;
        }
        double exact = (1.0 - P->tokens) / spec->rate, hint = NAN;
        if (spec->hint_mode == HINT_SECONDS) {
            double up = ceil(exact);
            hint = up > 1 ? up : 1.0;
        } else if (spec->hint_mode == HINT_EXACT) {
            hint = exact;
        }
        rs_respond(R, call, a, (int)R->rate_limited_code, hint);
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
        if (spec->read_sampler >= 0) {  /* the read first; the write a round trip after it */
            double u = rs_unit(R->server.server_key, key_of(R, call), draw_of(R, a));
            *write_time = service;
            at(R, t + rs_sample(&R->faults.samplers[spec->read_sampler], R->faults.table, u), EV_READ_ANSWERED, call, a, 0);
            return;
        }
        *version = P->version;
        at(R, t + service, EV_COMMIT, call, a, 0);
        return;
    }
    }
    /* SERVER_QUEUE, SERVER_LOCK and SERVER_SHARING: SlotServer's admission */
    if (P->busy < P->slots) {
        P->busy++;
        serve(R, P, call, a, t, service);
    } else if ((int64_t)P->waiters < spec->queue_limit) {
        if (enqueue(R, P, call, a, service) < 0) R->failed = 1;
        else if (spec->kind == SERVER_LOCK && !isnan(spec->wait_timeout))  /* LockServer._queued */
            at(R, R->now + spec->wait_timeout, EV_WAIT_EXPIRED, call, a, 0);
    } else {
        rs_respond(R, call, a, (int)spec->reject_code, NAN);
    }
}

/* OccServer._read_answered: the read answers with the version now; the write arrives one
 * round trip later (none without a network). */
void rs_read_answered(rs_run *R, uint32_t call, uint64_t a) {
    rs_replica *P = replica_of(R, a);
    *(int64_t *)(R->occ.rows + a * R->occ.width) = P->version;
    at(R, R->now + rs_read_to_write(R, call, a), EV_WRITE, call, a, 0);
}

/* OccServer._write: a compare-and-set, unless the client stopped waiting before it. */
void rs_occ_write(rs_run *R, uint32_t call, uint64_t a) {
    rs_replica *P = replica_of(R, a);
    if (attempt_row(R, a)->outcome != OUT_OPEN) return;
    int64_t read = *(int64_t *)(R->occ.rows + a * R->occ.width);
    double write_time = *((double *)(R->occ.rows + a * R->occ.width) + 1);
    int code = read == P->version ? 0 : (int)R->server.reject_code;
    if (code == 0) P->version++;
    R->pending_done = R->now + write_time;
    at(R, R->now + write_time, EV_DONE, call, a, (int16_t)code);
}

void rs_occ_commit(rs_run *R, uint32_t call, uint64_t a) {
    rs_replica *P = replica_of(R, a);
    if (*(int64_t *)(R->occ.rows + a * R->occ.width) == P->version) {
        P->version++;
        rs_server_done(R, call, a, 0);
    } else {
        rs_server_done(R, call, a, (int)R->server.reject_code);
    }
}

/* SlotServer._finish: a slot's work is done; the next waiter takes it. */
void rs_finish_slot(rs_run *R, uint32_t call, uint64_t a) {
    rs_replica *P = replica_of(R, a);
    P->busy--;
    rs_server_done(R, call, a, 0);
    rs_start_waiting(R, P);
}

/* A lock waiter still in the FIFO when its wait timeout passes fails with busy_error. */
void rs_wait_expired(rs_run *R, uint32_t call, uint64_t a) {
    rs_replica *P = replica_of(R, a);
    if (a < R->queued_size && R->queued[a]) {
        R->queued[a] = 0;
        P->waiters--;
        rs_server_done(R, call, a, (int)R->server.reject_code);
    }
}

/* Engine.server_done: the work is done (code 0), or the server failed it; the client hears
 * it if it still waits. */
void rs_server_done(rs_run *R, uint32_t call, uint64_t a, int code) {
    rs_attempt *row = attempt_row(R, a);
    if (code == 0) {
        row->executed = 1;
        call_row(R, call)->executions++;
    }
    if (row->outcome == OUT_OPEN) rs_respond(R, call, a, code, NAN);
}
