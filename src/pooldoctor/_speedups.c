/* pooldoctor._speedups: the checkout's stack capture and hold bookkeeping, in C.
 *
 * The same functions as runtime/hotpath.py, which runs when this module is not built (no
 * compiler, Python < 3.11) or POOLDOCTOR_NO_SPEEDUPS is set; both are tested. They run at
 * every pool checkout and checkin. Anything out of the ordinary makes them decline (None or
 * False), and the caller takes its careful, pure-Python path.
 *
 *   checkout(info, record_dict, fairy) -> Hold | None   (called by the pool's connect())
 *   checkin(hold) -> bool
 *   user_stack(frame, depth) -> tuple | None
 *   TxnHook(orig, begin) -> a dialect's do_begin (begin=True) or do_commit/do_rollback
 *   configure(guard, hold_type, on_collected, judged, ids, get_running_loop, current_task,
 *             capture, threads)
 *
 * Speed comes from doing what the interpreter's specialised instructions do: a Hold's
 * fields are __slots__, stored at the offsets their member descriptors give; the guard's
 * and a pool's fields are read from their instance dicts; counters are advanced with
 * tp_iternext. configure() checks each of these assumptions, or raises (then the pure
 * Python functions are used).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030B0000
#error "pooldoctor._speedups needs Python 3.11 or newer (PyFrame_GetLasti)"
#endif

/* On 3.11 and 3.12 the caller's stack is read from the interpreter's own frames, as
 * greenlet and the profilers do: no frame object is created (the public API makes one for
 * every frame it passes, and that was most of the checkout's cost on engine paths). Other
 * versions use the public API. tests/unit/test_hotpath.py compares both with Python. */
#if PY_VERSION_HEX < 0x030D0000
#define INTERNAL_FRAMES 1
#define Py_BUILD_CORE
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#endif

#define MAX_DEPTH 64

/* set by configure() */
static PyObject *guard_dict, *hold_type, *on_collected, *judged, *ids, *get_running_loop,
    *current_task, *threads;
enum {
    F_ID, F_POOL, F_FRAMES, F_SINCE, F_THREAD_ID, F_THREAD, F_PID, F_SERVER_ID, F_REPORTED,
    F_TXN_BEGUN, F_TXN_FRAMES, F_TXN_REPORTED, F_TXN_SINCE, N_FIELDS
};
static const char *field_names[N_FIELDS] = {
    "id",        "pool",      "frames",     "since",        "thread_id", "thread", "pid",
    "server_id", "reported",  "txn_begun",  "txn_frames",   "txn_reported", "txn_since"};
static PyObject *guard, *capture;
static Py_ssize_t field_offset[N_FIELDS];

/* interned names */
static PyObject *s_pid, *s_depth, *s_observers, *s_task, *s_get_name, *s_holds, *s_checkout_counter,
    *s_peak, *s_hold_s_total, *s_connection_record, *k_pd_pid, *k_pd_hold, *k_pd_server_id;

#define FIELD(h, f) (*(PyObject **)((char *)(h) + field_offset[f]))

static int
configured(void)
{
    if (guard_dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pooldoctor._speedups: configure() first");
        return 0;
    }
    return 1;
}

/* Store a new reference into a hold's slot (steals value). */
static int
set_field(PyObject *h, int f, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    Py_XSETREF(FIELD(h, f), value);
    return 0;
}

/* time.monotonic(), as the time module computes it */
static PyObject *
monotonic(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    if (PyTime_Monotonic(&t) < 0) {
        return NULL;
    }
    return PyFloat_FromDouble(PyTime_AsSecondsDouble(t));
#elif defined(__linux__)
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    double d = (ns % 1000000000LL == 0) ? (double)(ns / 1000000000LL) : (double)ns / 1e9;
    return PyFloat_FromDouble(d);
#else
    static PyObject *fn;
    if (fn == NULL) {
        PyObject *time = PyImport_ImportModule("time");
        if (time == NULL) {
            return NULL;
        }
        fn = PyObject_GetAttrString(time, "monotonic");
        Py_DECREF(time);
        if (fn == NULL) {
            return NULL;
        }
    }
    return PyObject_CallNoArgs(fn);
#endif
}

/* next(counter) for an itertools.count */
static PyObject *
advance(PyObject *counter)
{
    PyObject *v = Py_TYPE(counter)->tp_iternext(counter);
    if (v == NULL && !PyErr_Occurred()) {
        PyErr_SetNone(PyExc_StopIteration);
    }
    return v;
}

static void
release(PyObject **items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(items[i]);
    }
}

/* The first n of items as a tuple, stealing them (on failure they are released). */
static PyObject *
pack(PyObject **items, Py_ssize_t n)
{
    PyObject *t = PyTuple_New(n);
    if (t == NULL) {
        release(items, n);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(t, i, items[i]);
    }
    return t;
}

/* Up to depth (code, lasti) pairs from frame outwards, as a flat tuple. Steals frame. */
static PyObject *
walk(PyFrameObject *frame, Py_ssize_t depth)
{
    PyObject *items[2 * MAX_DEPTH];
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < depth; i++) {
        PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti(frame));
        if (lasti == NULL) {
            Py_DECREF(frame);
            release(items, n);
            return NULL;
        }
        items[n++] = (PyObject *)PyFrame_GetCode(frame);
        items[n++] = lasti;
        if (i == depth - 1) {
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
        if (frame == NULL) {
            break;
        }
    }
    Py_XDECREF(frame);
    return pack(items, n);
}

