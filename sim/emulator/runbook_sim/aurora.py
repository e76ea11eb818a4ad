"""Aurora Global Database: switchover, failover, and replication lag.

What moto 5.2.5 has: CreateGlobalCluster, CreateDBCluster with
GlobalClusterIdentifier (first member is the writer, later ones secondaries),
DescribeGlobalClusters (members with IsWriter and Readers), RemoveFromGlobalCluster.
What it lacks, added here:

- SwitchoverGlobalCluster and FailoverGlobalCluster (moto answers "not implemented").
  Both take the target's full ARN, put the global cluster in `switching-over` /
  `failing-over` (with a FailoverState) for the timing model's aurora_switchover /
  aurora_failover seconds, then flip the writer and return to `available`. A second
  operation while one runs is an InvalidGlobalClusterStateFault; a target that is
  not a secondary member is rejected. FailoverGlobalCluster needs AllowDataLoss=true
  (or Switchover=true, which makes it a switchover) and touches nothing in the old
  primary's region, so it works when that region is unreachable. After a failover
  the old writer rejoins as a secondary in `pending-resync` for another
  aurora_failover period.
- DescribeGlobalClusters ignoring GlobalClusterIdentifier (moto returns every
  global cluster and never GlobalClusterNotFoundFault); members lacking
  SynchronizationStatus.
- Replication lag. The RDS API has no lag field (botocore's model: GlobalClusterMember
  has DBClusterArn, Readers, IsWriter, GlobalWriteForwardingStatus,
  SynchronizationStatus). Real Aurora publishes it as the CloudWatch metric
  AWS/RDS AuroraGlobalDBReplicationLag (milliseconds, dimension DBClusterIdentifier,
  in the secondary's region), so that is where it appears here: moto's CloudWatch
  answers GetMetricStatistics/GetMetricData with one datapoint a minute for every
  connected secondary. The value is set through the control API
  (POST /_sim/aurora/lag); GET /_sim/aurora shows it with the writes a failover lost.
"""

import datetime

from moto.cloudwatch import models as cw_models
from moto.rds import models as rds_models
from moto.rds import responses as rds_responses
from moto.rds.exceptions import DBClusterNotFoundError
from moto.core.responses import ActionResult

from . import state
from .errors import SimServiceError
from .timing import Transition, now

DEFAULT_LAG_MS = 45.0  # a typical cross-region lag, well under a second

# global cluster ARN -> Operation in flight
_ops = {}
# cluster ARN -> lag in ms (a secondary's; absent -> DEFAULT_LAG_MS)
_lag = {}
_default_lag = [DEFAULT_LAG_MS]
# cluster ARN -> epoch seconds since when it is a secondary (absent: since creation)
_secondary_since = {}
# cluster ARN -> Transition of a resync after a failover
_resync = {}
# completed operations, oldest first, for the control API
_history = []


class Operation:
    def __init__(self, kind, global_cluster, source, target, allow_data_loss, region):
        self.kind = kind  # "switchover" | "failover"
        self.global_arn = global_cluster.global_cluster_arn
        self.global_id = global_cluster.global_cluster_identifier
        self.source_arn = source.db_cluster_arn if source else None
        self.target_arn = target.db_cluster_arn
        self.allow_data_loss = allow_data_loss
        self.region = region
        self.lag_ms = lag_of(target)
        self.transition = Transition("aurora_switchover" if kind == "switchover" else "aurora_failover")

    @property
    def status(self):
        return "switching-over" if self.kind == "switchover" else "failing-over"

    def record(self):
        t = self.transition
        return {
            "kind": self.kind,
            "global_cluster": self.global_id,
            "from_cluster_arn": self.source_arn,
            "to_cluster_arn": self.target_arn,
            "called_in_region": self.region,
            "allow_data_loss": self.allow_data_loss,
            "replication_lag_ms_at_start": self.lag_ms,
            # What an unplanned failover loses: the writes the target had not received.
            "lost_writes_ms": self.lag_ms if self.kind == "failover" else 0.0,
            "started": iso(t.started),
            "completes": iso(t.ends),
            "seconds": t.duration,
        }


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat()


def lag_of(cluster):
    return _lag.get(cluster.db_cluster_arn, _default_lag[0])


def region_of_arn(arn):
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def all_global_clusters():
    """(account_id, GlobalCluster) for every account moto knows."""
    out = []
    for account_id, regions in list(rds_models.rds_backends.items()):
        if "us-east-1" not in regions:
            continue
        for gc in list(regions["us-east-1"].global_clusters.values()):
            out.append((account_id, gc))
    return out


