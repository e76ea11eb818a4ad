"""S3 Batch Operations jobs (S3 Control CreateJob, DescribeJob, ListJobs,
UpdateJobStatus), for the one-time "replicate existing objects" job per bucket.

moto 5.2.5's S3 Control has access points, public access blocks, Storage Lens and
multi-region access points, but no jobs: the routes do not exist.

A job's tasks are fixed when it is created: with a ManifestGenerator
(S3JobManifestGenerator), every current object of SourceBucket that the filter
admits (ObjectReplicationStatuses: objects no earlier job replicated count as NONE;
KeyNameConstraint prefixes; CreatedAfter/Before); with a Manifest, the lines of the
CSV object it names (Bucket,Key[,VersionId]). Over the timing model's s3_batch_job
seconds the job goes New -> Preparing -> Ready -> Active -> Completing -> Complete,
NumberOfTasksSucceeded growing while Active. A job with ConfirmationRequired waits
in Suspended (SuspendedCause AWAITING_CONFIRMATION) until UpdateJobStatus
RequestedJobStatus=Ready. S3ReplicateObject really copies each object into the
destination bucket of the source bucket's replication rule (matching prefix), so the
other region's bucket holds it afterwards; a source bucket without a replication
configuration fails the job (Failed, FailureReasons). Report.Enabled writes
job-<id>/manifest.json and job-<id>/results/<name>.csv under the report prefix, as
S3 does. The job must be created in the source bucket's region (as in AWS);
ClientRequestToken makes CreateJob idempotent. Other operations run through the
same timeline without touching objects.
"""

import csv
import datetime
import hashlib
import io
import json

from moto.core.responses import ActionResult
from moto.moto_api._internal import mock_random
from moto.s3 import models as s3_models
from moto.s3control import responses as s3c_responses
from moto.s3control import urls as s3c_urls

from . import s3replication, state
from .errors import SimServiceError
from .timing import Transition, now

# job id -> Job
_jobs = {}
# (account, client request token) -> job id
_tokens = {}
# (bucket, key) -> "COMPLETED": objects a replicate job copied
_replicated = {}

# Share of a job's time per phase, in order. Active is where tasks run.
PHASES = [("New", 0.05), ("Preparing", 0.15), ("Ready", 0.05), ("Active", 0.65), ("Completing", 0.10)]


def _utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


def _bucket_name(arn):
    # arn:aws:s3:::bucket  or arn:aws:s3:::bucket/key
    return arn.split(":::", 1)[-1].split("/", 1)[0]


