/* Calls and attempts: a call's start and end, an attempt's phases and send, what the client
 * hears and decides (retrysim/sim/engine.py, attempt.py, decide.py), and the event loop
 * (retrysim/sim/kernel.py). */
#include "run.h"

/* -- an attempt's phases (retrysim/sim/attempt.py) ------------------------------------------ */

/* Phase 2, the door: PASS, BLACKHOLE or the code it fails with, and that gate's hint. */
int rs_gate_verdict(rs_run *R, const rs_replica *P, double t, uint64_t key, uint64_t n, double *hint) {
    *hint = NAN;
    for (int32_t g = 0; g < P->n_gates; g++) {
        int verdict = rs_gate(&R->faults, P->gates[g], t, key, n);
        if (verdict != RS_PASS) {
            *hint = R->faults.items[P->gates[g]].hint;  /* FaultPlan.hint: that gate's */
            return verdict;
        }
    }
    return RS_PASS;
}

/* Phase 3: the latency draw plus the spikes (their sum first, as FaultPlan sums them). */
double rs_service_time(rs_run *R, const rs_replica *P, double t, uint64_t key, uint64_t n) {
    double service = rs_sample(&R->faults.samplers[0], R->faults.table, rs_unit(R->latency_key, key, n));
    if (P->n_spikes) {
        double extra = 0.0;
        for (int32_t s = 0; s < P->n_spikes; s++) extra = extra + rs_extra(&R->faults, P->spikes[s], t, key, n);
        service = service + extra;
    }
    return service;
}