@state.ticker
def _apply_due():
    for arn, op in list(_ops.items()):
        if not op.transition.done():
            continue
        del _ops[arn]
        gc = _find_by_arn(arn)
        if gc is not None:
            for member in gc.members:
                was_writer = member.is_writer
                member.is_writer = member.db_cluster_arn == op.target_arn
                if was_writer and not member.is_writer:
                    _secondary_since[member.db_cluster_arn] = op.transition.ends
                    if op.kind == "failover":
                        _resync[member.db_cluster_arn] = Transition("aurora_failover")
                if member.is_writer:
                    _secondary_since.pop(member.db_cluster_arn, None)
                    _resync.pop(member.db_cluster_arn, None)
            gc.status = "available"
        rec = op.record()
        rec["completed"] = True
        _history.append(rec)
    for arn, t in list(_resync.items()):
        if t.done():
            del _resync[arn]
            _secondary_since[arn] = t.ends


def _find_by_arn(arn):
    for _, gc in all_global_clusters():
        if gc.global_cluster_arn == arn:
            return gc
    return None


@state.on_reset
def _reset():
    _ops.clear()
    _lag.clear()
    _secondary_since.clear()
    _resync.clear()
    _history.clear()
    _default_lag[0] = DEFAULT_LAG_MS


# ---- model patches ----


def _failover_state(self):
    op = _ops.get(self.global_cluster_arn)
    if op is None:
        return None
    # Aurora reports the operation as pending briefly before it starts failing over.
    status = "pending" if op.transition.progress() < 0.2 else "failing-over"
    return {
        "Status": status,
        "FromDbClusterArn": op.source_arn,
        "ToDbClusterArn": op.target_arn,
        "IsDataLossAllowed": bool(op.allow_data_loss),
    }


def _global_cluster_members(self):
    members = []
    for member in self.members:
        m = {
            "DBClusterArn": member.db_cluster_arn,
            "IsWriter": bool(member.is_writer),
            "Readers": [],
        }
        if member.is_writer:
            m["Readers"] = [r.db_cluster_arn for r in self.members if not r.is_writer]
        else:
            m["GlobalWriteForwardingStatus"] = "disabled"
            m["SynchronizationStatus"] = "pending-resync" if member.db_cluster_arn in _resync else "connected"
        members.append(m)
    return members


# ---- API ----


def _global_backend(resp):
    return resp.global_backend


def _get_global(resp, identifier):
    gcs = _global_backend(resp).global_clusters
    if not identifier or identifier not in gcs:
        raise SimServiceError("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found.")
    return gcs[identifier]


def describe_global_clusters(self):
    identifier = self._get_param("GlobalClusterIdentifier")
    if identifier:
        clusters = [_get_global(self, identifier)]
    else:
        clusters = _global_backend(self).describe_global_clusters()
    return ActionResult({"GlobalClusters": clusters})


def _find_cluster_by_arn(account_id, arn):
    for region, backend in list(rds_models.rds_backends[account_id].items()):
        for cluster in list(backend.clusters.values()):
            if cluster.db_cluster_arn == arn:
                return cluster
    return None


def _start(resp, kind, allow_data_loss):
    gid = resp._get_param("GlobalClusterIdentifier")
    target_id = resp._get_param("TargetDbClusterIdentifier")
    with state.LOCK:
        gc = _get_global(resp, gid)
        if not target_id or not target_id.startswith("arn:"):
            raise SimServiceError(
                "InvalidParameterValue",
                f"TargetDbClusterIdentifier {target_id!r} must be the Amazon Resource Name (ARN) "
                "of the secondary DB cluster, so that Aurora can find it in its Region.",
            )
        if gc.global_cluster_arn in _ops:
            op = _ops[gc.global_cluster_arn]
            raise SimServiceError(
                "InvalidGlobalClusterStateFault",
                f"Global cluster {gc.global_cluster_identifier} is in {op.status} state; "
                "wait until it is available.",
            )
        target = next((m for m in gc.members if m.db_cluster_arn == target_id), None)
        if target is None:
            if _find_cluster_by_arn(resp.current_account, target_id) is None:
                raise DBClusterNotFoundError(target_id)
            raise SimServiceError(
                "InvalidParameterValue",
                f"DB cluster {target_id} is not a member of global cluster {gc.global_cluster_identifier}.",
            )
        if target.is_writer:
            raise SimServiceError(
                "InvalidParameterValue",
                f"DB cluster {target_id} is already the primary cluster of global cluster "
                f"{gc.global_cluster_identifier}.",
            )
        if target.db_cluster_arn in _resync:
            raise SimServiceError(
                "InvalidDBClusterStateFault",
                f"DB cluster {target_id} is resynchronizing after a failover and cannot be promoted yet.",
            )
        source = next((m for m in gc.members if m.is_writer), None)
        op = Operation(kind, gc, source, target, allow_data_loss, resp.region)
        _ops[gc.global_cluster_arn] = op
        gc.status = op.status
        return ActionResult({"GlobalCluster": gc})


