/* rtc._rtp_writer: a subscriber slot's outgoing RTP packet, written and SRTP-protected in
 * one call.
 *
 * Forwarding one packet to 64 subscribers runs the per-subscriber step 64 times, and perf
 * showed most of the server's CPU in the Python interpreter there (docs/bench-sfu.md,
 * "Fourth pass"): copying the slot's header template, writing five fields with struct,
 * joining the payload, copying it into pylibsrtp's buffer, calling srtp_protect through
 * cffi and copying the result out. Here that is one C call and one allocation: the header
 * template, the fields, payload and padding go straight into the bytes object that is
 * returned, and libsrtp protects it in place.
 *
 * The layout (which template, where abs-send-time and the audio level sit) is found in
 * Python by rtc.rtputil.RtpHeaderLayout, from aiortc's own serializer; this file only
 * copies bytes to the offsets it is given.
 *
 * SrtpContext(protect_addr, ctx_addr, owner, max_size)
 *   One libsrtp session's srtp_protect: the function's address and the srtp_t, taken from
 *   pylibsrtp's cffi objects (rtc.aiortc_internals.srtp_context), and the owner object
 *   that keeps the session alive as long as this context lives. max_size: the longest RTP
 *   packet accepted (pylibsrtp's own limit, so both paths refuse the same packets with
 *   ValueError("packet is too long")).
 *   .protect(data) -> bytes: the SRTP packet of one RTP packet.
 *
 * PacketWriter(header, ast_at, level_header, level_ast_at, level_at)
 *   header: the slot's header without audio level (marker 0); level_header: with it, or
 *   None when no audio-level ID was negotiated. *_ast_at: offset of abs-send-time's three
 *   octets, -1 for none; level_at: offset of the audio-level octet in level_header.
 *   .write(marker, seq, timestamp, abs_send_time, level, payload, padding, srtp) -> bytes
 *     level: the audio-level octet (V << 7 | level), or -1 for a packet without one;
 *     padding: 0, or 1-255 padding octets (zeros, the last one counting them, RFC 3550
 *     5.1); srtp: an SrtpContext to protect the packet with, or None for the plain packet.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* pylibsrtp.SRTP_MAX_TRAILER_LEN: SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN */
#define SRTP_MAX_TRAILER_LEN (16 + 128)

/* libsrtp 2: srtp_err_status_t srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr) */
typedef int (*srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);

static PyObject *SrtpError;

/* -- SrtpContext ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    srtp_protect_fn protect;
    void *ctx;
    PyObject *owner;
    Py_ssize_t max_size;
} SrtpContext;

static int srtp_context_init(SrtpContext *self, PyObject *args, PyObject *kwds) {
    unsigned long long fn, ctx;
    PyObject *owner;
    Py_ssize_t max_size;
    static char *kwlist[] = {"protect_addr", "ctx_addr", "owner", "max_size", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "KKOn:SrtpContext", kwlist, &fn, &ctx, &owner, &max_size))
        return -1;
    if (fn == 0 || ctx == 0 || max_size < 12 || max_size > INT32_MAX - SRTP_MAX_TRAILER_LEN) {
        PyErr_SetString(PyExc_ValueError, "SrtpContext needs a function, a session and a size limit");
        return -1;
    }
    self->max_size = max_size;
    self->protect = (srtp_protect_fn)(uintptr_t)fn;
    self->ctx = (void *)(uintptr_t)ctx;
    Py_INCREF(owner);
    Py_XSETREF(self->owner, owner);
    return 0;
}

static void srtp_context_dealloc(SrtpContext *self) {
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Protect the `size` octets at the start of *out (which has room for the trailer) and
 * shrink it to the protected length. Consumes *out on failure. */
static int protect_in_place(SrtpContext *srtp, PyObject **out, Py_ssize_t size) {
    if (srtp->protect == NULL) {
        Py_CLEAR(*out);
        PyErr_SetString(PyExc_ValueError, "SrtpContext is not initialised");
        return -1;
    }
    if (size > srtp->max_size) {
        Py_CLEAR(*out);
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return -1;
    }
    int len = (int)size;
    int rc = srtp->protect(srtp->ctx, PyBytes_AS_STRING(*out), &len);
    if (rc != 0) {
        Py_CLEAR(*out);
        PyErr_Format(SrtpError, "srtp_protect failed: libsrtp error %d", rc);
        return -1;
    }
    return _PyBytes_Resize(out, len);
}