/* The stack from the first user frame at or above frame. NULL with no exception set when
 * it cannot tell: a file not judged yet (sites.py judges it), or no user frame on this
 * stack (an asyncio engine: the user's frames are on another greenlet). */
static PyObject *
user_stack_of(PyFrameObject *frame, Py_ssize_t depth)
{
    if (depth < 1 || depth > MAX_DEPTH) {
        return NULL;
    }
    Py_INCREF(frame);
    for (;;) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyObject *internal = PyDict_GetItemWithError(judged, code->co_filename);
        Py_DECREF(code);
        if (internal == Py_False) {
            return walk(frame, depth);
        }
        if (internal != Py_True) { /* not judged yet, or an error */
            Py_DECREF(frame);
            return NULL;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        if (back == NULL) {
            return NULL;
        }
        frame = back;
    }
}

#ifdef INTERNAL_FRAMES
static _PyInterpreterFrame *
complete(_PyInterpreterFrame *f)
{
    while (f != NULL && _PyFrame_IsIncomplete(f)) {
        f = f->previous;
    }
    return f;
}

/* Up to depth (code, lasti) pairs from f outwards, as a flat tuple. */
static PyObject *
walk_internal(_PyInterpreterFrame *f, Py_ssize_t depth)
{
    PyObject *items[2 * MAX_DEPTH];
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < depth && f != NULL; i++) {
        int lasti = _PyInterpreterFrame_LASTI(f);
        PyObject *lasti_o = PyLong_FromLong(lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT));
        if (lasti_o == NULL) {
            release(items, n);
            return NULL;
        }
        items[n++] = Py_NewRef((PyObject *)f->f_code);
        items[n++] = lasti_o;
        f = complete(f->previous);
    }
    return pack(items, n);
}
#endif

/* The stack from the first user frame above the Python function that called us (the pool's
 * connect()); NULL with no exception set when it cannot tell (see user_stack_of). */
static PyObject *
caller_stack(Py_ssize_t depth)
{
    if (depth < 1 || depth > MAX_DEPTH) {
        return NULL;
    }
#ifdef INTERNAL_FRAMES
    _PyInterpreterFrame *f = complete(PyThreadState_Get()->cframe->current_frame);
    if (f == NULL) {
        return NULL;
    }
    for (f = complete(f->previous); f != NULL; f = complete(f->previous)) {
        PyObject *internal = PyDict_GetItemWithError(judged, f->f_code->co_filename);
        if (internal == Py_False) {
            return walk_internal(f, depth);
        }
        if (internal != Py_True) { /* not judged yet, or an error */
            return NULL;
        }
    }
    return NULL;
#else
    PyFrameObject *current = PyEval_GetFrame(); /* borrowed */
    if (current == NULL) {
        return NULL;
    }
    PyFrameObject *back = PyFrame_GetBack(current);
    if (back == NULL) {
        return NULL;
    }
    PyObject *t = user_stack_of(back, depth);
    Py_DECREF(back);
    return t;
#endif
}

static PyObject *
user_stack(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyFrame_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "user_stack(frame, depth)");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    Py_ssize_t depth = PyLong_AsSsize_t(args[1]);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *t = user_stack_of((PyFrameObject *)args[0], depth);
    if (t == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return t;
}

/* An object's instance dict (new reference; created if it has none yet). */
static PyObject *
dict_of(PyObject *obj)
{
    return PyObject_GenericGetDict(obj, NULL);
}

/* A new hold on fairy, its fields filled in; NULL on error. */
static PyObject *
new_hold_sid(PyObject *info, PyObject *sid, PyObject *fairy, PyObject *frames, PyObject *pid,
             PyObject *hid)
{
    PyObject *args = PyTuple_Pack(2, fairy, on_collected);
    if (args == NULL) {
        return NULL;
    }
    /* weakref's tp_new does the work; its tp_init only checks the arguments again */
    PyObject *h = ((PyTypeObject *)hold_type)->tp_new((PyTypeObject *)hold_type, args, NULL);
    Py_DECREF(args);
    if (h == NULL) {
        return NULL;
    }
    /* the owning thread: its ident, and its Thread object (threading._active) for its name
     * and whether it is alive once the ident is reused */
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (ident == NULL) {
        goto fail;
    }
    PyObject *thread = PyDict_GetItemWithError(threads, ident);
    if (thread == NULL && PyErr_Occurred()) {
        Py_DECREF(ident);
        goto fail;
    }
    if (set_field(h, F_THREAD_ID, ident) < 0 || /* first: it steals ident */
        set_field(h, F_THREAD, Py_NewRef(thread != NULL ? thread : Py_None)) < 0 ||
        set_field(h, F_ID, Py_NewRef(hid)) < 0 || set_field(h, F_POOL, Py_NewRef(info)) < 0 ||
        set_field(h, F_FRAMES, Py_NewRef(frames)) < 0 || set_field(h, F_SINCE, monotonic()) < 0 ||
        set_field(h, F_PID, Py_NewRef(pid)) < 0 ||
        set_field(h, F_SERVER_ID, Py_NewRef(sid != NULL ? sid : Py_None)) < 0 ||
        set_field(h, F_REPORTED, Py_NewRef(Py_False)) < 0 ||
        set_field(h, F_TXN_BEGUN, Py_NewRef(Py_False)) < 0 ||
        set_field(h, F_TXN_FRAMES, Py_NewRef(Py_None)) < 0 ||
        set_field(h, F_TXN_REPORTED, Py_NewRef(Py_False)) < 0 ||
        set_field(h, F_TXN_SINCE, Py_NewRef(Py_None)) < 0) {
        goto fail;
    }
    /* the running task's name: current_task is asyncio's table loop -> task (3.11) or its
     * C current_task(loop) (see hotpath.task_name: no Python function on this path) */
    PyObject *loop = PyObject_CallNoArgs(get_running_loop);
    if (loop == NULL) {
        goto fail;
    }
    if (loop != Py_None) {
        PyObject *task;
        if (PyDict_CheckExact(current_task)) {
            task = PyDict_GetItemWithError(current_task, loop);
            if (task == NULL && !PyErr_Occurred()) {
                task = Py_None;
            }
            Py_XINCREF(task);
        }
        else {
            task = PyObject_CallOneArg(current_task, loop);
        }
        Py_DECREF(loop);
        if (task == NULL) {
            goto fail;
        }
        if (task != Py_None) {
            PyObject *name = PyObject_CallMethodNoArgs(task, s_get_name);
            Py_DECREF(task);
            if (name == NULL) {
                goto fail;
            }
            int r = PyObject_SetAttr(h, s_task, name);
            Py_DECREF(name);
            if (r < 0) {
                goto fail;
            }
        }
        else {
            Py_DECREF(task);
        }
    }
    else {
        Py_DECREF(loop);
    }
    return h;
fail:
    Py_DECREF(h);
    return NULL;
}

