/* rtc._sendmmsg: send many UDP datagrams, each to its own address, in one sendmmsg(2).
 *
 * Python's socket module has no sendmmsg. The SFU's UDP mux (rtc/udp_mux.py) queues the
 * copies of one incoming packet for all its subscribers on one shared socket and hands them
 * here once per event-loop turn, so the kernel is entered once per batch instead of once per
 * subscriber. Addresses come pre-packed as struct sockaddr bytes (rtc.udp_mux.pack_sockaddr,
 * cached per subscriber), so nothing is parsed per datagram.
 *
 * send(fd, payloads, addrs) -> (sent, errors)
 *   payloads: list of bytes; addrs: list of bytes (a struct sockaddr_in / sockaddr_in6 each),
 *   the same length. Returns how many datagrams the kernel took and a tuple of
 *   (index, errno) for each one it refused. A refused datagram never hides the others: the
 *   call goes on with the next one (a bad address or EMSGSIZE fails only its own datagram).
 *   EAGAIN/EWOULDBLOCK (the non-blocking socket's send buffer is full) fails the refused
 *   datagram and every one after it in one go, as each further try would fail the same way.
 *   The GIL is released around the syscalls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Linux refuses vlen > UIO_MAXIOV (1024); longer batches go in chunks. */
#define CHUNK 1024

static int add_error(PyObject **errors, Py_ssize_t index, int err) {
    if (*errors == NULL) {
        *errors = PyList_New(0);
        if (*errors == NULL) return -1;
    }
    PyObject *item = Py_BuildValue("(ni)", index, err);
    if (item == NULL) return -1;
    int rc = PyList_Append(*errors, item);
    Py_DECREF(item);
    return rc;
}

static PyObject *sendmmsg_send(PyObject *self, PyObject *args) {
    int fd;
    PyObject *payloads, *addrs;
    if (!PyArg_ParseTuple(args, "iO!O!:send", &fd, &PyList_Type, &payloads, &PyList_Type, &addrs))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(payloads);
    if (PyList_GET_SIZE(addrs) != n) {
        PyErr_SetString(PyExc_ValueError, "payloads and addrs differ in length");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyList_GET_ITEM(payloads, i), *a = PyList_GET_ITEM(addrs, i);
        if (!PyBytes_Check(p) || !PyBytes_Check(a)) {
            PyErr_Format(PyExc_TypeError, "item %zd: payload and address must be bytes", i);
            return NULL;
        }
        Py_ssize_t alen = PyBytes_GET_SIZE(a);
        if (alen < (Py_ssize_t)sizeof(sa_family_t) || alen > (Py_ssize_t)sizeof(struct sockaddr_storage)) {
            PyErr_Format(PyExc_ValueError, "item %zd: not a packed sockaddr (%zd bytes)", i, alen);
            return NULL;
        }
    }

    /* While the GIL is released another thread could change the lists and free an item:
     * tuples of the same items keep every bytes object alive until the syscalls are done. */
    payloads = PyList_AsTuple(payloads);
    if (payloads == NULL) return NULL;
    addrs = PyList_AsTuple(addrs);
    if (addrs == NULL) {
        Py_DECREF(payloads);
        return NULL;
    }
    struct mmsghdr msgs[CHUNK];
    struct iovec iovs[CHUNK];
    PyObject *errors = NULL;
    Py_ssize_t sent = 0, pos = 0;
    int failed = 0;
    while (pos < n) {
        Py_ssize_t count = n - pos < CHUNK ? n - pos : CHUNK;
        memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
        for (Py_ssize_t k = 0; k < count; k++) {
            PyObject *p = PyTuple_GET_ITEM(payloads, pos + k), *a = PyTuple_GET_ITEM(addrs, pos + k);
            iovs[k].iov_base = PyBytes_AS_STRING(p);
            iovs[k].iov_len = (size_t)PyBytes_GET_SIZE(p);
            msgs[k].msg_hdr.msg_iov = &iovs[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            msgs[k].msg_hdr.msg_name = PyBytes_AS_STRING(a);
            msgs[k].msg_hdr.msg_namelen = (socklen_t)PyBytes_GET_SIZE(a);
        }
        int rc, err = 0;
        Py_BEGIN_ALLOW_THREADS
        do {
            rc = sendmmsg(fd, msgs, (unsigned int)count, 0);
        } while (rc < 0 && errno == EINTR);
        if (rc < 0) err = errno;
        Py_END_ALLOW_THREADS
        if (rc > 0) {
            sent += rc;
            pos += rc;
            continue;
        }
        /* rc < 0: the datagram at pos was refused (rc == 0 does not happen for count > 0,
         * but treat it the same way so the loop always moves on). */
        if (rc == 0) err = EIO;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            for (Py_ssize_t i = pos; i < n; i++) {
                if (add_error(&errors, i, err) < 0) { failed = 1; break; }
            }
            break;
        }
        if (add_error(&errors, pos, err) < 0) { failed = 1; break; }
        pos += 1;
    }
    Py_DECREF(payloads);
    Py_DECREF(addrs);
    if (failed) {
        Py_XDECREF(errors);
        return NULL;
    }
    PyObject *err_tuple;
    if (errors == NULL) {
        err_tuple = PyTuple_New(0);
    } else {
        err_tuple = PyList_AsTuple(errors);
        Py_DECREF(errors);
    }
    if (err_tuple == NULL) return NULL;
    PyObject *result = Py_BuildValue("(nN)", sent, err_tuple);
    return result;
}

static PyMethodDef methods[] = {
    {"send", sendmmsg_send, METH_VARARGS,
     "send(fd, payloads, addrs) -> (sent, errors): one sendmmsg(2) for many datagrams, each to "
     "its own packed sockaddr; errors is a tuple of (index, errno) for refused datagrams."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "rtc._sendmmsg", "sendmmsg(2) for the SFU's UDP mux.", -1, methods,
};

PyMODINIT_FUNC PyInit__sendmmsg(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "CHUNK", CHUNK) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
