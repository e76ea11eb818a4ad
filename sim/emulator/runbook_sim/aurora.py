"""Aurora Global Database: switchover, failover, regional outages, resync and lag.

What moto 5.2.5 has: CreateGlobalCluster, CreateDBCluster with GlobalClusterIdentifier
(first member is the writer, later ones secondaries), DescribeGlobalClusters (members
with IsWriter and Readers), RemoveFromGlobalCluster, DB instances in a cluster (the
first one the cluster's writer). What it lacks or models unlike AWS, added here; the
sources are the Aurora User Guide, "Using switchover or failover in Amazon Aurora
Global Database" (below: the User Guide), and the RDS API reference:

- SwitchoverGlobalCluster and FailoverGlobalCluster (moto answers "not implemented").
  Both take the target's full ARN and put the global cluster in `switching-over` /
  `failing-over` with a FailoverState: Status `pending` for the first fifth of the
  operation ("being verified before the operation starts"), then `switching-over` for a
  switchover and `failing-over` for a failover (API reference, FailoverState). The
  operation lasts the timing model's aurora_switchover / aurora_failover seconds; then
  the writer flips. FailoverGlobalCluster with AllowDataLoss=true is a failover; without
  AllowDataLoss (Switchover=true, or neither flag) it is a switchover (API reference,
  FailoverGlobalCluster: "If you don't specify AllowDataLoss, the global database
  cluster operation defaults to a switchover"); both flags together are an
  InvalidParameterCombination.
- Where each is issued: a switchover in the Region of the current primary cluster, a
  failover in the Region of the secondary being promoted (User Guide, the `--region` of
  switchover-global-cluster and failover-global-cluster). A call elsewhere is refused
  (InvalidParameterValue: AWS does not document the code). A FailoverGlobalCluster that
  is a switchover follows the switchover's rule.
- Refusals, checked in this order: GlobalClusterNotFoundFault; a target given by name
  rather than ARN, a cluster that is not a member, or the writer itself
  (InvalidParameterValue; DBClusterNotFoundFault for a cluster that does not exist);
  another operation under way, or one whose old primary has not rejoined
  (InvalidGlobalClusterStateFault); the wrong Region; a target still resynchronising
  after a failover (InvalidDBClusterStateFault); a headless target, one without a DB
  instance ("Before you can perform a switchover or failover to a headless secondary
  Aurora DB cluster, you must add a DB instance to it", User Guide;
  InvalidDBClusterStateFault); engine versions that differ between the target and the
  primary (the User Guide requires the same major and minor version, and for some
  engine versions the same patch level; the simulation requires the same version
  string, the strict reading; InvalidDBClusterStateFault). AWS does not document
  which code each refusal carries beyond the faults the operations declare.
- While the operation runs, the target cluster (and the old primary) report DB cluster
  status `failing-over` (the User Guide: "Your database is unavailable for a short
  time while the primary and selected secondary clusters are assuming their new roles";
  the status AWS shows then is not documented). A secondary cluster's instances are all
  readers (DBClusterMembers IsClusterWriter false); the promoted cluster's first
  instance becomes its writer when the writer flips, the old primary's becomes a
  reader.
- Regional outages (control API /_sim/regions, state.set_dark). An operation does not
  complete while the target's Region is dark, nor a switchover while the old primary's
  is. A failover promotes the target while the old primary's Region is dark, but the
  global cluster stays `failing-over`, with its FailoverState, until that Region
  returns: AWS adds the old primary back "as soon as that old primary Region is healthy
  and available again" and promises nothing about the global cluster's status
  meanwhile (User Guide, "Performing managed failovers"). Then the old primary rejoins
  as a secondary in SynchronizationStatus `pending-resync` for the timing model's
  aurora_resync seconds ("a few minutes to several hours", ibid.) and the global
  cluster is `available` again. A failover with both Regions up does the same at once.
- DescribeGlobalClusters ignoring GlobalClusterIdentifier (moto returns every global
  cluster and never GlobalClusterNotFoundFault); members lacking SynchronizationStatus
  (botocore: `connected`, `pending-resync`).
- Replication lag. The RDS API has no lag field (botocore's GlobalClusterMember:
  DBClusterArn, Readers, IsWriter, GlobalWriteForwardingStatus, SynchronizationStatus).
  Aurora publishes CloudWatch metrics in the AWS/RDS namespace (milliseconds, dimension
  DBClusterIdentifier, in the secondary's region): AuroraGlobalDBReplicationLag for
  every engine, and AuroraGlobalDBRPOLag, which the User Guide says to use for Aurora
  PostgreSQL and for Aurora MySQL 3.04.0 / 2.12.0 and higher. moto's CloudWatch answers
  GetMetricStatistics/GetMetricData with one datapoint a minute of each for every
  connected secondary (RPO lag only where the engine has it). While the primary's Region
  is dark no new datapoint appears: the newest one predates the outage. Values are set
  through the control API (POST /_sim/aurora/lag); GET /_sim/aurora shows them with the
  writes a failover lost.
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

REPLICATION_LAG = "AuroraGlobalDBReplicationLag"
RPO_LAG = "AuroraGlobalDBRPOLag"
LAG_METRICS = (REPLICATION_LAG, RPO_LAG)

# global cluster ARN -> Operation not yet finished
_ops = {}
# (cluster ARN, metric or None) -> lag in ms; absent -> the defaults
_lag = {}
# metric or None -> default lag in ms
_default_lag = {None: DEFAULT_LAG_MS}
# cluster ARN -> clock time since when it is a secondary (absent: since creation)
_secondary_since = {}
# cluster ARN -> Transition of its resync after a failover, or None while it waits for
# its Region to return
_resync = {}
# region -> clock time it last returned from an outage
_returned = {}
# finished operations, oldest first, for the control API
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
        self.lag_ms = lag_of(target, RPO_LAG)
        self.transition = Transition("aurora_switchover" if kind == "switchover" else "aurora_failover")
        self.promoted_at = None  # clock time the writer flipped

    @property
    def status(self):
        return "switching-over" if self.kind == "switchover" else "failing-over"

    def failover_status(self):
        if self.promoted_at is None and self.transition.progress() < 0.2:
            return "pending"
        return self.status

    def phase(self):
        if self.promoted_at is None:
            if self.transition.done():
                return "waiting for " + ", ".join(sorted(self._dark_regions())) + " to return"
            return "pending" if self.transition.progress() < 0.2 else "promoting"
        return "promoted; waiting for the old primary's region " + region_of_arn(self.source_arn) + " to return"

    def _dark_regions(self):
        arns = [self.target_arn] + ([self.source_arn] if self.kind == "switchover" and self.source_arn else [])
        return {region_of_arn(a) for a in arns if _is_dark(a)}

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
            "phase": self.phase(),
            "promoted_at": iso(self.promoted_at) if self.promoted_at is not None else None,
        }


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat()


def region_of_arn(arn):
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 3 else ""


def _is_dark(arn):
    return state.dark_since(region_of_arn(arn)) is not None


def _rpo_metric_published(cluster):
    """Whether Aurora publishes AuroraGlobalDBRPOLag for the cluster's engine (User
    Guide: every Aurora PostgreSQL version; Aurora MySQL 3.04.0 and higher, 2.12.0 and
    higher)."""
    engine = (getattr(cluster, "engine", "") or "").lower()
    if engine == "aurora-postgresql":
        return True
    version = str(getattr(cluster, "engine_version", "") or "")
    if "mysql_aurora." not in version:
        return False
    try:
        parts = [int(p) for p in version.split("mysql_aurora.", 1)[1].split(".")[:2]]
    except ValueError:
        return False
    major, minor = (parts + [0, 0])[:2]
    return (major, minor) >= (3, 4) or (major == 2 and minor >= 12)


def lag_of(cluster, metric):
    arn = cluster.db_cluster_arn
    for key in ((arn, metric), (arn, None)):
        if key in _lag:
            return _lag[key]
    return _default_lag.get(metric, _default_lag[None])


def all_global_clusters():
    """(account_id, GlobalCluster) for every account moto knows."""
    out = []
    for account_id, regions in list(rds_models.rds_backends.items()):
        if "us-east-1" not in regions:
            continue
        for gc in list(regions["us-east-1"].global_clusters.values()):
            out.append((account_id, gc))
    return out


def _find_by_arn(arn):
    for _, gc in all_global_clusters():
        if gc.global_cluster_arn == arn:
            return gc
    return None


def _arrival(region, not_before):
    """When an operation blocked on region could go on: not before it returned."""
    return max(not_before, _returned.get(region, not_before))


@state.ticker
def _apply_due():
    for arn, op in list(_ops.items()):
        gc = _find_by_arn(arn)
        if gc is None:
            del _ops[arn]
            continue
        if op.promoted_at is None:
            if not op.transition.done() or op._dark_regions():
                continue
            at = op.transition.ends
            for a in [op.target_arn] + ([op.source_arn] if op.kind == "switchover" and op.source_arn else []):
                at = _arrival(region_of_arn(a), at)
            _promote(gc, op, at)
        if op.kind == "failover" and op.source_arn and _is_dark(op.source_arn):
            continue  # promoted; the global operation ends when the old primary rejoins
        at = op.promoted_at
        if op.kind == "failover" and op.source_arn:
            at = _arrival(region_of_arn(op.source_arn), at)
        _finish(gc, op, at)
    for arn, t in list(_resync.items()):
        if t is not None and t.done():
            del _resync[arn]
            _secondary_since[arn] = t.ends


def _promote(gc, op, at):
    for member in gc.members:
        was_writer = member.is_writer
        member.is_writer = member.db_cluster_arn == op.target_arn
        if member.is_writer:
            _secondary_since.pop(member.db_cluster_arn, None)
            _resync.pop(member.db_cluster_arn, None)
        elif was_writer:
            if op.kind == "failover":
                _resync[member.db_cluster_arn] = None  # starts when it rejoins
            else:
                _secondary_since[member.db_cluster_arn] = at
    op.promoted_at = at


def _finish(gc, op, at):
    if op.kind == "failover" and op.source_arn in _resync and _resync[op.source_arn] is None:
        t = Transition("aurora_resync")
        t.started = at
        _resync[op.source_arn] = t
    gc.status = "available"
    del _ops[op.global_arn]
    rec = op.record()
    rec["completed"] = True
    rec["finished"] = iso(at)
    _history.append(rec)


@state.on_region_change
def _region_changed(region, dark, at):
    if not dark:
        _returned[region] = at


@state.on_reset
def _reset():
    _ops.clear()
    _lag.clear()
    _secondary_since.clear()
    _resync.clear()
    _returned.clear()
    _history.clear()
    _default_lag.clear()
    _default_lag[None] = DEFAULT_LAG_MS


# ---- model patches ----


def _failover_state(self):
    op = _ops.get(self.global_cluster_arn)
    if op is None:
        return None
    return {
        "Status": op.failover_status(),
        "FromDbClusterArn": op.source_arn,
        "ToDbClusterArn": op.target_arn,
        "IsDataLossAllowed": bool(op.allow_data_loss),
    }


def _synchronization(member):
    return "pending-resync" if member.db_cluster_arn in _resync else "connected"


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
            m["SynchronizationStatus"] = _synchronization(member)
        members.append(m)
    return members


_orig_cluster_status = rds_models.DBCluster.status
_orig_cluster_members = rds_models.DBCluster.db_cluster_members


def _promoting(arn):
    for op in list(_ops.values()):
        if op.promoted_at is None and arn in (op.target_arn, op.source_arn):
            return True
    return False


def _cluster_status(self):
    status = _orig_cluster_status.fget(self)
    if getattr(self, "global_cluster_identifier", None) and _promoting(self.db_cluster_arn):
        return "failing-over"
    return status


def _db_cluster_members(self):
    members = _orig_cluster_members.fget(self)
    if getattr(self, "global_cluster_identifier", None) and not self.is_writer:
        # A secondary cluster's instances are all readers until it is promoted.
        for m in members:
            m["IsClusterWriter"] = False
    return members


# ---- API ----


def _global_backend(resp):
    return resp.global_backend


def _get_global(resp, identifier):
    # The identifier is not case-sensitive (API reference).
    for key, gc in list(_global_backend(resp).global_clusters.items()):
        if identifier and key.lower() == identifier.lower():
            return gc
    raise SimServiceError("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found.")


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


def _start(resp, kind, allow_data_loss, api):
    gid = resp._get_param("GlobalClusterIdentifier")
    target_id = resp._get_param("TargetDbClusterIdentifier")
    with state.LOCK:
        gc = _get_global(resp, gid)
        gname = gc.global_cluster_identifier
        if not target_id or not target_id.startswith("arn:"):
            raise SimServiceError(
                "InvalidParameterValue",
                f"TargetDbClusterIdentifier {target_id!r} must be the Amazon Resource Name (ARN) "
                "of the secondary DB cluster, so that Aurora can find it in its Region.",
            )
        if gc.global_cluster_arn in _ops:
            op = _ops[gc.global_cluster_arn]
            detail = "" if op.promoted_at is None else (
                f" (its old primary in {region_of_arn(op.source_arn)} has not rejoined since the failover)"
            )
            raise SimServiceError(
                "InvalidGlobalClusterStateFault",
                f"Global cluster {gname} is in {op.status} state{detail}; wait until it is available.",
            )
        target = next((m for m in gc.members if m.db_cluster_arn == target_id), None)
        if target is None:
            if _find_cluster_by_arn(resp.current_account, target_id) is None:
                raise DBClusterNotFoundError(target_id)
            raise SimServiceError(
                "InvalidParameterValue",
                f"DB cluster {target_id} is not a member of global cluster {gname}.",
            )
        if target.is_writer:
            raise SimServiceError(
                "InvalidParameterValue",
                f"DB cluster {target_id} is already the primary cluster of global cluster {gname}.",
            )
        source = next((m for m in gc.members if m.is_writer), None)
        # User Guide: switchover-global-cluster --region is the primary's Region,
        # failover-global-cluster --region the promoted secondary's.
        where = region_of_arn(source.db_cluster_arn) if kind == "switchover" and source else region_of_arn(target_id)
        if resp.region != where:
            whose = "current primary DB cluster" if kind == "switchover" else "secondary DB cluster being promoted"
            raise SimServiceError(
                "InvalidParameterValue",
                f"{api} for a {kind} of global cluster {gname} must be called in the Region of the "
                f"{whose} ({where}), not in {resp.region}.",
            )
        if target.db_cluster_arn in _resync:
            raise SimServiceError(
                "InvalidDBClusterStateFault",
                f"DB cluster {target_id} is resynchronizing with the primary after a failover "
                "(SynchronizationStatus pending-resync) and cannot be promoted yet.",
            )
        if not target.members:
            raise SimServiceError(
                "InvalidDBClusterStateFault",
                f"DB cluster {target_id} has no DB instances. Add a DB instance to the headless "
                "secondary cluster before switching over or failing over to it.",
            )
        if source is not None and source.engine_version != target.engine_version:
            raise SimServiceError(
                "InvalidDBClusterStateFault",
                f"The engine version of DB cluster {target_id} ({target.engine_version}) does not match "
                f"that of the primary DB cluster {source.db_cluster_arn} ({source.engine_version}); "
                "upgrade the clusters to the same version first.",
            )
        op = Operation(kind, gc, source, target, allow_data_loss, resp.region)
        _ops[gc.global_cluster_arn] = op
        gc.status = op.status
        return ActionResult({"GlobalCluster": gc})


def switchover_global_cluster(self):
    return _start(self, "switchover", False, "SwitchoverGlobalCluster")


def failover_global_cluster(self):
    allow = _bool(self._get_param("AllowDataLoss"))
    switchover = _bool(self._get_param("Switchover"))
    if allow and switchover:
        raise SimServiceError(
            "InvalidParameterCombination", "AllowDataLoss and Switchover cannot both be true."
        )
    # Without AllowDataLoss the operation is a switchover (API reference).
    return _start(self, "failover" if allow else "switchover", bool(allow), "FailoverGlobalCluster")


def _bool(v):
    if isinstance(v, str):
        return v.lower() == "true"
    return bool(v)


# ---- CloudWatch: AuroraGlobalDBReplicationLag and AuroraGlobalDBRPOLag ----

_orig_get_all_metrics = cw_models.CloudWatchBackend.get_all_metrics
LAG_HISTORY_SECONDS = 3 * 3600


def _lag_datapoints(backend):
    out = []
    t_now = now()
    for account_id, gc in all_global_clusters():
        if account_id != backend.account_id:
            continue
        writer = next((m for m in gc.members if m.is_writer), None)
        # While the primary's Region is dark, replication (and its metrics) stop.
        until = t_now
        if writer is not None and _is_dark(writer.db_cluster_arn):
            until = min(until, state.dark_since(region_of_arn(writer.db_cluster_arn)))
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
            metrics = [REPLICATION_LAG] + ([RPO_LAG] if _rpo_metric_published(member) else [])
            for metric in metrics:
                value = lag_of(member, metric)
                # One datapoint a minute, the first at the minute it became a secondary.
                ts = since - since % 60
                while ts <= until:
                    out.append(
                        cw_models.MetricDatum(
                            "AWS/RDS",
                            metric,
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


def _member_view(m):
    resync = _resync.get(m.db_cluster_arn, False)
    region = region_of_arn(m.db_cluster_arn)
    return {
        "cluster_arn": m.db_cluster_arn,
        "cluster_id": m.db_cluster_identifier,
        "region": region,
        "region_dark": state.dark_since(region) is not None,
        "is_writer": bool(m.is_writer),
        "engine_version": m.engine_version,
        "instances": len(m.members),
        "synchronization": None if m.is_writer else _synchronization(m),
        # pending-resync: when it ends, or null while it waits for its region
        "resync_completes": iso(resync.ends) if resync else None,
        "replication_lag_ms": None if m.is_writer else lag_of(m, REPLICATION_LAG),
        "rpo_lag_ms": None if m.is_writer or not _rpo_metric_published(m) else lag_of(m, RPO_LAG),
    }


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
                "members": [_member_view(m) for m in gc.members],
            }
        )
    return {"global_clusters": out, "history": list(_history), "default_lag_ms": _default_lag[None]}


@state.route("POST", "aurora/lag")
def _control_set_lag(doc):
    """{"lag_ms": n} for every secondary, or {"cluster": arn-or-id, "lag_ms": n}; with
    "metric", only that metric's value."""
    lag = doc.get("lag_ms")
    if isinstance(lag, bool) or not isinstance(lag, (int, float)) or lag < 0:
        raise ValueError("lag_ms must be a non-negative number")
    metric = doc.get("metric")
    if metric is not None and metric not in LAG_METRICS:
        raise ValueError(f"metric must be one of {', '.join(LAG_METRICS)}")
    cluster = doc.get("cluster")
    if not cluster:
        if metric is None:
            _default_lag.clear()
            _lag.clear()
        _default_lag[metric] = float(lag)
        return _control_view({})
    for _, gc in all_global_clusters():
        for m in gc.members:
            if cluster in (m.db_cluster_arn, m.db_cluster_identifier):
                if metric is None:
                    for k in [k for k in _lag if k[0] == m.db_cluster_arn]:
                        del _lag[k]
                _lag[(m.db_cluster_arn, metric)] = float(lag)
                return _control_view({})
    raise KeyError(f"no global cluster member {cluster!r}")


def install():
    rds_models.GlobalCluster.failover_state = property(_failover_state)
    rds_models.GlobalCluster.global_cluster_members = property(_global_cluster_members)
    rds_models.DBCluster.status = property(_cluster_status, _orig_cluster_status.fset)
    rds_models.DBCluster.db_cluster_members = property(_db_cluster_members)
    rds_responses.RDSResponse.describe_global_clusters = describe_global_clusters
    rds_responses.RDSResponse.switchover_global_cluster = switchover_global_cluster
    rds_responses.RDSResponse.failover_global_cluster = failover_global_cluster
    cw_models.CloudWatchBackend.get_all_metrics = _get_all_metrics