/* The same, the server id read from the connection's record dict d. */
static PyObject *
new_hold(PyObject *info, PyObject *d, PyObject *fairy, PyObject *frames, PyObject *pid,
         PyObject *hid)
{
    PyObject *sid = PyDict_GetItemWithError(d, k_pd_server_id);
    if (sid == NULL && PyErr_Occurred()) {
        return NULL;
    }
    return new_hold_sid(info, sid, fairy, frames, pid, hid);
}

/* dict[key] as a Py_ssize_t: 1 found, 0 missing, -1 on error. */
static int
dict_ssize(PyObject *dict, PyObject *key, Py_ssize_t *out)
{
    PyObject *v = PyDict_GetItemWithError(dict, key);
    if (v == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    *out = PyLong_AsSsize_t(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 1;
}

/* Count the checkout and the pool's peak (info_dict: the pool's PoolInfo's dict). */
static int
count(PyObject *info_dict, PyObject *holds)
{
    PyObject *counter = PyDict_GetItemWithError(info_dict, s_checkout_counter);
    if (counter == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_INCREF(counter); /* a Python __next__ could replace it in the dict */
    PyObject *v = advance(counter);
    Py_DECREF(counter);
    if (v == NULL) {
        return -1;
    }
    Py_DECREF(v);
    Py_ssize_t p;
    int found = dict_ssize(info_dict, s_peak, &p);
    if (found <= 0) {
        return found;
    }
    Py_ssize_t n = PyDict_GET_SIZE(holds);
    if (n <= p) {
        return 0;
    }
    PyObject *nv = PyLong_FromSsize_t(n);
    if (nv == NULL) {
        return -1;
    }
    int r = PyDict_SetItem(info_dict, s_peak, nv);
    Py_DECREF(nv);
    return r;
}

static PyObject *
checkout(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "checkout(info, record_dict, fairy)");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    PyObject *info = args[0], *d = args[1], *fairy = args[2];
    if (info == Py_None || !PyDict_CheckExact(d)) {
        Py_RETURN_NONE;
    }
    /* a connection this process made, not held already: else the careful path */
    PyObject *pid = PyDict_GetItemWithError(guard_dict, s_pid);
    PyObject *rpid = PyDict_GetItemWithError(d, k_pd_pid);
    if (pid == NULL || rpid == NULL) {
        goto decline;
    }
    int same = PyObject_RichCompareBool(rpid, pid, Py_EQ);
    if (same <= 0) {
        goto decline;
    }
    if (PyDict_Contains(d, k_pd_hold) != 0) {
        goto decline;
    }
    Py_ssize_t depth;
    if (dict_ssize(guard_dict, s_depth, &depth) <= 0) {
        goto decline;
    }
    PyObject *frames = caller_stack(depth);
    if (frames == NULL) {
        goto decline;
    }
    PyObject *h = NULL, *hid = NULL;
    PyObject *info_dict = dict_of(info);
    if (info_dict == NULL) {
        Py_DECREF(frames);
        return NULL;
    }
    PyObject *holds = PyDict_GetItemWithError(info_dict, s_holds);
    if (holds == NULL || !PyDict_CheckExact(holds)) {
        Py_DECREF(frames);
        Py_DECREF(info_dict);
        goto decline;
    }
    Py_INCREF(holds);
    Py_INCREF(pid); /* kept across the calls below (the task name is Python code) */
    hid = advance(ids);
    h = hid == NULL ? NULL : new_hold(info, d, fairy, frames, pid, hid);
    Py_DECREF(pid);
    if (h == NULL) {
        goto error;
    }
    /* on the record, then in the pool's table: a checkin finds it wherever this fails */
    if (PyDict_SetItem(d, k_pd_hold, h) < 0) {
        goto error;
    }
    if (PyDict_SetItem(holds, hid, h) < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (PyDict_DelItem(d, k_pd_hold) < 0) {
            PyErr_Clear();
        }
        PyErr_Restore(type, value, tb);
        goto error;
    }
    if (count(info_dict, holds) < 0) {
        goto error; /* the hold is recorded; only the statistics missed it */
    }
    Py_DECREF(frames);
    Py_DECREF(info_dict);
    Py_DECREF(holds);
    Py_DECREF(hid);
    return h;
error:
    Py_DECREF(frames);
    Py_DECREF(info_dict);
    Py_DECREF(holds);
    Py_XDECREF(hid);
    Py_XDECREF(h);
    return NULL;
decline:
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Whether a weak reference's object is still alive. */
static int
alive(PyObject *ref)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *obj;
    int r = PyWeakref_GetRef(ref, &obj);
    if (r < 0) {
        PyErr_Clear();
    }
    Py_XDECREF(obj);
    return r > 0;
#else
    return PyWeakref_GetObject(ref) != Py_None;
#endif
}

/* End the hold of a connection given back to its pool, the common way: True when done;
 * False when the careful path must (reported, observers, the proxy collected). */
static PyObject *
checkin(PyObject *self, PyObject *h)
{
    if (!configured()) {
        return NULL;
    }
    if (!PyObject_TypeCheck(h, (PyTypeObject *)hold_type)) {
        Py_RETURN_FALSE;
    }
    PyObject *rep = FIELD(h, F_REPORTED);
    if (rep != Py_False) { /* PD101 reported (the unleaked message), or not filled in */
        Py_RETURN_FALSE;
    }
    PyObject *observers = PyDict_GetItemWithError(guard_dict, s_observers);
    if (observers == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_FALSE;
    }
    int observed = PyObject_IsTrue(observers);
    if (observed != 0) {
        return observed < 0 ? NULL : Py_NewRef(Py_False);
    }
    if (!alive(h)) { /* the garbage collector's checkin */
        Py_RETURN_FALSE;
    }
    PyObject *info = FIELD(h, F_POOL), *hid = FIELD(h, F_ID), *since = FIELD(h, F_SINCE);
    if (info == NULL || hid == NULL || since == NULL || !PyFloat_CheckExact(since)) {
        Py_RETURN_FALSE;
    }
    PyObject *info_dict = dict_of(info);
    if (info_dict == NULL) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *holds = PyDict_GetItemWithError(info_dict, s_holds);
    if (holds == NULL || !PyDict_CheckExact(holds)) {
        result = PyErr_Occurred() ? NULL : Py_NewRef(Py_False);
        goto done;
    }
    PyObject *found = PyDict_GetItemWithError(holds, hid);
    if (found == NULL) {
        result = PyErr_Occurred() ? NULL : Py_NewRef(Py_True); /* ended already */
        goto done;
    }
    if (PyDict_DelItem(holds, hid) < 0) {
        goto done;
    }
    /* info.hold_s_total += monotonic() - h.since */
    PyObject *now = monotonic();
    if (now == NULL) {
        goto done;
    }
    double held = PyFloat_AS_DOUBLE(now) - PyFloat_AS_DOUBLE(since);
    Py_DECREF(now);
    PyObject *total = PyDict_GetItemWithError(info_dict, s_hold_s_total);
    if (total == NULL || !PyFloat_Check(total)) {
        result = PyErr_Occurred() ? NULL : Py_NewRef(Py_True);
        goto done;
    }
    PyObject *sum = PyFloat_FromDouble(PyFloat_AS_DOUBLE(total) + held);
    if (sum == NULL) {
        goto done;
    }
    int set = PyDict_SetItem(info_dict, s_hold_s_total, sum);
    Py_DECREF(sum);
    if (set == 0) {
        result = Py_NewRef(Py_True);
    }
done:
    Py_DECREF(info_dict);
    return result;
}

/* The offset of a slot of hold_type that holds an object (a T_OBJECT_EX member). */
static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name);
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "configure(): %s.%s is not a slot", type->tp_name, name);
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "configure(): %s.%s is not a writable object slot",
                     type->tp_name, name);
        return -1;
    }
    *offset = m->offset;
    return 0;
}