class Job:
    def __init__(self, resp, params):
        self.id = str(mock_random.uuid4())
        self.account_id = resp.current_account
        self.region = resp.region
        self.params = params
        self.operation = params.get("Operation") or {}
        self.op_name = next(iter(self.operation), None)
        self.priority = params.get("Priority")
        self.role_arn = params.get("RoleArn")
        self.description = params.get("Description")
        self.report = params.get("Report")
        self.manifest = params.get("Manifest")
        self.generator = params.get("ManifestGenerator")
        self.confirmation_required = bool(params.get("ConfirmationRequired"))
        self.created = now()
        self.tasks = []  # (bucket, key, version or None)
        self.done = 0
        self.failed = 0
        self.failure_reasons = []
        self.results = []  # (bucket, key, version, status, http, message)
        self.timeline = None  # Transition once running
        self.pre = Transition("s3_batch_job")  # New/Preparing before confirmation
        self.suspended = False
        self.terminated = None
        self.final = None

    @property
    def arn(self):
        return f"arn:aws:s3:{self.region}:{self.account_id}:job/{self.id}"

    def _phase_at(self, transition):
        p = transition.progress()
        acc = 0.0
        for name, share in PHASES:
            acc += share
            if p < acc:
                return name, p
        return "Complete", p

    def active_share(self, p):
        start = sum(s for _, s in PHASES[:3])
        return min(1.0, max(0.0, (p - start) / PHASES[3][1]))

    def advance(self, backend):
        if self.final is not None:
            return True
        if self.timeline is None:
            # Before confirmation: New -> Preparing, then Suspended or run.
            name, p = self._phase_at(self.pre)
            if name in ("New", "Preparing"):
                return False
            if self.failure_reasons:
                self._finish(backend, "Failed")
                return True
            if self.confirmation_required:
                self.suspended = True
                return False
            self.timeline = self.pre
        name, p = self._phase_at(self.timeline)
        target = int(len(self.tasks) * self.active_share(p)) if name in ("Active", "Completing", "Complete") else 0
        if name in ("Completing", "Complete"):
            target = len(self.tasks)
        while self.done + self.failed < target:
            self._run_task(backend, self.tasks[self.done + self.failed])
        if name == "Complete":
            self._finish(backend, "Complete" if not self.failure_reasons else "Failed")
            return True
        return False

    def _run_task(self, backend, task):
        bucket, key, version = task
        try:
            if self.op_name == "S3ReplicateObject":
                _replicate(backend, bucket, key, version)
            self.done += 1
            self.results.append((bucket, key, version or "", "succeeded", "200", "Successful"))
        except Exception as e:  # a task failure fails the task, not the job
            self.failed += 1
            self.results.append((bucket, key, version or "", "failed", "400", str(e)))

    def _finish(self, backend, status):
        self.final = status
        self.terminated = now()
        if self.report and self.report.get("Enabled") in (True, "true"):
            try:
                _write_report(backend, self)
            except Exception as e:
                self.failure_reasons.append({"FailureCode": "ReportFailed", "FailureReason": str(e)})

    def status(self):
        if self.final is not None:
            return self.final
        if self.timeline is None:
            if self.suspended:
                return "Suspended"
            return self._phase_at(self.pre)[0]
        return self._phase_at(self.timeline)[0]

    def describe(self):
        d = {
            "JobId": self.id,
            "JobArn": self.arn,
            "Status": self.status(),
            "Operation": self.operation,
            "Priority": self.priority,
            "RoleArn": self.role_arn,
            "ConfirmationRequired": self.confirmation_required,
            "CreationTime": _utc(self.created),
            "ProgressSummary": {
                "TotalNumberOfTasks": len(self.tasks),
                "NumberOfTasksSucceeded": self.done,
                "NumberOfTasksFailed": self.failed,
                "Timers": {"ElapsedTimeInActiveSeconds": int(self._active_seconds())},
            },
        }
        if self.description:
            d["Description"] = self.description
        if self.report:
            d["Report"] = self.report
        if self.manifest:
            d["Manifest"] = self.manifest
        if self.generator:
            d["ManifestGenerator"] = self.generator
        if self.failure_reasons:
            d["FailureReasons"] = self.failure_reasons
        if self.suspended and self.timeline is None:
            d["SuspendedCause"] = "AWAITING_CONFIRMATION"
            d["SuspendedDate"] = _utc(self.pre.ends)
        if self.terminated is not None:
            d["TerminationDate"] = _utc(self.terminated)
        return d

    def _active_seconds(self):
        if self.timeline is None:
            return 0
        start = self.timeline.started + self.timeline.duration * sum(s for _, s in PHASES[:3])
        end = self.terminated or now()
        return max(0.0, end - start)

    def list_item(self):
        d = self.describe()
        return {
            "JobId": d["JobId"],
            "Description": d.get("Description"),
            "Operation": self.op_name,
            "Priority": d["Priority"],
            "Status": d["Status"],
            "CreationTime": d["CreationTime"],
            "TerminationDate": d.get("TerminationDate"),
            "ProgressSummary": d["ProgressSummary"],
        }


def _s3(account_id):
    return s3_models.s3_backends[account_id]["aws"]


def _replication_destination(s3, bucket_name, key):
    bucket = s3.get_bucket(bucket_name)
    if not getattr(bucket, "replication", None):
        raise ValueError(f"bucket {bucket_name} has no replication configuration")
    dest = s3replication.destination(s3, bucket_name, key)
    if dest is None:
        raise ValueError(f"no enabled replication rule of {bucket_name} matches {key}")
    return dest


