/* The Python module: a run's arguments in, its records out as buffers numpy reads in place. */
#include "run.h"

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
    Py_buffer firsts, first_clients, samplers, faults, plans, members, keys, table, nodes,
        children, verdicts, windows, server, network, closes, fails_connect;
    rs_run R;
    memset(&R, 0, sizeof R);
    long long clients, max_events, expected, replicas, rule;
    int open_loop, served_judged;
    if (!PyArg_ParseTuple(args, "y*y*pLddddLddKKy*y*y*y*y*y*y*y*iiiy*piiiiy*y*y*y*y*pLLKpLdLLO", &firsts,
                          &first_clients, &open_loop, &clients, &R.calls_per_client,
                          &R.think_time, &R.duration, &R.max_time, &max_events,
                          &R.attempt_limit, &R.timeout, &R.jitter_key, &R.latency_key,
                          &samplers, &faults, &plans, &members, &keys, &table, &nodes,
                          &children, &R.stop_root, &R.wait_root, &R.remembers, &verdicts, &served_judged,
                          &R.none_code, &R.answer_base, &R.timeout_code,
                          &R.rate_limited_code, &server, &network, &closes, &fails_connect,
                          &windows, &R.hinted, &replicas, &rule, &R.balance_key,
                          &R.retry_other_host, &R.hedge_max, &R.hedge_delay, &expected,
                          &R.report_every, &R.progress))
        return NULL;
    PyObject *result = NULL;
    Py_buffer *held[] = {&firsts, &first_clients, &samplers, &faults, &plans, &members,
                         &keys, &table, &nodes, &children, &verdicts, &windows, &server,
                         &network, &closes, &fails_connect};
    if (verdicts.len != 256 || server.len != (Py_ssize_t)sizeof(rs_server) || replicas < 1 ||
        replicas > 64 || plans.len != (Py_ssize_t)(replicas * 6 * sizeof(int32_t)) ||
        R.hedge_max < 0 || R.hedge_max > RS_MAX_SENDS) {
        PyErr_SetString(PyExc_ValueError,
                        "verdicts: one byte per record code (256); one server; 1 to 64 replicas, "
                        "six numbers of each one's plan; at most 10 hedged sends");
        goto release;
    }
    memcpy(&R.server, server.buf, sizeof(rs_server));
    /* Each replica: its faults (offsets and counts into members) and a server of the model. */
    R.n_replicas = replicas;
    R.balance_rule = rule;
    R.replicas = calloc((size_t)replicas, sizeof(rs_replica));
    R.outstanding = calloc((size_t)replicas, sizeof(int64_t));
    if (R.replicas == NULL || R.outstanding == NULL) {
        PyErr_NoMemory();
        goto release;
    }
    const int32_t *plan = plans.buf, *member = members.buf;
    for (int64_t r = 0; r < replicas; r++) {
        rs_replica *P = &R.replicas[r];
        const int32_t *mine = plan + 6 * r;
        P->gates = member + mine[0];
        P->n_gates = mine[1];
        P->spikes = member + mine[2];
        P->n_spikes = mine[3];
        P->resets = member + mine[4];
        P->n_resets = mine[5];
        P->slots = R.server.slots;
        P->tokens = R.server.burst;
        P->share.keyed = 1;
        P->share.cores = R.server.cores;
    }
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
    /* Capacity windows first (a request arriving at a window's start sees it), replica by
     * replica, then the first arrival: the order engine.run schedules them in. Each window is
     * (start, end, slots, replica). */
    const double *w = windows.buf;
    for (Py_ssize_t i = 0; i < windows.len / (Py_ssize_t)(4 * sizeof(double)); i++) {
        uint32_t replica = (uint32_t)w[4 * i + 3];
        at(&R, w[4 * i], EV_CAPACITY, replica, (uint64_t)w[4 * i + 2], 1);
        if (isfinite(w[4 * i + 1])) at(&R, w[4 * i + 1], EV_CAPACITY, replica, 0, 0);
    }
    if (R.n_firsts) at(&R, R.firsts[0], EV_ARRIVE, 0, 0, 0);
    uint64_t stop_arg = 0;
    int stop = rs_run_loop(&R, &stop_arg);
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
    for (int64_t r = 0; R.replicas != NULL && r < R.n_replicas; r++) {
        free(R.replicas[r].waiting);
        free(R.replicas[r].share.jobs);
        free(R.replicas[r].share.present);
    }
    free(R.replicas);
    free(R.outstanding);
    free(R.tried);
    free(R.groups);
    free(R.queued);
    free(R.occ.rows);
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
