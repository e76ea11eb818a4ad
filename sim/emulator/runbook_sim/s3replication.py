"""S3 replication as S3 does it: asynchronous, per rule, and only for what the rule covers.

moto 5.2.5 stores a bucket's replication configuration (Put/GetBucketReplication)
but never replicates anything, and its GetBucketReplication reports every rule with
`Filter: {Prefix: ""}` and `DeleteMarkerReplication: Disabled`, dropping the filter,
SourceSelectionCriteria and the destination's EncryptionConfiguration, Metrics and
ReplicationTime. Here:

- GetBucketReplication returns the rules as they were put.
- PutBucketReplication refuses, as S3 does, a destination bucket of this account that
  is not versioned ("Destination bucket must have versioning enabled"), and a rule
  that selects SSE-KMS objects without naming a replica KMS key (S3 User Guide,
  "Replicating encrypted objects (SSE-S3, SSE-KMS, DSSE-KMS)": the rule must give
  `ReplicaKmsKeyID` when it sets `SseKmsEncryptedObjects`).
- A new object version (PutObject, CompleteMultipartUpload, CopyObject) is queued for
  each destination of the enabled rules whose filter covers it (rule-level Prefix,
  Filter.Prefix, Filter.Tag, Filter.And with prefix and tags; the highest Priority
  per destination). An object encrypted with SSE-KMS or DSSE-KMS is replicated only
  by a rule with `SourceSelectionCriteria.SseKmsEncryptedObjects` Enabled, and its
  replica is encrypted with the rule's `ReplicaKmsKeyID` (same document: "By default,
  Amazon S3 doesn't replicate objects that are stored at rest using server-side
  encryption with AWS KMS keys"). Other objects are not eligible and get no
  replication status.
- The copy lands in the destination after the timing model's `s3_replication`
  seconds (S3: seconds to minutes; Replication Time Control's SLA is 15 minutes).
  Meanwhile HeadObject/GetObject of the source say ReplicationStatus PENDING; then
  COMPLETED, and the replica says REPLICA. A destination bucket that is gone or no
  longer versioned fails the operation (FAILED; S3 User Guide, "Amazon S3
  replication failure reasons": DstBucketNotFound, DstBucketUnversioned).
- Replicas are not replicated again, so two-way rules between a pair of buckets do
  not loop (no replica modification sync). Objects that existed before a rule are
  left alone: that is what the S3 Batch Operations replicate job is for (s3batch).
- For a rule whose destination enables `Metrics` (or `ReplicationTime`, which
  requires it), CloudWatch answers `AWS/S3` `OperationsPendingReplication`,
  `BytesPendingReplication`, `ReplicationLatency` (seconds the destination is
  behind: the age of the oldest pending operation, or the longest one completed in
  that minute) and `OperationsFailedReplication`, dimensions `SourceBucket`,
  `DestinationBucket`, `RuleId`, in the source bucket's region, one datapoint a
  minute (S3 User Guide, "Monitoring progress with replication metrics and Amazon
  S3 event notifications"). Datapoints are stamped with the wall clock's minutes (an
Advance of the simulation's clock compresses their history). Simplification: the datapoint of the current minute
  carries the live value at once; S3 delivers metrics with a delay of a minute or
  more, so a reader that demands a datapoint newer than its start (as the AWS
  plugin's replication wait does) only waits longer against AWS.

Not modelled: delete markers and deletes, replica modification sync, Object Lock,
S3 RTC's 15-minute threshold events, cross-account destinations, storage classes.
"""

import datetime
import threading

from moto.cloudwatch import models as cw_models
from moto.core.responses import ActionResult
from moto.s3 import models as s3_models
from moto.s3 import responses as s3_responses
from moto.s3.exceptions import ReplicationConfigurationNotFoundError, S3ClientError

from . import state
from .timing import CLOCK, TIMING, now

_local = threading.local()

# Replication operations, oldest first: queued, pending, then done or failed.
_ops = []
# How long finished operations are kept for the metrics' history.
HISTORY_SECONDS = 3600
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


class Op:
    __slots__ = (
        "account", "partition", "source", "key", "version", "size", "queued",
        "rule_id", "dest", "metrics", "region", "replica_kms", "due", "state", "finished", "reason",
    )

    def __init__(self, backend, bucket, key):
        self.account = backend.account_id
        self.partition = getattr(key, "partition", "aws")
        self.source = bucket
        self.key = key
        self.version = key.version_id
        self.size = key.size
        self.queued = now()
        self.rule_id = None
        self.dest = None
        self.metrics = False
        self.region = None
        self.replica_kms = None
        self.due = None
        self.state = "queued"  # queued -> pending -> completed | failed
        self.finished = None
        self.reason = None