static PyObject *
configure(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "configure(guard, hold_type, on_collected, judged, ids, "
                        "get_running_loop, current_task, capture, threads)");
        return NULL;
    }
    PyObject *type = args[1];
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &_PyWeakref_RefType) ||
        !PyDict_CheckExact(args[3]) || Py_TYPE(args[4])->tp_iternext == NULL ||
        !PyDict_CheckExact(args[8])) {
        PyErr_SetString(PyExc_TypeError, "configure(): hold_type a weakref type, judged a "
                                         "dict, ids an iterator, threads a dict");
        return NULL;
    }
    PyTypeObject *t = (PyTypeObject *)type;
    if (t->tp_init != _PyWeakref_RefType.tp_init) {
        PyErr_SetString(PyExc_TypeError, "configure(): hold_type must keep weakref's __init__");
        return NULL;
    }
    Py_ssize_t offsets[N_FIELDS];
    for (int i = 0; i < N_FIELDS; i++) {
        if (slot_offset(t, field_names[i], &offsets[i]) < 0) {
            return NULL;
        }
    }
    PyObject *gdict = dict_of(args[0]);
    if (gdict == NULL) {
        return NULL;
    }
    memcpy(field_offset, offsets, sizeof(offsets));
    Py_XSETREF(guard_dict, gdict);
    PyObject **slots[9] = {&guard, &hold_type,        &on_collected, &judged,
                           &ids,   &get_running_loop, &current_task, &capture, &threads};
    for (int i = 0; i < 9; i++) {
        Py_XSETREF(*slots[i], Py_NewRef(args[i]));
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ transactions */

/* The hold of the connection proxy a dialect method was given (new reference), or NULL
 * with no exception set: not a pool's proxy, or not held. */
static PyObject *
hold_of(PyObject *conn)
{
    PyObject *rec = PyObject_GetAttr(conn, s_connection_record);
    if (rec == NULL) {
        PyErr_Clear(); /* a raw DB-API connection */
        return NULL;
    }
    PyObject *d = rec == Py_None ? NULL : PyObject_GenericGetDict(rec, NULL);
    Py_DECREF(rec);
    if (d == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *h = PyDict_GetItemWithError(d, k_pd_hold);
    Py_XINCREF(h);
    Py_DECREF(d);
    if (h == NULL || !PyObject_TypeCheck(h, (PyTypeObject *)hold_type)) {
        PyErr_Clear();
        Py_XDECREF(h);
        return NULL;
    }
    return h;
}

/* Count an internal failure (the exception set) with the guard; never raises. The
 * exception is made the one being handled while the guard logs it (exc_info), not left
 * raised: a Python call with an exception set fails. */
static void
internal_error(const char *where)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *handled = PyErr_GetHandledException();
    PyErr_SetHandledException(value);
    PyObject *r = PyObject_CallMethod(guard, "internal_error", "s", where);
    if (r == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(r);
    PyErr_SetHandledException(handled);
    Py_XDECREF(handled);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* A transaction begins on h: when, and where unless it is the checkout's first. The thread
 * that begins it uses the connection now: a checkout taken by one thread and handed to another
 * becomes the other's (Hold.adopt: rare, so through Python), so the first thread's end is no
 * PD110. */
static int
txn_begin(PyObject *h)
{
    /* the same ident may be a new thread's (idents are reused): the Thread objects decide */
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (ident == NULL) {
        return -1;
    }
    PyObject *thread = PyDict_GetItemWithError(threads, ident); /* borrowed */
    int same = thread != NULL || !PyErr_Occurred() ? 1 : -1;
    if (same == 1) {
        PyObject *tid = FIELD(h, F_THREAD_ID), *owner = FIELD(h, F_THREAD);
        same = tid != NULL && PyObject_RichCompareBool(tid, ident, Py_EQ) == 1 &&
               owner == (thread != NULL ? thread : Py_None);
    }
    Py_DECREF(ident);
    if (same < 0) {
        return -1;
    }
    if (!same) {
        PyErr_Clear();
        PyObject *r = PyObject_CallMethod(h, "adopt", NULL);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
    }
    if (set_field(h, F_TXN_SINCE, monotonic()) < 0) {
        return -1;
    }
    set_field(h, F_TXN_REPORTED, Py_NewRef(Py_False));
    if (FIELD(h, F_TXN_BEGUN) != Py_True) {
        set_field(h, F_TXN_BEGUN, Py_NewRef(Py_True)); /* told by the checkout's stack */
        return 0;
    }
    Py_ssize_t depth;
    int found = dict_ssize(guard_dict, s_depth, &depth);
    if (found <= 0) {
        return found;
    }
    PyObject *frames = caller_stack(depth);
    if (frames == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        frames = PyObject_CallFunction(capture, "in", 1, depth); /* the careful way */
    }
    return set_field(h, F_TXN_FRAMES, frames);
}

typedef struct {
    PyObject_HEAD
    PyObject *orig;
    int begin;
    vectorcallfunc vectorcall;
} TxnHook;

static PyObject *
txn_hook_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TxnHook *hook = (TxnHook *)self;
    PyObject *r = PyObject_Vectorcall(hook->orig, args, nargsf, kwnames);
    if (PyVectorcall_NARGS(nargsf) < 1 || guard_dict == NULL) {
        return r;
    }
    if (hook->begin) {
        if (r == NULL) {
            return NULL;
        }
        PyObject *h = hold_of(args[0]);
        if (h != NULL) {
            if (txn_begin(h) < 0) {
                internal_error("transaction begin");
            }
            Py_DECREF(h);
        }
        return r;
    }
    /* commit or rollback, failed or not: the transaction is over */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *h = hold_of(args[0]);
    if (h != NULL) {
        if (FIELD(h, F_TXN_SINCE) != Py_None) {
            set_field(h, F_TXN_SINCE, Py_NewRef(Py_None));
            set_field(h, F_TXN_FRAMES, Py_NewRef(Py_None));
        }
        Py_DECREF(h);
    }
    PyErr_Restore(type, value, tb);
    return r;
}

static PyObject *
txn_hook_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *orig;
    int begin;
    if (!PyArg_ParseTuple(args, "Op:TxnHook", &orig, &begin)) {
        return NULL;
    }
    if (!PyCallable_Check(orig)) {
        PyErr_SetString(PyExc_TypeError, "TxnHook(orig, begin): orig must be callable");
        return NULL;
    }
    TxnHook *self = (TxnHook *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->orig = Py_NewRef(orig);
    self->begin = begin;
    self->vectorcall = txn_hook_call;
    return (PyObject *)self;
}

static int
txn_hook_traverse(TxnHook *self, visitproc visit, void *arg)
{
    Py_VISIT(self->orig);
    return 0;
}

static int
txn_hook_clear(TxnHook *self)
{
    Py_CLEAR(self->orig);
    return 0;
}

static void
txn_hook_dealloc(TxnHook *self)
{
    PyObject_GC_UnTrack(self);
    txn_hook_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
txn_hook_get_orig(TxnHook *self, void *closure)
{
    return Py_NewRef(self->orig);
}

static PyGetSetDef txn_hook_getset[] = {
    {"orig", (getter)txn_hook_get_orig, NULL, "the dialect's own method", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TxnHookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pooldoctor._speedups.TxnHook",
    .tp_doc = "TxnHook(orig, begin): a dialect's do_begin (begin=True), do_commit or "
              "do_rollback, calling orig and recording the transaction on the hold.",
    .tp_basicsize = sizeof(TxnHook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(TxnHook, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = txn_hook_new,
    .tp_traverse = (traverseproc)txn_hook_traverse,
    .tp_clear = (inquiry)txn_hook_clear,
    .tp_dealloc = (destructor)txn_hook_dealloc,
    .tp_getset = txn_hook_getset,
};

/* ------------------------------------------------------------------ pool adapters */

/* The pool libraries' adapters (runtime/adapters/) have no record dict per connection, so
 * SQLAlchemy's checkout() above does not fit them: their holds are found through a side
 * table keyed by id() of the object handed out, their pool's stats in the pool's __dict__.
 * These two functions do a whole checkout (with the wait it took) and a checkin in one C
 * call, instead of several Python calls per checkout (measured in docs/benchmarks.md,
 * "Pool adapters: one wrapper, checkout in C"). Their Python twins, with the same
 * behaviour, are in runtime/adapters/fastpath.py; tests/unit/test_adapter_fastpath.py
 * compares the two. Anything out of the ordinary declines (None or False): the adapter
 * then takes its careful Python path (runtime/adapters/checkouts.py). */

/* set by configure_adapters() */
static PyObject *stats_type, *objs, *sids, *by_id;
static PyObject *s_active, *s_options, *s_wait_threshold, *s_pool_ref, *s_anchor_ref, *s_via,
    *s_waiting, *s_wait_s_total, *k_pd_stats;

/* Whether the weak reference ref names obj (alive). */
static int
refers_to(PyObject *ref, PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *o;
    int r = PyWeakref_GetRef(ref, &o);
    if (r < 0) {
        PyErr_Clear();
    }
    Py_XDECREF(o);
    return r > 0 && o == obj;
#else
    return PyWeakref_GetObject(ref) == obj;
#endif
}

/* Whether the pool of stats dict d, which has no weak reference, is pool: its anchor (a
 * weak reference in d) is alive and its attribute d["via"] is pool. */
static int
anchored_to(PyObject *d, PyObject *pool)
{
    PyObject *ref = PyDict_GetItemWithError(d, s_anchor_ref);
    PyObject *via = ref == NULL ? NULL : PyDict_GetItemWithError(d, s_via);
    if (via == NULL || !PyWeakref_CheckRefExact(ref) || !PyUnicode_CheckExact(via)) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *a;
    if (PyWeakref_GetRef(ref, &a) <= 0) {
        PyErr_Clear();
        return 0;
    }
#else
    PyObject *a = Py_NewRef(PyWeakref_GetObject(ref));
#endif
    PyObject *p = a == Py_None ? NULL : PyObject_GetAttr(a, via);
    Py_DECREF(a);
    if (p == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(p);
    return p == pool;
}

/* The stats of an adapter's pool (new reference): pool itself when it is one, else the
 * PoolStats in its __dict__ whose weak reference names it, or for a pool without __dict__
 * (asyncpg's) the one in by_id[id(pool)] whose anchor names it; NULL with no exception set
 * when there is none (a pool not seen yet). */
static PyObject *
pool_stats(PyObject *pool, PyObject **st_dict)
{
    PyObject *st;
    int anchored = 0;
    if (Py_TYPE(pool) == (PyTypeObject *)stats_type) {
        st = Py_NewRef(pool);
    }
    else {
        PyObject **dp = _PyObject_GetDictPtr(pool);
        if (dp == NULL || *dp == NULL) {
            PyObject *key = PyLong_FromVoidPtr(pool);
            if (key == NULL) {
                return NULL;
            }
            st = PyDict_GetItemWithError(by_id, key);
            Py_DECREF(key);
            anchored = 1;
        }
        else {
            st = PyDict_GetItemWithError(*dp, k_pd_stats);
        }
        if (st == NULL || Py_TYPE(st) != (PyTypeObject *)stats_type) {
            return NULL;
        }
        Py_INCREF(st);
    }
    PyObject *d = dict_of(st);
    if (d == NULL) {
        Py_DECREF(st);
        return NULL;
    }
    if (st != pool) {
        int same;
        if (anchored) {
            same = anchored_to(d, pool);
        }
        else {
            PyObject *ref = PyDict_GetItemWithError(d, s_pool_ref);
            same = ref != NULL && PyWeakref_CheckRefExact(ref) && refers_to(ref, pool);
        }
        if (!same) {
            Py_DECREF(d);
            Py_DECREF(st);
            return NULL;
        }
    }
    *st_dict = d;
    return st;
}

/* guard.active is True and no observer listens (else the careful path tells them) */
static int
fast_guard(void)
{
    if (PyDict_GetItemWithError(guard_dict, s_active) != Py_True) {
        return 0;
    }
    PyObject *observers = PyDict_GetItemWithError(guard_dict, s_observers);
    if (observers == NULL || !PyList_CheckExact(observers) || PyList_GET_SIZE(observers) != 0) {
        return 0;
    }
    return 1;
}

/* d[key] += delta (a float or an int field of a PoolStats' dict); 0 or -1 */
static int
add_to(PyObject *d, PyObject *key, double delta)
{
    PyObject *v = PyDict_GetItemWithError(d, key);
    if (v == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    PyObject *nv;
    if (PyLong_CheckExact(v)) {
        nv = PyLong_FromSsize_t(PyLong_AsSsize_t(v) + (Py_ssize_t)delta);
    }
    else if (PyFloat_CheckExact(v)) {
        nv = PyFloat_FromDouble(PyFloat_AS_DOUBLE(v) + delta);
    }
    else {
        return 0;
    }
    if (nv == NULL) {
        return -1;
    }
    int r = PyDict_SetItem(d, key, nv);
    Py_DECREF(nv);
    return r;
}

/* wait_begins(pool) -> float | None: a checkout of pool may wait: count it as waiting and
 * return when it began (time.monotonic()); None: not guarded, or the careful path must. */
static PyObject *
wait_begins_impl(PyObject *pool)
{
    if (stats_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pooldoctor._speedups: configure_adapters() first");
        return NULL;
    }
    if (!fast_guard()) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *d;
    PyObject *st = pool_stats(pool, &d);
    if (st == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *t0 = add_to(d, s_waiting, 1) < 0 ? NULL : monotonic();
    Py_DECREF(d);
    Py_DECREF(st);
    return t0;
}

/* checkout(pool, obj, conn, t0) -> Hold | None: obj was checked out of pool (or of the
 * pool whose PoolStats is given) by the caller of the calling function; conn: the driver
 * connection behind obj (None: obj itself), whose server id is in the side table already;
 * t0: when the checkout began to wait (None: it did not). None: declined, nothing done. */
static PyObject *
checkout_impl(PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "checkout(pool, obj, conn, t0)");
        return NULL;
    }
    if (stats_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pooldoctor._speedups: configure_adapters() first");
        return NULL;
    }
    PyObject *pool = args[0], *obj = args[1], *conn = args[2], *t0 = args[3];
    if (t0 != Py_None && !PyFloat_CheckExact(t0)) {
        Py_RETURN_NONE;
    }
    if (!fast_guard()) {
        goto decline_noref;
    }
    PyObject *d = NULL, *key = NULL, *ckey = NULL, *frames = NULL, *hid = NULL, *h = NULL;
    PyObject *holds = NULL;
    PyObject *st = pool_stats(pool, &d);
    if (st == NULL) {
        goto decline_noref;
    }
    key = PyLong_FromVoidPtr(obj);
    if (key == NULL) {
        goto error;
    }
    int held = PyDict_Contains(objs, key); /* held already, or a stale entry: careful path */
    if (held != 0) {
        if (held < 0) {
            goto error;
        }
        goto decline;
    }
    /* the server id, asked once per connection: its entry is (weak reference, id) */
    PyObject *c = conn == Py_None ? obj : conn;
    ckey = PyLong_FromVoidPtr(c);
    if (ckey == NULL) {
        goto error;
    }
    PyObject *e = PyDict_GetItemWithError(sids, ckey);
    if (e == NULL || !PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) != 2 ||
        !PyWeakref_CheckRefExact(PyTuple_GET_ITEM(e, 0)) ||
        !refers_to(PyTuple_GET_ITEM(e, 0), c)) {
        goto decline;
    }
    PyObject *sid = PyTuple_GET_ITEM(e, 1);
    holds = PyDict_GetItemWithError(d, s_holds);
    if (holds == NULL || !PyDict_CheckExact(holds)) {
        goto decline;
    }
    Py_INCREF(holds);
    double waited = 0;
    if (t0 != Py_None) { /* past the wait threshold: PD109, the careful path tells it */
        PyObject *options = PyDict_GetItemWithError(guard_dict, s_options);
        PyObject *limit = options == NULL ? NULL : PyObject_GetAttr(options, s_wait_threshold);
        if (limit == NULL) {
            goto error;
        }
        double threshold = PyFloat_AsDouble(limit);
        Py_DECREF(limit);
        if (threshold == -1 && PyErr_Occurred()) {
            goto error;
        }
        PyObject *now = monotonic();
        if (now == NULL) {
            goto error;
        }
        waited = PyFloat_AS_DOUBLE(now) - PyFloat_AS_DOUBLE(t0);
        Py_DECREF(now);
        if (waited >= threshold) {
            goto decline;
        }
    }
    Py_ssize_t depth;
    if (dict_ssize(guard_dict, s_depth, &depth) <= 0) {
        goto decline;
    }
    frames = caller_stack(depth);
    if (frames == NULL) {
        goto decline;
    }
    /* decided: from here on the checkout is done here (or fails with an error) */
    if (t0 != Py_None &&
        (add_to(d, s_waiting, -1) < 0 || add_to(d, s_wait_s_total, waited) < 0)) {
        goto error;
    }
    PyObject *pid = PyDict_GetItemWithError(guard_dict, s_pid);
    if (pid == NULL) {
        goto decline;
    }
    Py_INCREF(pid);
    Py_INCREF(sid); /* e may go while the task name (Python code) runs */
    hid = advance(ids);
    h = hid == NULL ? NULL : new_hold_sid(st, sid, obj, frames, pid, hid);
    Py_DECREF(sid);
    Py_DECREF(pid);
    if (h == NULL) {
        goto error;
    }
    /* in the side table, then in the pool's table: a checkin finds it wherever this fails */
    if (PyDict_SetItem(objs, key, h) < 0) {
        goto error;
    }
    if (PyDict_SetItem(holds, hid, h) < 0 || count(d, holds) < 0) {
        goto error;
    }
    Py_DECREF(holds);
    Py_DECREF(frames);
    Py_DECREF(hid);
    Py_DECREF(key);
    Py_DECREF(ckey);
    Py_DECREF(d);
    Py_DECREF(st);
    return h;
error:
    Py_XDECREF(h);
    h = NULL;
decline:
    Py_XDECREF(holds);
    Py_XDECREF(frames);
    Py_XDECREF(hid);
    Py_XDECREF(key);
    Py_XDECREF(ckey);
    Py_DECREF(d);
    Py_DECREF(st);
decline_noref:
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* checkin(obj) -> bool: obj went back to its pool; True: its hold ended (or it had none);
 * False: the careful path must (a PD101 told, observers, a raw connection's hold...). */
static PyObject *
checkin_impl(PyObject *self, PyObject *obj)
{
    if (stats_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pooldoctor._speedups: configure_adapters() first");
        return NULL;
    }
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL) {
        return NULL;
    }
    PyObject *result = NULL;
    PyObject *h = PyDict_GetItemWithError(objs, key);
    if (h == NULL) {
        result = PyErr_Occurred() ? NULL : Py_NewRef(Py_True);
        goto done;
    }
    if (!PyObject_TypeCheck(h, (PyTypeObject *)hold_type) || !refers_to(h, obj) ||
        FIELD(h, F_POOL) == NULL || Py_TYPE(FIELD(h, F_POOL)) != (PyTypeObject *)stats_type) {
        result = Py_NewRef(Py_False);
        goto done;
    }
    Py_INCREF(h);
    result = checkin(self, h);
    if (result == Py_True && PyDict_DelItem(objs, key) < 0) {
        Py_CLEAR(result);
    }
    Py_DECREF(h);
done:
    Py_DECREF(key);
    return result;
}

/* The functions the adapters call: they never raise into the user's program (an internal
 * failure is counted by the guard, and the call declines). */
static PyObject *
never_raise(PyObject *r, const char *where, PyObject *instead)
{
    if (r == NULL) {
        internal_error(where);
        return Py_NewRef(instead);
    }
    return r;
}

static PyObject *
adapter_wait_begins(PyObject *self, PyObject *pool)
{
    return never_raise(wait_begins_impl(pool), "adapter wait", Py_None);
}

static PyObject *
adapter_checkout(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return never_raise(checkout_impl(args, nargs), "adapter checkout", Py_None);
}

static PyObject *
adapter_checkin(PyObject *self, PyObject *obj)
{
    return never_raise(checkin_impl(self, obj), "adapter checkin", Py_False);
}

static PyObject *
configure_adapters(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyType_Check(args[0]) || !PyDict_CheckExact(args[1]) ||
        !PyDict_CheckExact(args[2]) || !PyDict_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "configure_adapters(stats_type, objects: dict, "
                                         "server_ids: dict, by_id: dict)");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    Py_XSETREF(stats_type, Py_NewRef(args[0]));
    Py_XSETREF(objs, Py_NewRef(args[1]));
    Py_XSETREF(sids, Py_NewRef(args[2]));
    Py_XSETREF(by_id, Py_NewRef(args[3]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"checkout", (PyCFunction)(void (*)(void))checkout, METH_FASTCALL,
     "checkout(info, record_dict, fairy) -> Hold | None: record a checkout made by the caller "
     "of the calling function (None: declined, take the careful path)."},
    {"checkin", (PyCFunction)checkin, METH_O,
     "checkin(hold) -> bool: end a checkout's hold (False: declined, take the careful path)."},
    {"user_stack", (PyCFunction)(void (*)(void))user_stack, METH_FASTCALL,
     "user_stack(frame, depth) -> tuple | None: the stack from the first user frame."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(guard, hold_type, on_collected, judged, ids, get_running_loop, current_task, "
     "capture, threads)."},
    {"adapter_wait_begins", (PyCFunction)adapter_wait_begins, METH_O,
     "adapter_wait_begins(pool) -> float | None: a pool adapter's checkout may wait."},
    {"adapter_checkout", (PyCFunction)(void (*)(void))adapter_checkout, METH_FASTCALL,
     "adapter_checkout(pool, obj, conn, t0) -> Hold | None: a pool adapter's checkout."},
    {"adapter_checkin", (PyCFunction)adapter_checkin, METH_O,
     "adapter_checkin(obj) -> bool: a pool adapter's checkin (False: take the careful path)."},
    {"configure_adapters", (PyCFunction)(void (*)(void))configure_adapters, METH_FASTCALL,
     "configure_adapters(stats_type, objects, server_ids, by_id)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "pooldoctor._speedups",
    "The checkout's stack capture and hold bookkeeping, in C (see runtime/hotpath.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    struct {
        PyObject **slot;
        const char *name;
    } names[] = {
        {&s_pid, "pid"},
        {&s_depth, "depth"},
        {&s_observers, "observers"},
        {&s_task, "task"},
        {&s_get_name, "get_name"},
        {&s_holds, "holds"},
        {&s_checkout_counter, "checkout_counter"},
        {&s_peak, "peak_checked_out"},
        {&s_hold_s_total, "hold_s_total"},
        {&k_pd_pid, "_pd_pid"},
        {&k_pd_hold, "_pd_hold"},
        {&k_pd_server_id, "_pd_server_id"},
        {&s_connection_record, "_connection_record"},
        {&s_active, "active"},
        {&s_options, "options"},
        {&s_wait_threshold, "wait_threshold"},
        {&s_pool_ref, "pool_ref"},
        {&s_anchor_ref, "anchor_ref"},
        {&s_via, "via"},
        {&s_waiting, "waiting"},
        {&s_wait_s_total, "wait_s_total"},
        {&k_pd_stats, "_pd_stats"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].slot == NULL &&
            (*names[i].slot = PyUnicode_InternFromString(names[i].name)) == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&TxnHookType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "TxnHook", (PyObject *)&TxnHookType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
