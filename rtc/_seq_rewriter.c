/* rtc._seq_rewriter: the sequence numbers and timestamps of a forwarded slot, in C.
 *
 * rtc/seq_rewriter.py says what SeqRewriter does and why (epochs, skipped and inserted
 * packets, segments for mapping NACKs back); this file is its implementation. Forwarding calls
 * it once or more per packet per subscriber, and as Python its calls were about a sixth of the
 * per-subscriber step (docs/bench-sfu.md, "Seventh pass"); it is also the state a fan-out in C
 * needs to number packets without calling back into Python.
 *
 * tests/rtc/seq_rewriter_model.py keeps the Python implementation it replaced, as the model
 * tests/rtc/test_seq_rewriter_model.py checks this one against (every call, every result and
 * the public state, over random streams of operations).
 *
 * All sequence arithmetic is modulo 2^16 and timestamp arithmetic modulo 2^32, so every value
 * is stored reduced; Python ints of any size are accepted, as the model accepts them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

/* Segments kept for mapping NACKs back (rtc.seq_rewriter.MAX_SEGMENTS). */
#define MAX_SEGMENTS 128

typedef struct {
    uint16_t first;  /* source seq of the segment's first packet */
    uint16_t offset; /* output seq = source seq + offset */
} Segment;

typedef struct {
    PyObject_HEAD
    long clock_rate;
    PyObject *rng;
    int in_epoch;
    uint16_t epoch_first;
    uint16_t seq_offset; /* of the newest segment */
    uint32_t ts_offset;
    /* a ring: the oldest at start, count of them (a deque with maxlen MAX_SEGMENTS) */
    Segment segments[MAX_SEGMENTS];
    int seg_start, seg_count;
    /* the newest source seq numbered: meaningful once an epoch has begun (seg_count > 0, as
     * begin() leaves one segment and the ring never empties again) */
    uint16_t newest;
    int has_last;
    uint16_t last_seq;
    uint32_t last_ts;
    double last_send;
} SeqRewriter;

static inline int seq_diff(uint16_t a, uint16_t b) {
    return (int)(int16_t)(uint16_t)(a - b);
}

static inline Segment *segment_at(SeqRewriter *self, int i) { /* i = 0: the oldest */
    return &self->segments[(self->seg_start + i) % MAX_SEGMENTS];
}

static void append_segment(SeqRewriter *self, uint16_t first, uint16_t offset) {
    if (self->seg_count == MAX_SEGMENTS) {
        self->seg_start = (self->seg_start + 1) % MAX_SEGMENTS;
        self->seg_count--;
    }
    Segment *s = segment_at(self, self->seg_count++);
    s->first = first;
    s->offset = offset;
}