def replicating():
    """Context manager: writes inside it are replicas and are not replicated."""

    class _Ctx:
        def __enter__(self):
            _local.depth = getattr(_local, "depth", 0) + 1

        def __exit__(self, *exc):
            _local.depth -= 1

    return _Ctx()


def _text(v):
    return "" if v is None else str(v)


def _list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _status(d, *path):
    for p in path:
        if not isinstance(d, dict):
            return ""
        d = d.get(p)
    return _text(d)


def _minutes(d):
    if isinstance(d, dict) and d.get("Minutes") is not None:
        return {"Minutes": int(d["Minutes"])}
    return None


def rules(config):
    """The rules of a stored (xmltodict) replication configuration, in the API's shape."""
    out = []
    for r in _list((config or {}).get("Rule")):
        rule = {"ID": _text(r.get("ID")), "Status": _text(r.get("Status"))}
        if r.get("Priority") is not None:
            rule["Priority"] = int(r["Priority"])
        if "Prefix" in r:  # the V1 schema: a rule-level prefix, no Filter
            rule["Prefix"] = _text(r.get("Prefix"))
        f = r.get("Filter")
        if isinstance(f, dict) or "Filter" in r:
            f = f or {}
            flt = {}
            if "Prefix" in f:
                flt["Prefix"] = _text(f.get("Prefix"))
            if isinstance(f.get("Tag"), dict):
                flt["Tag"] = {"Key": _text(f["Tag"].get("Key")), "Value": _text(f["Tag"].get("Value"))}
            if isinstance(f.get("And"), dict):
                a = f["And"]
                flt["And"] = {}
                if "Prefix" in a:
                    flt["And"]["Prefix"] = _text(a.get("Prefix"))
                tags = [{"Key": _text(t.get("Key")), "Value": _text(t.get("Value"))} for t in _list(a.get("Tag"))]
                if tags:
                    flt["And"]["Tags"] = tags
            rule["Filter"] = flt
        ssc = r.get("SourceSelectionCriteria")
        if isinstance(ssc, dict):
            rule["SourceSelectionCriteria"] = {
                k: {"Status": _status(ssc, k, "Status")} for k in ("SseKmsEncryptedObjects", "ReplicaModifications") if k in ssc
            }
        for k in ("DeleteMarkerReplication", "ExistingObjectReplication"):
            if isinstance(r.get(k), dict):
                rule[k] = {"Status": _status(r, k, "Status")}
        d = r.get("Destination") or {}
        dest = {"Bucket": _text(d.get("Bucket"))}
        for k in ("Account", "StorageClass"):
            if d.get(k):
                dest[k] = _text(d[k])
        if isinstance(d.get("AccessControlTranslation"), dict):
            dest["AccessControlTranslation"] = {"Owner": _status(d, "AccessControlTranslation", "Owner")}
        if isinstance(d.get("EncryptionConfiguration"), dict):
            dest["EncryptionConfiguration"] = {"ReplicaKmsKeyID": _status(d, "EncryptionConfiguration", "ReplicaKmsKeyID")}
        for k, inner in (("ReplicationTime", "Time"), ("Metrics", "EventThreshold")):
            if isinstance(d.get(k), dict):
                dest[k] = {"Status": _status(d, k, "Status")}
                m = _minutes(d[k].get(inner))
                if m:
                    dest[k][inner] = m
        rule["Destination"] = dest
        out.append(rule)
    return out


def _bucket_of(arn):
    return arn.split(":::", 1)[-1]


def _covers(rule, key_name, tags):
    """Whether rule's filter (or V1 prefix) covers an object with key_name and tags."""
    if "Prefix" in rule and "Filter" not in rule:
        return key_name.startswith(rule["Prefix"])
    f = rule.get("Filter") or {}
    prefix, want = f.get("Prefix", ""), []
    if "Tag" in f:
        want = [f["Tag"]]
    if "And" in f:
        prefix, want = f["And"].get("Prefix", ""), f["And"].get("Tags", [])
    return key_name.startswith(prefix) and all(tags.get(t["Key"]) == t["Value"] for t in want)


def kms_selected(rule):
    return _status(rule, "SourceSelectionCriteria", "SseKmsEncryptedObjects", "Status") == "Enabled"


def metrics_enabled(rule):
    d = rule.get("Destination") or {}
    return _status(d, "Metrics", "Status") == "Enabled" or _status(d, "ReplicationTime", "Status") == "Enabled"