static PyObject *srtp_context_protect(SrtpContext *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, view.len + SRTP_MAX_TRAILER_LEN);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    memcpy(PyBytes_AS_STRING(out), view.buf, (size_t)view.len);
    Py_ssize_t size = view.len;
    PyBuffer_Release(&view);
    if (protect_in_place(self, &out, size) < 0) return NULL;
    return out;
}

static PyMethodDef srtp_context_methods[] = {
    {"protect", (PyCFunction)srtp_context_protect, METH_O,
     "protect(data) -> bytes: the SRTP packet of one RTP packet (libsrtp's srtp_protect)."},
    {NULL, NULL, 0, NULL},
};

static PyObject *srtp_context_owner(SrtpContext *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->owner != NULL ? self->owner : Py_None);
}

static PyGetSetDef srtp_context_getset[] = {
    {"owner", (getter)srtp_context_owner, NULL, "the object that keeps the session alive", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject SrtpContextType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rtc._rtp_writer.SrtpContext",
    .tp_basicsize = sizeof(SrtpContext),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SrtpContext(protect_addr, ctx_addr, owner): one libsrtp session's srtp_protect.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)srtp_context_init,
    .tp_dealloc = (destructor)srtp_context_dealloc,
    .tp_methods = srtp_context_methods,
    .tp_getset = srtp_context_getset,
};

/* -- PacketWriter ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *header;        /* bytes, without audio level */
    PyObject *level_header;  /* bytes, with audio level; NULL: none negotiated */
    Py_ssize_t ast_at;
    Py_ssize_t level_ast_at;
    Py_ssize_t level_at;
} PacketWriter;

static int check_offset(Py_ssize_t at, Py_ssize_t width, PyObject *header, const char *name) {
    if (at == -1) return 0;
    if (at < 12 || at + width > PyBytes_GET_SIZE(header)) {
        PyErr_Format(PyExc_ValueError, "%s (%zd) is not inside the header's extensions", name, at);
        return -1;
    }
    return 0;
}

static int packet_writer_init(PacketWriter *self, PyObject *args, PyObject *kwds) {
    PyObject *header, *level_header;
    Py_ssize_t ast_at, level_ast_at, level_at;
    static char *kwlist[] = {"header", "ast_at", "level_header", "level_ast_at", "level_at", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "SnOnn:PacketWriter", kwlist, &header, &ast_at, &level_header,
                                     &level_ast_at, &level_at))
        return -1;
    if (PyBytes_GET_SIZE(header) < 12) {
        PyErr_SetString(PyExc_ValueError, "an RTP header has at least 12 octets");
        return -1;
    }
    if (check_offset(ast_at, 3, header, "ast_at") < 0) return -1;
    if (level_header == Py_None) {
        level_header = NULL;
    } else {
        if (!PyBytes_Check(level_header) || PyBytes_GET_SIZE(level_header) < 12) {
            PyErr_SetString(PyExc_TypeError, "level_header must be an RTP header (bytes) or None");
            return -1;
        }
        if (check_offset(level_ast_at, 3, level_header, "level_ast_at") < 0) return -1;
        if (level_at == -1 || check_offset(level_at, 1, level_header, "level_at") < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "level_at is needed with level_header");
            return -1;
        }
    }
    Py_INCREF(header);
    Py_XSETREF(self->header, header);
    Py_XINCREF(level_header);
    Py_XSETREF(self->level_header, level_header);
    self->ast_at = ast_at;
    self->level_ast_at = level_ast_at;
    self->level_at = level_at;
    return 0;
}

static void packet_writer_dealloc(PacketWriter *self) {
    Py_XDECREF(self->header);
    Py_XDECREF(self->level_header);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int as_long(PyObject *o, long long lo, long long hi, const char *name, long long *out) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s out of range: %lld", name, v);
        return -1;
    }
    *out = v;
    return 0;
}

