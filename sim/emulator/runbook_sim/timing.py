"""The timing model: seconds per simulated transition.

Every slow AWS operation the DR runbooks wait on is modelled as a transition that
starts at a recorded timestamp and is complete once its duration has elapsed. State
is computed lazily when read, so there are no background threads; the durations
are looked up when the transition starts, so changing the timing affects only
transitions that start afterwards.
"""

import json
import os
import threading
import time

# The transitions the simulation knows, with CI defaults (seconds).
DEFAULTS = {
    "aurora_switchover": 2.0,
    "aurora_failover": 2.0,
    # After a failover the old primary is rebuilt from the new one before it is a
    # connected secondary again: "a few minutes to several hours" (Aurora User Guide,
    # "Recovering an Amazon Aurora global database from an unplanned outage"). It starts
    # when the old primary's region answers again.
    "aurora_resync": 2.0,
    "ecs_stabilize": 2.0,
    "route53_insync": 1.0,
    "asg_instance_refresh": 3.0,  # a whole instance refresh
    "asg_instance_warmup": 1.0,  # one replacement after TerminateInstanceInAutoScalingGroup
    # How long an instance refresh with ScaleInProtectedInstances or StandbyInstances
    # "Wait" waits before it fails: one hour, as in AWS (RefreshPreferences); tests
    # fast-forward the clock past it.
    "asg_refresh_wait_limit": 3600.0,
    "cloudfront_deploy": 1.0,
    "s3_batch_job": 2.0,
    "s3_replication": 1.0,  # one object version from source to destination bucket
    "elb_target_healthy": 1.0,  # a registered target from initial to healthy
    "elb_deregistration": 1.0,  # a deregistered target draining before it is gone
    "arc_deploy": 1.0,  # a Route 53 ARC cluster, control panel, routing control or safety rule: PENDING -> DEPLOYED
}

# Real-world timings (docs/dr-guide.md, "Timings and recovery time") scaled down 1:10, for drills where waits should feel real
# without taking the real time.
PRESETS = {
    "ci": dict(DEFAULTS),
    "instant": {k: 0.0 for k in DEFAULTS},
    "realistic": {
        "aurora_switchover": 6.0,  # about a minute
        "aurora_failover": 12.0,  # RTO in minutes
        "aurora_resync": 180.0,  # minutes to hours: 30 minutes here
        "ecs_stabilize": 15.0,  # at least ~2.5 min per healthy task
        "route53_insync": 6.0,  # INSYNC within ~60 s
        "asg_instance_refresh": 30.0,  # minutes: boot plus warm-up, per batch
        "asg_instance_warmup": 12.0,  # one instance: boot plus warm-up
        "asg_refresh_wait_limit": 360.0,  # one hour
        "cloudfront_deploy": 30.0,  # minutes, in practice
        "s3_batch_job": 10.0,
        "s3_replication": 6.0,  # seconds to minutes (RTC's SLA: 15 minutes)
        "elb_target_healthy": 15.0,  # interval 30 s x healthy threshold 5 = 2.5 min
        "elb_deregistration": 30.0,  # deregistration delay 300 s
        "arc_deploy": 30.0,  # a cluster takes minutes to deploy
    },
}

ENV_JSON = "RUNBOOK_SIM_TIMING"  # inline JSON, or a preset name
ENV_FILE = "RUNBOOK_SIM_TIMING_FILE"  # path to a JSON file


class TimingError(ValueError):
    pass


class Timing:
    def __init__(self):
        self._lock = threading.Lock()
        self._values = dict(DEFAULTS)
        self._initial = dict(DEFAULTS)

    def get(self, name):
        with self._lock:
            return self._values[name]

    def snapshot(self):
        with self._lock:
            return dict(self._values)

    def update(self, doc):
        """Apply a JSON object: {"preset": name} and/or {transition: seconds}."""
        if not isinstance(doc, dict):
            raise TimingError("timing must be a JSON object")
        new = {}
        preset = doc.get("preset")
        if preset is not None:
            if preset not in PRESETS:
                raise TimingError(
                    f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}"
                )
            new.update(PRESETS[preset])
        for key, value in doc.items():
            if key == "preset":
                continue
            if key not in DEFAULTS:
                raise TimingError(
                    f"unknown transition {key!r}; known: {', '.join(sorted(DEFAULTS))}"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TimingError(f"{key}: seconds must be a number")
            if value < 0:
                raise TimingError(f"{key}: seconds must not be negative")
            new[key] = float(value)
        with self._lock:
            self._values.update(new)
        return self.snapshot()

    def set_initial(self, doc):
        """Apply doc and remember the result as what a reset returns to."""
        self.update(doc)
        with self._lock:
            self._initial = dict(self._values)

    def reset(self):
        with self._lock:
            self._values = dict(self._initial)

    def load_from_env(self, path=None):
        """Initial timing: a JSON file (argument or env), then inline JSON or preset from env."""
        path = path or os.environ.get(ENV_FILE)
        if path:
            with open(path, encoding="utf-8") as f:
                self.set_initial(json.load(f))
        inline = os.environ.get(ENV_JSON, "").strip()
        if inline:
            if inline.startswith("{"):
                self.set_initial(json.loads(inline))
            else:
                self.set_initial({"preset": inline})


TIMING = Timing()


class Clock:
    """The simulation's clock: wall time plus an offset that only moves forward.

    POST /_sim/clock {"advance": seconds} fast-forwards every in-flight transition,
    so a test can see an operation in progress, jump past its end, and see it done
    without sleeping. It shifts the simulation's transitions only, not the
    timestamps moto itself writes (creation times and the like).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._offset = 0.0

    def now(self):
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise TimingError("advance must be a non-negative number of seconds")
        with self._lock:
            self._offset += float(seconds)
            return self._offset

    def offset(self):
        with self._lock:
            return self._offset

    def reset(self):
        with self._lock:
            self._offset = 0.0


CLOCK = Clock()


def now():
    return CLOCK.now()


class Transition:
    """A transition from one state to another over the duration configured for kind.

    started and duration are fixed at creation; progress() is a pure function of the
    clock, so concurrent readers agree without locking.
    """

    __slots__ = ("kind", "started", "duration")

    def __init__(self, kind, duration=None):
        self.kind = kind
        self.started = now()
        self.duration = TIMING.get(kind) if duration is None else float(duration)

    def elapsed(self):
        return max(0.0, now() - self.started)

    def progress(self):
        """0.0 .. 1.0"""
        if self.duration <= 0:
            return 1.0
        return min(1.0, self.elapsed() / self.duration)

    def done(self):
        return self.elapsed() >= self.duration

    @property
    def ends(self):
        return self.started + self.duration