def _eligible(bucket, key_name, tags, encryption):
    """{destination bucket name: rule} for the enabled rules covering the object; the
    highest Priority wins per destination. Encryption selects as S3 does."""
    by_dest = {}
    for rule in rules(getattr(bucket, "replication", None)):
        if rule["Status"] != "Enabled" or not _covers(rule, key_name, tags):
            continue
        if encryption in KMS_ALGORITHMS and not kms_selected(rule):
            continue
        dest = _bucket_of(rule["Destination"]["Bucket"])
        if dest not in by_dest or rule.get("Priority", 0) > by_dest[dest].get("Priority", 0):
            by_dest[dest] = rule
    return by_dest


def destination(backend, bucket_name, key):
    """The destination bucket name of the highest-priority enabled rule covering key
    (by prefix and the object's tags), or None. Used by Batch Replication."""
    try:
        bucket = backend.get_bucket(bucket_name)
    except Exception:
        return None
    obj = bucket.keys.get(key) if hasattr(bucket.keys, "get") else None
    tags = _tags(backend, obj) if obj is not None else {}
    best = None
    for dest, rule in _eligible(bucket, key, tags, None).items():
        if best is None or rule.get("Priority", 0) > best[1].get("Priority", 0):
            best = (dest, rule)
    return best[0] if best else None


def _tags(backend, key):
    try:
        return {t["Key"]: t["Value"] for t in backend.get_object_tagging(key).get("Tags", [])}
    except Exception:
        return {}


def _backend(account, partition):
    return s3_models.s3_backends[account][partition]


def _resolve(op):
    """Turn a queued version into one pending operation per destination (at the tick
    after the write, when the request has also set the object's tags)."""
    backend = _backend(op.account, op.partition)
    try:
        bucket = backend.get_bucket(op.source)
    except Exception:
        return []
    eligible = _eligible(bucket, op.key.name, _tags(backend, op.key), op.key.encryption)
    ops = []
    for dest, rule in sorted(eligible.items()):
        o = Op.__new__(Op)
        for s in Op.__slots__:
            setattr(o, s, getattr(op, s))
        o.rule_id, o.dest, o.metrics, o.region = rule["ID"], dest, metrics_enabled(rule), bucket.region_name
        o.due = op.queued + TIMING.get("s3_replication")
        o.state = "pending"
        o.replica_kms = rule["Destination"].get("EncryptionConfiguration", {}).get("ReplicaKmsKeyID")
        ops.append(o)
    if ops:
        op.key._sim_replication_status = "PENDING"
    return ops


def _replicate(op):
    backend = _backend(op.account, op.partition)
    try:
        dest = backend.get_bucket(op.dest)
    except Exception:
        return "DstBucketNotFound"
    if getattr(dest, "versioning_status", None) != "Enabled":
        return "DstBucketUnversioned"
    kms = op.key.encryption in KMS_ALGORITHMS
    try:
        value = op.key.value
    except ValueError:
        # The version was deleted (moto closed its buffer) before its turn came:
        # there is nothing left to copy, as in S3, where a version deleted by id
        # is never replicated (S3 User Guide, "What does Amazon S3 replicate?").
        return "SourceVersionDeleted"
    with replicating():
        replica = _orig_put(
            backend, op.dest, op.key.name, value, disable_notification=True,
            encryption=op.key.encryption if kms else None,
            kms_key_id=op.replica_kms if kms else None,
        )
    replica._sim_replication_status = "REPLICA"
    try:
        tags = _tags(backend, op.key)
        if tags:
            backend.put_object_tagging(replica, tags)
    except Exception:
        pass
    return None


@state.ticker
def _advance():
    t = now()
    new = []
    for op in _ops:
        if op.state == "queued":
            new.extend(_resolve(op))
        else:
            new.append(op)
    _ops[:] = new
    for op in _ops:
        if op.state != "pending" or op.due > t:
            continue
        failure = _replicate(op)
        op.finished = op.due
        op.state = "failed" if failure else "completed"
        op.reason = failure
        # The source's status: FAILED if any destination failed, COMPLETED once all did.
        siblings = [o for o in _ops if o.key is op.key]
        if any(o.state == "failed" for o in siblings):
            op.key._sim_replication_status = "FAILED"
        elif all(o.state == "completed" for o in siblings):
            op.key._sim_replication_status = "COMPLETED"
    horizon = t - HISTORY_SECONDS
    _ops[:] = [o for o in _ops if o.finished is None or o.finished >= horizon]


@state.on_reset
def _reset():
    _ops.clear()


