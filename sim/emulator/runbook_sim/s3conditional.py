"""Atomic conditional writes to S3 objects.

moto 5.2.5 understands PutObject with If-None-Match: * and If-Match: <etag> (412
PreconditionFailed when the condition fails; If-Match on a missing key is 404
NoSuchKey), DeleteObject with If-Match, and CompleteMultipartUpload with
If-None-Match. But it checks the condition and then writes, in two steps, on a
threaded server: two requests racing for one key can both pass the check and both
"win" (seen with a short thread switch interval: two of 32 concurrent
If-None-Match: * PUTs succeeded). S3 evaluates the condition and the write as one
step, and runbook's S3 state relies on that (the run lock, and journal records
that two writers must never both write). Here every object write and delete of
the S3 REST API (PutObject, CopyObject, UploadPart, DeleteObject,
CompleteMultipartUpload...) is serialised under one lock, so a condition holds
until the write it guards is done. Bodies are read before the lock is taken, so
the lock is held only while moto updates its in-memory state.
"""

import functools
import threading

from moto.s3 import responses as s3_responses

_lock = threading.RLock()


def _serialised(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _lock:
            return fn(*args, **kwargs)

    wrapper._runbook_sim_serialised = True
    return wrapper


def install():
    cls = s3_responses.S3Response
    for name in ("_key_response_put", "_key_response_post", "_key_response_delete"):
        fn = getattr(cls, name)
        if not getattr(fn, "_runbook_sim_serialised", False):
            setattr(cls, name, _serialised(fn))
