"""Live S3 replication of new objects.

moto 5.2.5 stores a bucket's replication configuration (Put/GetBucketReplication)
but never replicates anything. Here a PutObject into a bucket with an enabled rule
whose prefix matches also writes the object into the rule's destination bucket
(at once; AWS takes seconds to minutes). Replicas are not replicated again, so
two-way rules between a pair of buckets do not loop, as in AWS without replica
modification sync. Objects that existed before the rule are left alone: that is
what the S3 Batch Operations replicate job is for (see s3batch).
"""

import threading

from moto.s3 import models as s3_models

_local = threading.local()


def replicating():
    """Context manager: writes inside it are replicas and are not replicated."""

    class _Ctx:
        def __enter__(self):
            _local.depth = getattr(_local, "depth", 0) + 1

        def __exit__(self, *exc):
            _local.depth -= 1

    return _Ctx()


def destination(backend, bucket_name, key):
    """The destination bucket name of bucket_name's first enabled rule matching key, or None."""
    try:
        bucket = backend.get_bucket(bucket_name)
    except Exception:
        return None
    config = getattr(bucket, "replication", None)
    if not config:
        return None
    for rule in sorted(config["Rule"], key=lambda r: -int(r.get("Priority", 0) or 0)):
        if rule.get("Status") != "Enabled":
            continue
        f = rule.get("Filter") or {}
        prefix = f.get("Prefix") or rule.get("Prefix") or ""
        if isinstance(f.get("And"), dict):
            prefix = f["And"].get("Prefix") or prefix
        if key.startswith(prefix):
            return rule["Destination"]["Bucket"].split(":::", 1)[-1]
    return None


_orig_put = s3_models.S3Backend.put_object


def put_object(self, bucket_name, key_name, value, *args, **kwargs):
    key = _orig_put(self, bucket_name, key_name, value, *args, **kwargs)
    if getattr(_local, "depth", 0) == 0 and kwargs.get("multipart") is None:
        dest = destination(self, bucket_name, key_name)
        if dest and dest != bucket_name:
            with replicating():
                try:
                    _orig_put(self, dest, key_name, value, disable_notification=True)
                except Exception:
                    pass  # a missing destination fails the replication, not the PutObject
    return key


def install():
    s3_models.S3Backend.put_object = put_object