/* Phase 4: the share of the service time after which a reset cuts in (-1: none), its code. */
double rs_reset_share(rs_run *R, const rs_replica *P, double t, uint64_t key, uint64_t n, int *code) {
    for (int32_t r = 0; r < P->n_resets; r++) {
        double share = rs_reset(&R->faults, P->resets[r], t, key, n);
        if (share >= 0.0) {
            *code = R->faults.items[P->resets[r]].code;
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
    if (R->hedge_max) R->groups[call].active = 0;  /* Hedges.forget */
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

static int settle(rs_run *R, uint32_t call, uint64_t a, int code, int outcome);

void rs_hear(rs_run *R, uint32_t call, uint64_t a, int code, int outcome, double hint) {
    if (R->hedge_max && !settle(R, call, a, code, outcome)) return;  /* a send, only recorded */
    if (R->connected) rs_release(R, a, code);  /* its connection goes back to its pool */
    if (R->n_replicas > 1) R->outstanding[attempt_row(R, a)->replica]--;  /* Balancer.answered */
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


/* -- replicas (retrysim/sim/routing.py, balance.py) ---------------------------------------- */

/* Balancer._in_turn: the next replica in turn among the candidates (a bit mask). */
static int64_t in_turn(rs_run *R, uint64_t candidates) {
    int64_t n = R->n_replicas;
    for (int64_t step = 0; step < n; step++) {
        int64_t replica = (R->turn + step) % n;
        if (candidates >> replica & 1) {
            R->turn = (replica + 1) % n;
            return replica;
        }
    }
    return 0;  /* never: the candidates are never none */
}

/* The k-th candidate (in replica order) of a bit mask. */
static int64_t nth_candidate(uint64_t candidates, int64_t k) {
    for (int64_t replica = 0;; replica++)
        if (candidates >> replica & 1 && k-- == 0) return replica;
}

/* Balancer.pick: the replica attempt n of the call keyed key goes to, avoiding those tried. */
static int64_t pick(rs_run *R, uint64_t key, uint64_t n, uint64_t avoid) {
    int64_t count = R->n_replicas;
    uint64_t every = count == 64 ? ~0ULL : (1ULL << count) - 1, candidates = every & ~avoid;
    if (!avoid || !candidates) candidates = every;
    int64_t size = __builtin_popcountll(candidates);
    if (R->balance_rule == BALANCE_ROUND_ROBIN) return in_turn(R, candidates);
    if (R->balance_rule == BALANCE_LEAST_OUTSTANDING) {  /* ties in turn */
        int64_t fewest = INT64_MAX;
        for (int64_t r = 0; r < count; r++)
            if (candidates >> r & 1 && R->outstanding[r] < fewest) fewest = R->outstanding[r];
        uint64_t least = 0;
        for (int64_t r = 0; r < count; r++)
            if (candidates >> r & 1 && R->outstanding[r] == fewest) least |= 1ULL << r;
        return in_turn(R, least);
    }
    int64_t first = nth_candidate(candidates, (int64_t)(rs_unit(R->balance_key, key, 2 * n) * (double)size));
    if (R->balance_rule == BALANCE_RANDOM || size == 1) return first;
    uint64_t others = candidates & ~(1ULL << first);
    int64_t second = nth_candidate(others, (int64_t)(rs_unit(R->balance_key, key, 2 * n + 1) * (double)(size - 1)));
    return R->outstanding[second] < R->outstanding[first] ? second : first;
}

/* ReplicaRouting._route: attempt a goes to the replica the balancer picks (one its call has
 * not tried, with retry_other_host, while there is one). */
void rs_route(rs_run *R, uint32_t call, uint64_t a) {
    uint64_t key = key_of(R, call);
    uint64_t avoid = 0;
    if (R->retry_other_host) {
        if (rs_flag_room((uint8_t **)&R->tried, &R->tried_size, ((uint64_t)call + 1) * sizeof(uint64_t)) < 0) {
            R->failed = 1;
            return;
        }
        avoid = R->tried[call];
    }
    if (R->hedge_max && R->groups[call].active) {  /* Hedges.replicas_of: the earlier sends' */
        const rs_group *g = &R->groups[call];
        for (int i = 0; i + 1 < g->n_rows; i++) avoid |= 1ULL << attempt_row(R, g->rows[i])->replica;
    }
    int64_t replica = pick(R, key, draw_of(R, a), avoid);
    attempt_row(R, a)->replica = (uint16_t)replica;
    R->outstanding[replica]++;
    if (R->retry_other_host) R->tried[call] = avoid | 1ULL << replica;
}

/* -- attempts and calls -------------------------------------------------------------------- */

/* -- hedged requests (retrysim/sim/hedging.py) ------------------------------------------ */

static void dispatch_attempt(rs_run *R, uint32_t call, uint64_t a, double t, uint64_t n);

/* Engine._close_send: a send is answered (or cancelled) without a decision. */
static void close_send(rs_run *R, uint32_t call, uint64_t a, int code, int outcome) {
    if (R->connected) rs_release(R, a, code);
    if (R->n_replicas > 1) R->outstanding[attempt_row(R, a)->replica]--;
    rs_attempt *row = attempt_row(R, a);
    row->end = R->now;
    row->error = (uint8_t)code;
    row->outcome = (uint8_t)(outcome ? outcome : OUT_FAILED);
    if (outcome == RS_CANCELLED && R->server.kind == SERVER_SHARING) rs_share_abandon(R, a);
}

/* Hedges.open_group: row a is the first send of the call's attempt; the next is due later. */
static void open_group(rs_run *R, uint32_t call, uint64_t a, double t) {
    if (rs_flag_room((uint8_t **)&R->groups, &R->groups_size, ((uint64_t)call + 1) * sizeof(rs_group)) < 0) {
        R->failed = 1;
        return;
    }
    rs_group *g = &R->groups[call];
    g->attempt = attempt_row(R, a)->attempt;
    g->rows[0] = (uint32_t)a;
    g->n_rows = g->open = g->sent = g->active = 1;
    at(R, t + R->hedge_delay, EV_HEDGE_DUE, call, g->attempt, 1);
}

/* Hedges._send: the next send of the group, a row of its own, dispatched at this instant
 * after what else is due now. */
static void hedge_send(rs_run *R, uint32_t call, rs_group *g) {
    double t = R->now;
    uint64_t a = R->attempts.size;  /* Engine._new_row: no attempts budget for a hedge */
    if (rs_rows_reserve(&R->attempts, a + 1) < 0) {
        R->failed = 1;
        return;
    }
    R->attempts.size = a + 1;
    rs_call *c = call_row(R, call);
    *attempt_row(R, a) = (rs_attempt){call, c->client, (uint16_t)g->attempt, OUT_OPEN, 0, t,
                                      NAN, NAN, 0, 0.0, 0, g->sent};
    g->rows[g->n_rows++] = (uint32_t)a;
    g->sent++;
    g->open++;
    if (g->sent < R->hedge_max) at(R, t + R->hedge_delay, EV_HEDGE_DUE, call, g->attempt, g->sent);
    at(R, t, EV_HEDGE_DISPATCH, call, a, 0);
}

/* Hedges._due: a hedge's delay is over: it goes, unless its attempt was answered, or a
 * failure sent it already. */
static void hedge_due(rs_run *R, uint32_t call, uint32_t attempt, int index) {
    rs_group *g = &R->groups[call];
    if (g->active && g->attempt == attempt && g->sent == index) hedge_send(R, call, g);
}

/* Whether the policy's retry would retry code (FastDecider.retries). */
static inline int retries(rs_run *R, int code) { return R->verdicts[code ? code : R->none_code]; }

/* Hedges.settle: whether send a's answer decides its attempt now (else it is only recorded). */
static int settle(rs_run *R, uint32_t call, uint64_t a, int code, int outcome) {
    rs_group *g = &R->groups[call];
    if ((size_t)(call + 1) * sizeof(rs_group) > R->groups_size || !g->active) return 1;
    int member = 0;
    for (int i = 0; i < g->n_rows; i++) member |= g->rows[i] == a;
    if (!member) return 1;
    g->open--;
    if (!retries(R, code)) {  /* an outcome the retry takes: it wins, the others are cancelled */
        g->active = 0;
        for (int i = 0; i < g->n_rows; i++)
            if (g->rows[i] != a && attempt_row(R, g->rows[i])->outcome == OUT_OPEN)
                close_send(R, call, g->rows[i], 0, RS_CANCELLED);
        return 1;
    }
    if (g->sent < R->hedge_max) {  /* a failure sends the next hedge at once */
        close_send(R, call, a, code, outcome);
        at(R, R->now, EV_HEDGE_DUE, call, g->attempt, g->sent);
        return 0;
    }
    if (g->open > 0) {  /* the others may still answer */
        close_send(R, call, a, code, outcome);
        return 0;
    }
    g->active = 0;
    return 1;
}

/* -- attempts and calls -------------------------------------------------------------------- */

/* Engine._send: the call's next attempt, a new row (within the attempts budget), then its
 * dispatch. */
static void send_attempt(rs_run *R, uint32_t call) {
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
    *attempt_row(R, a) = (rs_attempt){call, c->client, (uint16_t)n, OUT_OPEN, 0, t, NAN, NAN, 0, 0.0, 0, 0};
    if (R->hedge_max) open_group(R, call, a, t);
    dispatch_attempt(R, call, a, t, n);
}

/* The dispatch: to its replica, over connections or straight to the door; phases 2 to 6 of
 * an attempt (retrysim/sim/attempt.py), its draws keyed n (a hedge's own). */
static void dispatch_attempt(rs_run *R, uint32_t call, uint64_t a, double t, uint64_t n) {
    if (R->n_replicas > 1) rs_route(R, call, a);  /* the balancer picks its replica */
    if (R->connected) {  /* over the network, the pool and the process's CPU */
        rs_send_connected(R, call, a);
        return;
    }
    uint64_t key = key_of(R, call);
    double hint;
    rs_replica *P = replica_of(R, a);
    int verdict = rs_gate_verdict(R, P, t, key, n, &hint);
    if (verdict > 0) {
        rs_hear(R, call, a, verdict, 0, hint);
        return;
    }
    if (verdict == RS_BLACKHOLE) {
        if (R->has_timeout) at(R, t + R->timeout, EV_TIMED_OUT, call, a, 0);
        return;
    }
    double service = rs_service_time(R, P, t, key, n);
    int code;
    double share = rs_reset_share(R, P, t, key, n, &code);
    if (share >= 0.0) at(R, t + share * service, EV_RESET, call, a, (int16_t)code);
    R->pending_done = NAN;
    rs_submit(R, call, a, t, service);
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
    send_attempt(R, (uint32_t)id);
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
    rs_hear(R, call, a, R->timeout_code, OUT_TIMED_OUT, NAN);
    if (R->server.kind == SERVER_SHARING) rs_share_abandon(R, a);  /* Server.abandon */
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
        send_attempt(R, e->call);
        break;
    case EV_TIMED_OUT:
        timed_out(R, e->call, e->row);
        break;
    case EV_RESET:
        if (attempt_row(R, e->row)->outcome == OUT_OPEN) rs_hear(R, e->call, e->row, code, 0, NAN);
        break;
    case EV_DONE:
        rs_server_done(R, e->call, e->row, code);
        break;
    case EV_FINISH:
        rs_finish_slot(R, e->call, e->row);
        break;
    case EV_READ_ANSWERED:
        rs_read_answered(R, e->call, e->row);
        break;
    case EV_WRITE:
        rs_occ_write(R, e->call, e->row);
        break;
    case EV_COMMIT:
        rs_occ_commit(R, e->call, e->row);
        break;
    case EV_SHARED_DONE:
        rs_share_complete(R, e->call);
        break;
    case EV_HEDGE_DUE:
        hedge_due(R, e->call, e->row, code);
        break;
    case EV_HEDGE_DISPATCH:  /* unless its attempt was answered meanwhile (cancelled) */
        if (attempt_row(R, e->row)->outcome == OUT_OPEN)
            dispatch_attempt(R, e->call, e->row, R->now, draw_of(R, e->row));
        break;
    case EV_TO_POOL:
        rs_to_pool(R, e->call, e->row);
        break;
    case EV_CONNECT_TIMED_OUT:  /* the client library's error, not the caller's timeout */
        if (attempt_row(R, e->row)->outcome == OUT_OPEN) {
            R->stats[2]++;
            rs_hear(R, e->call, e->row, R->timeout_code, 0, NAN);
        }
        break;
    case EV_ANSWER_IF_OPEN:
    case EV_DELIVERED:
        if (attempt_row(R, e->row)->outcome == OUT_OPEN) rs_hear(R, e->call, e->row, code, 0, hint_of(R, e->row));
        break;
    case EV_TRANSMIT:
        rs_transmit(R, e->call, e->row, code, hint_of(R, e->row));
        break;
    case EV_REACH_SERVER:
        rs_reach_server(R, e->call, e->row);
        break;
    case EV_TIMEOUT_DUE:  /* an answer due at the same instant is heard first */
        if (!code && R->heap.size && R->heap.items[0].t == R->now) {
            at(R, R->now, EV_TIMEOUT_DUE, e->call, e->row, 1);
            break;
        }
        timed_out(R, e->call, e->row);
        break;
    case EV_LOAD_DONE:
        replica_of(R, e->row)->in_flight--;
        rs_server_done(R, e->call, e->row, 0);
        break;
    case EV_WAIT_EXPIRED:
        rs_wait_expired(R, e->call, e->row);
        break;
    case EV_CAPACITY:  /* QueueServer.capacity_change (other models have no slots to change) */
        if (R->server.kind == SERVER_QUEUE) {
            rs_replica *P = &R->replicas[e->call];
            P->slots = code ? (int64_t)e->row : R->server.slots;
            rs_start_waiting(R, P);
        }
        break;
    }
}

/* Kernel.run: events in time order until none is left or a limit is reached. */
int rs_run_loop(rs_run *R, uint64_t *stop_arg) {
    rs_event e;
    while (R->heap.size) {
        rs_heap_pop(&R->heap, &e);
        if (RS_EV_KIND(&e) == EV_SHARED_DONE) {
            rs_share *sh = rs_share_of(R, e.call);
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