def pending_view():
    return [
        {"source": o.source, "key": o.key.name, "destination": o.dest, "rule": o.rule_id, "state": o.state,
         "queued": o.queued, "due": o.due, "reason": o.reason or ""}
        for o in _ops
    ]


@state.route("GET", "s3/replication")
def _control_view(_doc):
    return {"operations": pending_view()}


# ---- S3 ----

_orig_put = s3_models.S3Backend.put_object
_orig_put_replication = s3_models.S3Backend.put_bucket_replication


def put_object(self, bucket_name, key_name, value, *args, **kwargs):
    key = _orig_put(self, bucket_name, key_name, value, *args, **kwargs)
    if getattr(_local, "depth", 0) == 0:
        try:
            bucket = self.get_bucket(bucket_name)
        except Exception:
            return key
        if getattr(bucket, "replication", None):
            with state.LOCK:
                _ops.append(Op(self, bucket_name, key))
    return key


def put_bucket_replication(self, bucket_name, replication):
    for rule in rules(replication):
        if kms_selected(rule) and not (rule["Destination"].get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID"):
            raise S3ClientError("InvalidRequest", "ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present.")
        dest = _bucket_of(rule["Destination"]["Bucket"])
        account = rule["Destination"].get("Account")
        if account and account != self.account_id:
            continue
        try:
            bucket = self.get_bucket(dest)
        except Exception:
            continue  # S3 then fails each operation (DstBucketNotFound)
        if getattr(bucket, "versioning_status", None) != "Enabled":
            raise S3ClientError("InvalidRequest", "Destination bucket must have versioning enabled.")
    return _orig_put_replication(self, bucket_name, replication)


def get_bucket_replication(self):
    self.data["Action"] = "GetBucketReplication"
    replication = self.backend.get_bucket_replication(self.bucket_name)
    if not replication:
        raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
    return self.serialized(
        ActionResult({"ReplicationConfiguration": {"Role": replication.get("Role"), "Rules": rules(replication)}})
    )


_orig_response_dict = s3_models.FakeKey.response_dict


def _response_dict(self):
    res = _orig_response_dict.fget(self)
    status = getattr(self, "_sim_replication_status", None)
    if status:
        res["x-amz-replication-status"] = status
    return res


# ---- CloudWatch: AWS/S3 replication metrics ----


def _utc_naive(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).replace(tzinfo=None)


def _metric_datapoints(backend):
    t = now()
    groups = {}
    for o in _ops:
        if o.metrics and o.account == backend.account_id and o.region == backend.region_name:
            groups.setdefault((o.source, o.dest, o.rule_id), []).append(o)
    out = []
    for (source, dest, rule_id), ops in groups.items():
        dims = [
            {"Name": "SourceBucket", "Value": source},
            {"Name": "DestinationBucket", "Value": dest},
            {"Name": "RuleId", "Value": rule_id},
        ]
        # Minutes of the wall clock, as CloudWatch stamps them; the simulation's
        # clock runs ahead of it by the offset of every Advance.
        off = CLOCK.offset()
        first = min(o.queued for o in ops) - off
        ts = first - first % 60
        while ts <= t - off:
            # A past minute is sampled at its end; the current one now.
            at = min(ts + 60, t - off) + off
            pending = [o for o in ops if o.queued <= at and (o.finished is None or o.finished > at)]
            done = [o for o in ops if o.finished is not None and ts + off <= o.finished < ts + off + 60]
            latency = max([at - o.queued for o in pending] + [o.finished - o.queued for o in done] + [0.0])
            failed = sum(1 for o in done if o.state == "failed")
            for name, value, unit in (
                ("OperationsPendingReplication", float(len(pending)), "Count"),
                ("BytesPendingReplication", float(sum(o.size for o in pending)), "Bytes"),
                ("ReplicationLatency", float(int(latency)), "Seconds"),
                ("OperationsFailedReplication", float(failed), "Count"),
            ):
                out.append(cw_models.MetricDatum("AWS/S3", name, value, dims, _utc_naive(ts), unit))
            ts += 60
    return out


def _wrap_metrics(orig):
    def get_all_metrics(self):
        with state.LOCK:
            extra = _metric_datapoints(self)
        return orig(self) + extra

    return get_all_metrics


def install():
    s3_models.S3Backend.put_object = put_object
    s3_models.S3Backend.put_bucket_replication = put_bucket_replication
    s3_models.FakeKey.response_dict = property(_response_dict)
    s3_responses.S3Response.get_bucket_replication = get_bucket_replication
    cw_models.CloudWatchBackend.get_all_metrics = _wrap_metrics(cw_models.CloudWatchBackend.get_all_metrics)