def _replicate(s3, bucket, key, version):
    dest = _replication_destination(s3, bucket, key)
    obj = s3.get_object(bucket, key, version_id=version or None)
    if obj is None:
        raise ValueError(f"object {key} not found in {bucket}")
    with s3replication.replicating():
        s3.put_object(dest, key, obj.value, disable_notification=True)
    _replicated[(bucket, key)] = "COMPLETED"


def _generated_tasks(s3, gen, region):
    g = gen.get("S3JobManifestGenerator") or {}
    source = _bucket_name(g.get("SourceBucket") or "")
    bucket = s3.get_bucket(source)
    if bucket.region_name != region:
        raise SimServiceError(
            "InvalidRequest",
            f"The source bucket {source} is in {bucket.region_name}; create the job in that region, not {region}.",
        )
    flt = g.get("Filter") or {}
    statuses = flt.get("ObjectReplicationStatuses")
    prefixes = ((flt.get("KeyNameConstraint") or {}).get("MatchAnyPrefix")) or []
    after, before = flt.get("CreatedAfter"), flt.get("CreatedBefore")
    tasks = []
    for key in list(bucket.keys.values()):
        name = key.name
        if prefixes and not any(name.startswith(p) for p in prefixes):
            continue
        # Live replication marks what it copied (s3replication); a job what it did.
        rs = _replicated.get((source, name)) or getattr(key, "_sim_replication_status", None) or "NONE"
        if statuses and rs not in statuses:
            continue
        if after or before:
            created = key.last_modified
            if after and created < _naive(after):
                continue
            if before and created >= _naive(before):
                continue
        tasks.append((source, name, None))
    return tasks


def _naive(v):
    if isinstance(v, str):
        v = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if v.tzinfo is not None:
        v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return v


def _manifest_tasks(s3, manifest, region):
    loc = manifest.get("Location") or {}
    arn = loc.get("ObjectArn") or ""
    if "/" not in arn.split(":::", 1)[-1]:
        raise SimServiceError("InvalidRequest", f"Manifest ObjectArn {arn!r} must name an object.")
    bucket, key = arn.split(":::", 1)[-1].split("/", 1)
    b = s3.get_bucket(bucket)
    if b.region_name != region:
        raise SimServiceError(
            "InvalidRequest", f"The manifest is in {b.region_name}; create the job in that region, not {region}."
        )
    obj = s3.get_object(bucket, key, version_id=loc.get("ObjectVersionId"))
    if obj is None:
        raise SimServiceError("InvalidRequest", f"Manifest object {arn} not found.")
    fields = (manifest.get("Spec") or {}).get("Fields") or ["Bucket", "Key"]
    tasks = []
    for row in csv.reader(io.StringIO(obj.value.decode("utf-8"))):
        if not row:
            continue
        rec = dict(zip(fields, row))
        tasks.append((rec.get("Bucket", bucket), rec.get("Key", ""), rec.get("VersionId")))
    return tasks


def _write_report(s3, job):
    bucket = _bucket_name(job.report["Bucket"])
    prefix = (job.report.get("Prefix") or "").strip("/")
    base = f"{prefix}/job-{job.id}" if prefix else f"job-{job.id}"
    scope = job.report.get("ReportScope", "AllTasks")
    rows = [r for r in job.results if scope == "AllTasks" or r[3] == "failed"]
    out = io.StringIO()
    w = csv.writer(out)
    for bucket_name, key, version, status, code, msg in rows:
        w.writerow([bucket_name, key, version, status, code, "", msg])
    body = out.getvalue().encode()
    name = hashlib.sha256(body + job.id.encode()).hexdigest()[:40] + ".csv"
    s3.put_object(bucket, f"{base}/results/{name}", body, disable_notification=True)
    manifest = {
        "Format": "Report_CSV_20180820",
        "ReportCreationDate": _utc(job.terminated).isoformat(),
        "Results": [
            {
                "TaskExecutionStatus": "succeeded" if job.failed == 0 else "failed",
                "Bucket": bucket,
                "MD5Checksum": hashlib.md5(body).hexdigest(),
                "Key": f"{base}/results/{name}",
            }
        ],
        "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage",
    }
    s3.put_object(bucket, f"{base}/manifest.json", json.dumps(manifest).encode(), disable_notification=True)