static PyObject *packet_writer_write(PacketWriter *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError,
                     "write(marker, seq, timestamp, abs_send_time, level, payload, padding, srtp) takes 8 "
                     "arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (self->header == NULL) {
        PyErr_SetString(PyExc_ValueError, "PacketWriter is not initialised");
        return NULL;
    }
    int marker = PyObject_IsTrue(args[0]);
    if (marker < 0) return NULL;
    long long seq, ts, ast, level, padding;
    if (as_long(args[1], 0, 0xFFFF, "seq", &seq) < 0 || as_long(args[2], 0, 0xFFFFFFFFLL, "timestamp", &ts) < 0 ||
        as_long(args[3], 0, 0xFFFFFFLL, "abs_send_time", &ast) < 0 || as_long(args[4], -1, 0xFF, "level", &level) < 0 ||
        as_long(args[6], 0, 0xFF, "padding", &padding) < 0)
        return NULL;
    SrtpContext *srtp = NULL;
    if (args[7] != Py_None) {
        if (!PyObject_TypeCheck(args[7], &SrtpContextType)) {
            PyErr_SetString(PyExc_TypeError, "srtp must be an SrtpContext or None");
            return NULL;
        }
        srtp = (SrtpContext *)args[7];
    }
    Py_buffer payload;
    if (PyObject_GetBuffer(args[5], &payload, PyBUF_SIMPLE) < 0) return NULL;

    PyObject *header = self->header;
    Py_ssize_t ast_at = self->ast_at;
    int with_level = level >= 0 && self->level_header != NULL;
    if (with_level) {
        header = self->level_header;
        ast_at = self->level_ast_at;
    }
    Py_ssize_t hlen = PyBytes_GET_SIZE(header);
    Py_ssize_t size = hlen + payload.len + (Py_ssize_t)padding;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size + (srtp != NULL ? SRTP_MAX_TRAILER_LEN : 0));
    if (out == NULL) {
        PyBuffer_Release(&payload);
        return NULL;
    }
    uint8_t *p = (uint8_t *)PyBytes_AS_STRING(out);
    memcpy(p, PyBytes_AS_STRING(header), (size_t)hlen);
    if (marker) p[1] |= 0x80;
    p[2] = (uint8_t)(seq >> 8);
    p[3] = (uint8_t)seq;
    p[4] = (uint8_t)(ts >> 24);
    p[5] = (uint8_t)(ts >> 16);
    p[6] = (uint8_t)(ts >> 8);
    p[7] = (uint8_t)ts;
    if (ast_at >= 0) {
        p[ast_at] = (uint8_t)(ast >> 16);
        p[ast_at + 1] = (uint8_t)(ast >> 8);
        p[ast_at + 2] = (uint8_t)ast;
    }
    if (with_level) p[self->level_at] = (uint8_t)level;
    memcpy(p + hlen, payload.buf, (size_t)payload.len);
    PyBuffer_Release(&payload);
    if (padding) {
        p[0] |= 0x20; /* P; V=2 and X stay as the template has them */
        memset(p + size - padding, 0, (size_t)padding - 1);
        p[size - 1] = (uint8_t)padding;
    }
    if (srtp != NULL) {
        if (protect_in_place(srtp, &out, size) < 0) return NULL;
    }
    return out;
}

static PyMethodDef packet_writer_methods[] = {
    {"write", (PyCFunction)(void (*)(void))packet_writer_write, METH_FASTCALL,
     "write(marker, seq, timestamp, abs_send_time, level, payload, padding, srtp) -> bytes: the "
     "slot's packet, SRTP-protected with srtp (an SrtpContext) or plain (None)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PacketWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rtc._rtp_writer.PacketWriter",
    .tp_basicsize = sizeof(PacketWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "PacketWriter(header, ast_at, level_header, level_ast_at, level_at): one slot's packets.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)packet_writer_init,
    .tp_dealloc = (destructor)packet_writer_dealloc,
    .tp_methods = packet_writer_methods,
};

/* -- module ------------------------------------------------------------------------------ */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rtc._rtp_writer", "A slot's outgoing RTP packet, written and SRTP-protected in one call.",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__rtp_writer(void) {
    if (PyType_Ready(&SrtpContextType) < 0 || PyType_Ready(&PacketWriterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    SrtpError = PyErr_NewException("rtc._rtp_writer.SrtpError", NULL, NULL);
    if (SrtpError == NULL || PyModule_AddObjectRef(m, "SrtpError", SrtpError) < 0 ||
        PyModule_AddObjectRef(m, "SrtpContext", (PyObject *)&SrtpContextType) < 0 ||
        PyModule_AddObjectRef(m, "PacketWriter", (PyObject *)&PacketWriterType) < 0 ||
        PyModule_AddIntConstant(m, "SRTP_MAX_TRAILER_LEN", SRTP_MAX_TRAILER_LEN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