/* A Python int reduced modulo 2^bits (bits <= 32), as the model's masks reduce it. */
static int reduced(PyObject *o, int bits, uint32_t *out) {
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected an int, got %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLongMask(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = bits == 32 ? (uint32_t)v : (uint32_t)(v & ((1u << bits) - 1));
    return 0;
}

static int seq_arg(PyObject *o, uint16_t *out) {
    uint32_t v;
    if (reduced(o, 16, &v) < 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* int((now - last_send) * clock_rate) as the model computes it, for the wraps that follow. */
static int64_t elapsed_ticks(SeqRewriter *self, double now) {
    double ticks = (now - self->last_send) * (double)self->clock_rate;
    if (ticks >= 4.0e18)
        return INT64_C(4000000000000000000);
    if (ticks <= -4.0e18)
        return -INT64_C(4000000000000000000);
    return (int64_t)ticks; /* truncates toward zero, as int() does */
}

/* The (seq, timestamp, now) of begin() and sent(), given by position or by name (vectorcall):
 * the sequence number reduced modulo 2^16, the timestamp modulo 2^32. */
static int seq_ts_now(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *name,
                      const char *const names[3], uint16_t *seq, uint32_t *ts, double *now) {
    PyObject *given[3];
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "%s() takes 3 arguments (%zd given)", name, nargs + nkw);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        given[i] = i < nargs ? args[i] : NULL;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int i = 0;
        while (i < 3 && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
            i++;
        if (i == 3 || given[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated argument %R", name, key);
            return -1;
        }
        given[i] = args[nargs + k];
    }
    for (int i = 0; i < 3; i++) {
        if (given[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing argument '%s'", name, names[i]);
            return -1;
        }
    }
    if (seq_arg(given[0], seq) < 0 || reduced(given[1], 32, ts) < 0)
        return -1;
    *now = PyFloat_AsDouble(given[2]);
    return *now == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* -- construction ------------------------------------------------------------------------- */

static int seq_rewriter_init(SeqRewriter *self, PyObject *args, PyObject *kwds) {
    long clock_rate;
    PyObject *rng = Py_None;
    static char *kwlist[] = {"clock_rate", "rng", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "l|O:SeqRewriter", kwlist, &clock_rate, &rng))
        return -1;
    if (clock_rate <= 0) {
        PyErr_SetString(PyExc_ValueError, "clock_rate must be > 0");
        return -1;
    }
    if (rng == Py_None) {
        PyObject *random = PyImport_ImportModule("random");
        if (random == NULL)
            return -1;
        rng = PyObject_CallMethod(random, "Random", NULL);
        Py_DECREF(random);
        if (rng == NULL)
            return -1;
    } else {
        Py_INCREF(rng);
    }
    Py_XSETREF(self->rng, rng);
    self->clock_rate = clock_rate;
    self->in_epoch = 0;
    self->seq_offset = 0;
    self->ts_offset = 0;
    self->seg_start = self->seg_count = 0;
    self->has_last = 0;
    self->last_ts = 0;
    self->last_send = 0.0;
    return 0;
}

static int seq_rewriter_traverse(SeqRewriter *self, visitproc visit, void *arg) {
    Py_VISIT(self->rng);
    return 0;
}

static int seq_rewriter_clear(SeqRewriter *self) {
    Py_CLEAR(self->rng);
    return 0;
}

static void seq_rewriter_dealloc(SeqRewriter *self) {
    PyObject_GC_UnTrack(self);
    seq_rewriter_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- methods ------------------------------------------------------------------------------ */

static PyObject *end_epoch(SeqRewriter *self, PyObject *unused) {
    self->in_epoch = 0;
    Py_RETURN_NONE;
}

/* rng.<method>(*args) as a C integer (the first epoch's random offsets). */
static int rng_value(SeqRewriter *self, const char *method, const char *fmt, long a, long b, uint32_t *out) {
    if (self->rng == NULL) { /* made with __new__ alone */
        PyErr_SetString(PyExc_RuntimeError, "SeqRewriter.__init__ was not called");
        return -1;
    }
    PyObject *v = PyObject_CallMethod(self->rng, method, fmt, a, b);
    if (v == NULL)
        return -1;
    int r = reduced(v, 32, out);
    Py_DECREF(v);
    return r;
}

static PyObject *begin(SeqRewriter *self, PyObject *const *argv, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[3] = {"seq", "timestamp", "now"};
    uint16_t seq;
    uint32_t timestamp;
    double now;
    if (seq_ts_now(argv, nargs, kwnames, "begin", names, &seq, &timestamp, &now) < 0)
        return NULL;
    if (!self->has_last) {
        /* the first epoch starts at random numbers (RFC 3550 5.1) */
        uint32_t r_seq, r_ts;
        if (rng_value(self, "randint", "ll", 0, 0x7FFF, &r_seq) < 0 ||
            rng_value(self, "getrandbits", "l", 32, 0, &r_ts) < 0)
            return NULL;
        self->seq_offset = (uint16_t)(r_seq - seq);
        self->ts_offset = r_ts - timestamp;
    } else {
        self->seq_offset = (uint16_t)(self->last_seq + 1 - seq);
        int64_t elapsed = elapsed_ticks(self, now);
        if (elapsed < 1)
            elapsed = 1;
        self->ts_offset = self->last_ts + (uint32_t)(uint64_t)elapsed - timestamp;
    }
    self->in_epoch = 1;
    self->epoch_first = seq;
    self->seg_start = self->seg_count = 0;
    append_segment(self, seq, self->seq_offset);
    self->newest = seq;
    Py_RETURN_NONE;
}

static PyObject *skip(SeqRewriter *self, PyObject *arg) {
    uint16_t seq;
    if (seq_arg(arg, &seq) < 0)
        return NULL;
    if (self->seg_count == 0 || seq_diff(seq, self->newest) <= 0)
        Py_RETURN_FALSE;
    self->newest = seq;
    self->seq_offset = (uint16_t)(self->seq_offset - 1);
    append_segment(self, (uint16_t)(seq + 1), self->seq_offset);
    Py_RETURN_TRUE;
}

static PyObject *insert(SeqRewriter *self, PyObject *arg) {
    long count = PyLong_AsLong(arg);
    if (count == -1 && PyErr_Occurred())
        return NULL;
    if (count <= 0 || self->seg_count == 0 || !self->has_last || !self->in_epoch)
        Py_RETURN_NONE;
    if ((uint16_t)(self->newest + self->seq_offset) != self->last_seq)
        Py_RETURN_NONE;
    uint16_t first = (uint16_t)(self->last_seq + 1);
    self->seq_offset = (uint16_t)(self->seq_offset + (uint16_t)count);
    append_segment(self, (uint16_t)(self->newest + 1), self->seq_offset);
    self->last_seq = (uint16_t)(self->last_seq + (uint16_t)count);
    return PyLong_FromLong(first);
}

static PyObject *in_this_epoch(SeqRewriter *self, PyObject *arg) {
    uint16_t seq;
    if (seq_arg(arg, &seq) < 0)
        return NULL;
    return PyBool_FromLong(self->in_epoch && seq_diff(seq, self->epoch_first) >= 0);
}

static PyObject *seq(SeqRewriter *self, PyObject *arg) {
    uint16_t source;
    if (seq_arg(arg, &source) < 0)
        return NULL;
    if (self->seg_count == 0) /* before any epoch */
        return PyLong_FromLong((uint16_t)(source + self->seq_offset));
    Segment *newest = segment_at(self, self->seg_count - 1);
    if (seq_diff(source, newest->first) >= 0) {
        if (seq_diff(source, self->newest) > 0)
            self->newest = source;
        return PyLong_FromLong((uint16_t)(source + newest->offset));
    }
    /* older than the newest segment: a late packet or a resend, in the segment it fell in */
    for (int i = self->seg_count - 1; i >= 0; i--) {
        Segment *s = segment_at(self, i);
        if (seq_diff(source, s->first) >= 0)
            return PyLong_FromLong((uint16_t)(source + s->offset));
    }
    return PyLong_FromLong((uint16_t)(source + segment_at(self, 0)->offset));
}

static PyObject *timestamp(SeqRewriter *self, PyObject *arg) {
    uint32_t ts;
    if (reduced(arg, 32, &ts) < 0)
        return NULL;
    return PyLong_FromUnsignedLong((uint32_t)(ts + self->ts_offset));
}

static PyObject *source_seq(SeqRewriter *self, PyObject *arg) {
    uint16_t out;
    if (seq_arg(arg, &out) < 0)
        return NULL;
    int have_until = 0;
    uint16_t until = 0; /* the first source seq of the next (newer) segment */
    for (int i = self->seg_count - 1; i >= 0; i--) {
        Segment *s = segment_at(self, i);
        uint16_t source = (uint16_t)(out - s->offset);
        if (seq_diff(source, s->first) >= 0 && (!have_until || seq_diff(source, until) < 0)) {
            if (self->in_epoch && seq_diff(source, self->epoch_first) >= 0)
                return PyLong_FromLong(source);
            Py_RETURN_NONE;
        }
        have_until = 1;
        until = s->first;
    }
    Py_RETURN_NONE;
}

static PyObject *sent(SeqRewriter *self, PyObject *const *argv, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[3] = {"out_seq", "out_ts", "now"};
    uint16_t out_seq;
    uint32_t out_ts;
    double now;
    if (seq_ts_now(argv, nargs, kwnames, "sent", names, &out_seq, &out_ts, &now) < 0)
        return NULL;
    if (!self->has_last || seq_diff(out_seq, self->last_seq) > 0) {
        self->has_last = 1;
        self->last_seq = out_seq;
        self->last_ts = out_ts;
        self->last_send = now;
    }
    Py_RETURN_NONE;
}

static PyObject *timestamp_at(SeqRewriter *self, PyObject *arg) {
    double now = PyFloat_AsDouble(arg);
    if (now == -1.0 && PyErr_Occurred())
        return NULL;
    return PyLong_FromUnsignedLong((uint32_t)(self->last_ts + (uint32_t)(uint64_t)elapsed_ticks(self, now)));
}

static PyMethodDef seq_rewriter_methods[] = {
    {"end_epoch", (PyCFunction)end_epoch, METH_NOARGS, "The source switched or paused: the next packet begins a new epoch."},
    {"begin", (PyCFunction)(void (*)(void))begin, METH_FASTCALL | METH_KEYWORDS, "begin(seq, timestamp, now): begin an epoch at this source packet."},
    {"skip", (PyCFunction)skip, METH_O, "skip(seq) -> bool: leave the newest source packet out of the numbering."},
    {"insert", (PyCFunction)insert, METH_O, "insert(count) -> int | None: number packets of the SFU's own."},
    {"in_this_epoch", (PyCFunction)in_this_epoch, METH_O, "in_this_epoch(seq) -> bool: not from before the epoch began."},
    {"seq", (PyCFunction)seq, METH_O, "seq(source_seq) -> int: the output number."},
    {"timestamp", (PyCFunction)timestamp, METH_O, "timestamp(source_ts) -> int: the output timestamp."},
    {"source_seq", (PyCFunction)source_seq, METH_O, "source_seq(out_seq) -> int | None: the source packet behind a NACK."},
    {"sent", (PyCFunction)(void (*)(void))sent, METH_FASTCALL | METH_KEYWORDS, "sent(out_seq, out_ts, now): record a sent (not resent) packet."},
    {"timestamp_at", (PyCFunction)timestamp_at, METH_O, "timestamp_at(now) -> int: the output timestamp at now."},
    {NULL},
};

/* -- attributes --------------------------------------------------------------------------- */

static PyObject *get_in_epoch(SeqRewriter *self, void *closure) { return PyBool_FromLong(self->in_epoch); }

static PyObject *get_clock_rate(SeqRewriter *self, void *closure) { return PyLong_FromLong(self->clock_rate); }

/* Set once the codec is negotiated (the slot is made before its clock rate is known). */
static int set_clock_rate(SeqRewriter *self, PyObject *value, void *closure) {
    long rate = value == NULL ? -1 : PyLong_AsLong(value);
    if (rate == -1 && PyErr_Occurred())
        return -1;
    if (rate <= 0) {
        PyErr_SetString(PyExc_ValueError, "clock_rate must be > 0");
        return -1;
    }
    self->clock_rate = rate;
    return 0;
}

static PyObject *get_last_seq(SeqRewriter *self, void *closure) {
    if (!self->has_last)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->last_seq);
}

static PyObject *get_last_ts(SeqRewriter *self, void *closure) { return PyLong_FromUnsignedLong(self->last_ts); }

static PyObject *get_last_send(SeqRewriter *self, void *closure) { return PyFloat_FromDouble(self->last_send); }

static PyObject *get_newest(SeqRewriter *self, void *closure) {
    if (self->seg_count == 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->newest);
}

static PyObject *get_segments(SeqRewriter *self, void *closure) {
    PyObject *out = PyList_New(self->seg_count);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < self->seg_count; i++) {
        Segment *s = segment_at(self, i);
        PyObject *item = Py_BuildValue("(ii)", s->first, s->offset);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static PyGetSetDef seq_rewriter_getset[] = {
    {"in_epoch", (getter)get_in_epoch, NULL, "An epoch has begun: packets are being rewritten.", NULL},
    {"clock_rate", (getter)get_clock_rate, (setter)set_clock_rate, "RTP clock rate of the slot's codec (Hz).", NULL},
    {"last_seq", (getter)get_last_seq, NULL, "The newest output sequence number sent (None: none yet).", NULL},
    {"last_ts", (getter)get_last_ts, NULL, "The newest output timestamp sent.", NULL},
    {"last_send", (getter)get_last_send, NULL, "When it was sent (monotonic seconds).", NULL},
    {"newest", (getter)get_newest, NULL, "The newest source seq numbered in this epoch (None: none yet).", NULL},
    {"segments", (getter)get_segments, NULL, "(first source seq, seq offset) of each segment kept, oldest first.", NULL},
    {NULL},
};

static PyTypeObject SeqRewriterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rtc._seq_rewriter.SeqRewriter",
    .tp_basicsize = sizeof(SeqRewriter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "SeqRewriter(clock_rate, rng=None): maps a source's (seq, timestamp) to one slot's numbering.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)seq_rewriter_init,
    .tp_dealloc = (destructor)seq_rewriter_dealloc,
    .tp_traverse = (traverseproc)seq_rewriter_traverse,
    .tp_clear = (inquiry)seq_rewriter_clear,
    .tp_methods = seq_rewriter_methods,
    .tp_getset = seq_rewriter_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rtc._seq_rewriter", "A forwarded slot's sequence numbers and timestamps (rtc/seq_rewriter.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__seq_rewriter(void) {
    if (PyType_Ready(&SeqRewriterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "MAX_SEGMENTS", MAX_SEGMENTS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&SeqRewriterType);
    if (PyModule_AddObject(m, "SeqRewriter", (PyObject *)&SeqRewriterType) < 0) {
        Py_DECREF(&SeqRewriterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