def switchover_global_cluster(self):
    return _start(self, "switchover", False)


def failover_global_cluster(self):
    allow = _bool(self._get_param("AllowDataLoss"))
    switchover = _bool(self._get_param("Switchover"))
    if allow and switchover:
        raise SimServiceError(
            "InvalidParameterCombination", "AllowDataLoss and Switchover cannot both be true."
        )
    if not allow and not switchover:
        raise SimServiceError(
            "InvalidParameterCombination",
            "Specify AllowDataLoss=true for a failover with possible data loss, or "
            "Switchover=true (or use SwitchoverGlobalCluster) for a switchover.",
        )
    return _start(self, "failover" if allow else "switchover", bool(allow))


def _bool(v):
    if isinstance(v, str):
        return v.lower() == "true"
    return bool(v)


# ---- CloudWatch: AuroraGlobalDBReplicationLag ----

_orig_get_all_metrics = cw_models.CloudWatchBackend.get_all_metrics
LAG_HISTORY_SECONDS = 3 * 3600


def _lag_datapoints(backend):
    out = []
    t_now = now()
    for account_id, gc in all_global_clusters():
        if account_id != backend.account_id:
            continue
        for member in gc.members:
            if member.is_writer or member.db_cluster_arn in _resync:
                continue
            if region_of_arn(member.db_cluster_arn) != backend.region_name:
                continue
            since = _secondary_since.get(member.db_cluster_arn)
            if since is None:
                created = getattr(member, "cluster_create_time", None)
                since = _epoch(created) if created is not None else t_now
            since = max(since, t_now - LAG_HISTORY_SECONDS)
            # One datapoint a minute, the first at the minute it became a secondary.
            ts = since - since % 60
            value = lag_of(member)
            while ts <= t_now:
                out.append(
                    cw_models.MetricDatum(
                        "AWS/RDS",
                        "AuroraGlobalDBReplicationLag",
                        value,
                        [{"Name": "DBClusterIdentifier", "Value": member.db_cluster_identifier}],
                        # naive UTC, as moto stores the datapoints it is sent
                        datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).replace(tzinfo=None),
                        "Milliseconds",
                    )
                )
                ts += 60
    return out


def _epoch(v):
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        v = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if v.tzinfo is None:
        v = v.replace(tzinfo=datetime.timezone.utc)
    return v.timestamp()


def _get_all_metrics(self):
    with state.LOCK:
        extra = _lag_datapoints(self)
    return _orig_get_all_metrics(self) + extra


# ---- control API ----


@state.route("GET", "aurora")
def _control_view(_doc):
    out = []
    for account_id, gc in all_global_clusters():
        op = _ops.get(gc.global_cluster_arn)
        out.append(
            {
                "account_id": account_id,
                "global_cluster": gc.global_cluster_identifier,
                "arn": gc.global_cluster_arn,
                "status": gc.status,
                "operation": op.record() if op else None,
                "members": [
                    {
                        "cluster_arn": m.db_cluster_arn,
                        "cluster_id": m.db_cluster_identifier,
                        "region": region_of_arn(m.db_cluster_arn),
                        "is_writer": bool(m.is_writer),
                        "synchronization": None
                        if m.is_writer
                        else ("pending-resync" if m.db_cluster_arn in _resync else "connected"),
                        "replication_lag_ms": None if m.is_writer else lag_of(m),
                    }
                    for m in gc.members
                ],
            }
        )
    return {"global_clusters": out, "history": list(_history), "default_lag_ms": _default_lag[0]}


@state.route("POST", "aurora/lag")
def _control_set_lag(doc):
    """{"lag_ms": n} for every secondary, or {"cluster": arn-or-id, "lag_ms": n}."""
    lag = doc.get("lag_ms")
    if isinstance(lag, bool) or not isinstance(lag, (int, float)) or lag < 0:
        raise ValueError("lag_ms must be a non-negative number")
    cluster = doc.get("cluster")
    if not cluster:
        _default_lag[0] = float(lag)
        _lag.clear()
        return _control_view({})
    for _, gc in all_global_clusters():
        for m in gc.members:
            if cluster in (m.db_cluster_arn, m.db_cluster_identifier):
                _lag[m.db_cluster_arn] = float(lag)
                return _control_view({})
    raise KeyError(f"no global cluster member {cluster!r}")


def install():
    rds_models.GlobalCluster.failover_state = property(_failover_state)
    rds_models.GlobalCluster.global_cluster_members = property(_global_cluster_members)
    rds_responses.RDSResponse.describe_global_clusters = describe_global_clusters
    rds_responses.RDSResponse.switchover_global_cluster = switchover_global_cluster
    rds_responses.RDSResponse.failover_global_cluster = failover_global_cluster
    cw_models.CloudWatchBackend.get_all_metrics = _get_all_metrics