@state.ticker
def _advance():
    for job in list(_jobs.values()):
        if job.final is None:
            job.advance(_s3(job.account_id))


@state.on_reset
def _reset():
    _jobs.clear()
    _tokens.clear()
    _replicated.clear()


def _job(resp, job_id):
    job = _jobs.get(job_id)
    if job is None or job.account_id != resp.current_account or job.region != resp.region:
        raise SimServiceError("NotFoundException", f"Job {job_id} not found in {resp.region}.")
    return job


def create_job(self):
    params = self.params
    token = params.get("ClientRequestToken")
    with state.LOCK:
        if token and (self.current_account, token) in _tokens:
            return ActionResult({"JobId": _tokens[(self.current_account, token)]})
        op = params.get("Operation") or {}
        if len(op) != 1:
            raise SimServiceError("BadRequestException", "Exactly one operation must be specified.")
        if not params.get("RoleArn"):
            raise SimServiceError("BadRequestException", "RoleArn is required.")
        if not params.get("Report"):
            raise SimServiceError("BadRequestException", "Report is required.")
        if bool(params.get("Manifest")) == bool(params.get("ManifestGenerator")):
            raise SimServiceError("BadRequestException", "Specify exactly one of Manifest and ManifestGenerator.")
        s3 = _s3(self.current_account)
        job = Job(self, params)
        try:
            if params.get("ManifestGenerator"):
                job.tasks = _generated_tasks(s3, params["ManifestGenerator"], self.region)
            else:
                job.tasks = _manifest_tasks(s3, params["Manifest"], self.region)
        except SimServiceError:
            raise
        except Exception as e:  # missing bucket: the job fails while preparing, as in AWS
            job.failure_reasons.append({"FailureCode": "ManifestNotFound", "FailureReason": str(e)})
        if job.op_name == "S3ReplicateObject":
            for bucket, key, _ in job.tasks[:1]:
                try:
                    _replication_destination(s3, bucket, key)
                except ValueError as e:
                    job.failure_reasons.append(
                        {"FailureCode": "ReplicationConfigurationNotFoundError", "FailureReason": str(e)}
                    )
                    job.tasks = []
        if job.failure_reasons:
            job.tasks = []
        _jobs[job.id] = job
        if token:
            _tokens[(self.current_account, token)] = job.id
        return ActionResult({"JobId": job.id})


def describe_job(self):
    with state.LOCK:
        job = _job(self, self._get_param("JobId"))
        return ActionResult({"Job": job.describe()})


def list_jobs(self):
    statuses = self._get_param("JobStatuses") or []
    with state.LOCK:
        jobs = [
            j
            for j in _jobs.values()
            if j.account_id == self.current_account and j.region == self.region and (not statuses or j.status() in statuses)
        ]
        jobs.sort(key=lambda j: j.created, reverse=True)
        return ActionResult({"Jobs": [j.list_item() for j in jobs]})


def update_job_status(self):
    requested = self._get_param("RequestedJobStatus")
    with state.LOCK:
        job = _job(self, self._get_param("JobId"))
        status = job.status()
        if requested == "Ready" and status == "Suspended":
            job.suspended = False
            job.confirmation_required = False
            job.timeline = Transition("s3_batch_job")
        elif requested == "Cancelled" and status not in ("Complete", "Failed", "Cancelled"):
            job.final = "Cancelled"
            job.terminated = now()
        else:
            raise SimServiceError("JobStatusException", f"Job {job.id} is {status}; cannot change it to {requested}.")
        return ActionResult({"JobId": job.id, "Status": job.status()})


def install():
    R = s3c_responses.S3ControlResponse
    R.create_job = create_job
    R.describe_job = describe_job
    R.list_jobs = list_jobs
    R.update_job_status = update_job_status
    s3c_urls.url_paths.update(
        {
            "{0}/v20180820/jobs$": R.dispatch,
            r"{0}/v20180820/jobs/(?P<id>[^/]+)$": R.dispatch,
            r"{0}/v20180820/jobs/(?P<id>[^/]+)/status$": R.dispatch,
        }
    )
