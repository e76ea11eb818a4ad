package report

import (
	"fmt"
	"sort"
	"time"
)

// Hand-built runs for the golden files, the browser test and the docs'
// screenshot. Times follow the real ones (docs/dr-guide.md, Timings): an Aurora switchover of about a minute,
// ECS services stable after two and a half minutes, Route 53 INSYNC within
// a minute, worker replacement in minutes.

var t0 = time.Date(2025, 3, 4, 3, 12, 7, 0, time.UTC)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

const (
	slackWebhook = "https://hooks.slack.com/services/T0FAKE/B0FAKE/zq9XkY2mN4pL7wR1"
	apiKey       = "spl-key-0123456789abcdef"
)

// plannedFailover: a successful planned failover, with a parallel group,
// a skipped step, an approval, a retried step, milestones and a secret
// input that a plugin's progress message leaked.
func plannedFailover() *Run {
	r := &Run{
		ID:          "20250304T031207Z-7f3a",
		Runbook:     "spacelift-failover",
		RunbookHash: "sha256:9c1e4b2f7a0d83e65b4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f",
		Status:      RunSucceeded,
		Started:     at(0),
		Finished:    at(521.1),
		Inputs: []Input{
			{Name: "primary_region", Value: "eu-west-1"},
			{Name: "dr_region", Value: "eu-west-3"},
			{Name: "mode", Value: "planned"},
			{Name: "hostname", Value: "spacelift.myorg.com"},
			{Name: "desired_counts", Value: map[string]any{"server": 3.0, "drain": 2.0, "scheduler": 1.0}},
			{Name: "slack_webhook", Value: slackWebhook, Secret: true},
		},
		Steps: []Step{
			{ID: "preflight", Name: "Preflight checks", Parallel: true, Status: StepSucceeded, Started: at(0.05), Finished: at(4.3)},
			{ID: "aurora_status", Name: "Read the global cluster", Uses: "aws.aurora_global_status", Group: "preflight", Status: StepSucceeded,
				Started: at(0.06), Finished: at(1.9), Attempts: []Attempt{{N: 1, Started: at(0.06), Finished: at(1.9)}},
				Outputs: map[string]any{"writer_region": "eu-west-1", "replication_lag_ms": 180.0, "status": "available"}},
			{ID: "s3_replication", Name: "Check bucket replication", Uses: "aws.s3_replication_check", Group: "preflight", Status: StepSucceeded,
				Started: at(0.06), Finished: at(4.3), Attempts: []Attempt{{N: 1, Started: at(0.06), Finished: at(4.3)}},
				Outputs: map[string]any{"buckets_ok": 5.0}},
			{ID: "approve", Name: "Confirm the switchover", Uses: "core.approve", Status: StepSucceeded, Started: at(4.4), Finished: at(41.2)},
			{ID: "db_failover", Name: "Force the DR cluster writable (unplanned)", Uses: "aws.aurora_global_failover", Status: StepSkipped,
				Started: at(41.25), SkipReason: `if: inputs.mode == "unplanned" was false`},
			{ID: "db", Name: "Switch the Aurora writer to the DR region", Uses: "aws.aurora_global_switchover", Status: StepSucceeded,
				Started: at(41.3), Finished: at(107.8), Attempts: []Attempt{{N: 1, Started: at(41.3), Finished: at(107.8)}},
				Outputs: map[string]any{"writer_region": "eu-west-3", "previous_writer_region": "eu-west-1"}},
			{ID: "services_dr", Name: "Start the DR services", Uses: "aws.ecs_services", Status: StepSucceeded, Started: at(107.9), Finished: at(271.0),
				Attempts: []Attempt{
					{N: 1, Started: at(107.9), Finished: at(113.2), Error: "ecs UpdateService spacelift-server (eu-west-3): ThrottlingException: Rate exceeded", Retryable: true},
					{N: 2, Started: at(115.4), Finished: at(271.0)},
				},
				Outputs: map[string]any{"previous_counts": map[string]any{"server": 0.0, "drain": 0.0, "scheduler": 0.0}}},
			{ID: "switch", Name: "Move traffic and workers", Parallel: true, Status: StepSucceeded, Started: at(271.1), Finished: at(472.6)},
			{ID: "dns_server", Name: "Point spacelift.myorg.com at the DR load balancer", Uses: "dns.route53_record", Group: "switch", Status: StepSucceeded,
				Started: at(271.2), Finished: at(329.0), Attempts: []Attempt{{N: 1, Started: at(271.2), Finished: at(329.0)}}},
			{ID: "dns_iot", Name: "Point the IoT broker domain at eu-west-3", Uses: "dns.route53_record", Group: "switch", Status: StepSucceeded,
				Started: at(271.2), Finished: at(331.5), Attempts: []Attempt{{N: 1, Started: at(271.2), Finished: at(331.5)}}},
			{ID: "workers", Name: "Cycle the worker pool", Uses: "spacelift.worker_pool_cycle", Group: "switch", Status: StepSucceeded,
				Started: at(271.2), Finished: at(472.6), Attempts: []Attempt{{N: 1, Started: at(271.2), Finished: at(472.6)}}},
			{ID: "stop_primary", Name: "Stop the services in eu-west-1", Uses: "aws.ecs_services", Status: StepSucceeded,
				Started: at(472.7), Finished: at(520.1), Attempts: []Attempt{{N: 1, Started: at(472.7), Finished: at(520.1)}}},
			{ID: "notify", Name: "Cookie-invalidation notice", Uses: "notify.cookie_invalidation_notice", Status: StepSucceeded,
				Started: at(520.2), Finished: at(521.0), Attempts: []Attempt{{N: 1, Started: at(520.2), Finished: at(521.0)}}},
		},
		Approvals: []Approval{{Step: "approve", Message: "Writer is in eu-west-1, replication lag 180 ms. Switch over to eu-west-3?",
			RequestedAt: at(4.45), GrantedAt: at(41.1), By: "alice@myorg.com",
			Identity: "AWS arn:aws:sts::123456789012:assumed-role/SpaceliftDR/alice; OS alice@ops-laptop"}},
		Milestones: []Milestone{
			{Name: "database writable", At: at(107.8), Step: "db"},
			{Name: "traffic switched", At: at(329.0), Step: "dns_server"},
			{Name: "workers reconnected", At: at(472.6), Step: "workers"},
		},
		Outputs: []Output{
			{Name: "writer_region", Value: "eu-west-3"},
			{Name: "recovery_seconds", Value: 329.0},
		},
	}
	r.Events = eventsFor(r, Event{At: at(520.9), Type: "progress", Step: "notify",
		Message: "posted notice to " + slackWebhook})
	return r
}

// failedRollback: an unplanned failover whose service start fails after
// retries; the rollback of the database step fails, the other succeeds.
// A plugin error quotes a secret, which the report must not print.
func failedRollback() *Run {
	r := &Run{
		ID:          "20250304T031207Z-c2d9",
		Runbook:     "spacelift-failover",
		RunbookHash: "sha256:9c1e4b2f7a0d83e65b4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f",
		Status:      RunRollbackFailed,
		Error:       "step services_dr failed; the rollback of db failed: manual attention needed",
		Started:     at(0),
		Finished:    at(313.5),
		Inputs: []Input{
			{Name: "mode", Value: "unplanned"},
			{Name: "dr_region", Value: "eu-west-3"},
			{Name: "spacelift_api_key", Value: apiKey, Secret: true},
			{Name: "slack_webhook", Value: redacted, Secret: true},
		},
		Steps: []Step{
			{ID: "aurora_status", Name: "Read the global cluster", Uses: "aws.aurora_global_status", Status: StepSucceeded,
				Started: at(0.1), Finished: at(2.0), Attempts: []Attempt{{N: 1, Started: at(0.1), Finished: at(2.0)}},
				Outputs: map[string]any{"replication_lag_ms": 2400.0}},
			{ID: "freeze", Name: "Mark the DR config active", Uses: "spacelift.installer_config_update", Status: StepSucceeded,
				Started: at(2.1), Finished: at(2.4), Attempts: []Attempt{{N: 1, Started: at(2.1), Finished: at(2.4)}},
				Rollback: &RollbackInfo{Status: StepSucceeded, Started: at(313.0), Finished: at(313.3)}},
			{ID: "db", Name: "Fail the Aurora writer over to eu-west-3", Uses: "aws.aurora_global_failover", Status: StepSucceeded,
				Started: at(2.5), Finished: at(97.9), Attempts: []Attempt{{N: 1, Started: at(2.5), Finished: at(97.9)}},
				Rollback: &RollbackInfo{Status: StepFailed, Started: at(253.0), Finished: at(312.9),
					Error: "switchover back to eu-west-1: RequestError: dial tcp 10.0.0.12:443: i/o timeout (retryable, attempts exhausted)"}},
			{ID: "services_dr", Name: "Start the DR services", Uses: "aws.ecs_services", Status: StepFailed, Started: at(98.0), Finished: at(252.8),
				Attempts: []Attempt{
					{N: 1, Started: at(98.0), Finished: at(103.1), Error: "ecs UpdateService spacelift-server (eu-west-3): ThrottlingException: Rate exceeded", Retryable: true},
					{N: 2, Started: at(105.2), Finished: at(110.0), Error: "ecs UpdateService spacelift-server (eu-west-3): ServiceUnavailableException: 503", Retryable: true},
					{N: 3, Started: at(114.3), Finished: at(252.8), Error: "ecs DescribeServices spacelift-drain (eu-west-3): AccessDeniedException: not authorized (api key " + apiKey + ")"},
				},
				Error: "ecs DescribeServices spacelift-drain (eu-west-3): AccessDeniedException: not authorized (api key " + apiKey + ")"},
			{ID: "switch", Name: "Move traffic and workers", Parallel: true, Status: StepPending},
			{ID: "dns_server", Uses: "dns.route53_record", Group: "switch", Status: StepPending},
			{ID: "workers", Uses: "aws.asg_cycle", Group: "switch", Status: StepPending},
			{ID: "notify", Uses: "notify.cookie_invalidation_notice", Status: StepPending},
		},
		Milestones: []Milestone{{Name: "database writable", At: at(97.9), Step: "db"}},
	}
	r.Events = eventsFor(r)
	return r
}

// pausedNested: a run paused at an approval, with nested parallel groups
// (one child skipped), an approval step still waiting when the journal ends, no recorded finish, no
// milestones, and names full of markup characters.
func pausedNested() *Run {
	r := &Run{
		ID:      "drill-<3>",
		Runbook: "drill & `checks`",
		Status:  RunPaused,
		Started: at(0),
		Inputs:  []Input{{Name: "note", Value: "a | b <i>c</i> `d`"}, {Name: "token", Value: "", Secret: true}},
		Steps: []Step{
			{ID: "checks", Name: `Check <both> regions & "buckets" | pipes`, Parallel: true, Status: StepSucceeded},
			{ID: "regions", Parallel: true, Group: "checks", Status: StepSucceeded},
			{ID: "eu_west_1", Uses: "aws.aurora_global_status", Group: "regions", Status: StepSucceeded, Started: at(0.2), Finished: at(3.0)},
			{ID: "eu_west_3", Uses: "aws.aurora_global_status", Group: "regions", Status: StepSucceeded, Started: at(0.2), Finished: at(6.5)},
			{ID: "buckets", Uses: "aws.s3_replication_check", Group: "checks", Status: StepSucceeded, Started: at(0.2), Finished: at(5.0)},
			{ID: "cloudfront", Uses: "aws.cloudfront_origin", Group: "checks", Status: StepSkipped, Started: at(0.2), SkipReason: "if: inputs.use_cloudfront was false"},
			{ID: "go", Name: "<script>alert(1)</script>", Uses: "core.approve", Status: StepWaiting, Started: at(6.6)},
			{ID: "db", Uses: "aws.aurora_global_switchover", Status: StepPending},
		},
		Approvals: []Approval{{Step: "go", Message: "Proceed? <b>yes</b> | no", RequestedAt: at(6.7)}},
	}
	r.Events = eventsFor(r, Event{At: at(6.8), Type: "run_paused", Message: "waiting for approval of go"})
	return r
}

// unplannedResumed: an unplanned failover whose process was killed while
// the DR services were starting, resumed 24 minutes later; the old
// primary does not answer, and stopping its services fails under
// continue_on_error without failing the run.
func unplannedResumed() *Run {
	timeout := "ecs UpdateService spacelift-server (eu-west-1): RequestError: dial tcp 10.0.0.12:443: i/o timeout"
	r := &Run{
		ID:          "20250304T031207Z-5e01",
		Runbook:     "spacelift-failover",
		RunbookHash: "sha256:9c1e4b2f7a0d83e65b4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f",
		Status:      RunSucceeded,
		Started:     at(0),
		Finished:    at(2036.1),
		Inputs:      []Input{{Name: "mode", Value: "unplanned"}, {Name: "dr_region", Value: "eu-west-3"}},
		Steps: []Step{
			{ID: "aurora_status", Uses: "aws.aurora_global_status", Status: StepSucceeded, Started: at(0.1), Finished: at(2.0),
				Attempts: []Attempt{{N: 1, Started: at(0.1), Finished: at(2.0)}}, Outputs: map[string]any{"replication_lag_ms": 2400.0}},
			{ID: "db", Uses: "aws.aurora_global_failover", Status: StepSucceeded, Started: at(2.1), Finished: at(98.0),
				Attempts: []Attempt{{N: 1, Started: at(2.1), Finished: at(98.0)}},
				Outputs: map[string]any{"done_evidence": map[string]any{
					"summary":        "read in eu-west-3 at 2025-03-04T03:13:45Z: spacelift-eu-west-3 is the writer of global cluster spacelift; its status is available and its writer instance spacelift-eu-west-3-1 is available (global cluster failing-over, not waited for: failover failing-over from arn:aws:rds:eu-west-1:123456789012:cluster:spacelift-eu-west-1 to arn:aws:rds:eu-west-3:123456789012:cluster:spacelift-eu-west-3)",
					"read_in_region": "eu-west-3", "target_is_writer": true, "global_status": "failing-over",
				}}},
			{ID: "services_dr", Uses: "aws.ecs_services", Status: StepSucceeded, Started: at(98.1), Finished: at(1770.5),
				Attempts: []Attempt{
					{N: 1, Started: at(98.1), Finished: at(160.4), Error: "interrupted: the runbook process was killed", Retryable: true},
					{N: 2, Started: at(1612.0), Finished: at(1770.5)},
				}},
			{ID: "switch", Parallel: true, Status: StepSucceeded, Started: at(1770.6), Finished: at(1975.0)},
			{ID: "dns_server", Uses: "dns.route53_record", Group: "switch", Status: StepSucceeded, Started: at(1770.7), Finished: at(1829.0)},
			{ID: "dns_iot", Uses: "dns.route53_record", Group: "switch", Status: StepSucceeded, Started: at(1770.7), Finished: at(1832.0)},
			{ID: "workers", Uses: "aws.asg_cycle", Group: "switch", Status: StepSucceeded, Started: at(1770.7), Finished: at(1975.0)},
			{ID: "stop_primary", Uses: "aws.ecs_services", Status: StepFailed, Continued: true, Started: at(1975.1), Finished: at(2035.1),
				Attempts: []Attempt{
					{N: 1, Started: at(1975.1), Finished: at(1995.1), Error: timeout, Retryable: true},
					{N: 2, Started: at(1997.2), Finished: at(2017.2), Error: timeout, Retryable: true},
					{N: 3, Started: at(2019.3), Finished: at(2035.1), Error: timeout, Retryable: true},
				},
				Error: timeout},
			{ID: "notify", Uses: "notify.cookie_invalidation_notice", Status: StepSucceeded, Started: at(2035.2), Finished: at(2036.0)},
		},
		Milestones: []Milestone{
			{Name: "database writable", At: at(98.0), Step: "db"},
			{Name: "traffic switched", At: at(1829.0), Step: "dns_server"},
		},
		Resumes: []time.Time{at(1610.0)},
	}
	r.Events = eventsFor(r, Event{At: at(1610.0), Type: "run_resumed", Message: "by bob"})
	return r
}

// eventsFor derives journal events from a run's steps, as the engine would
// have written them, plus extra ones, in time order.
func eventsFor(r *Run, extra ...Event) []Event {
	ev := []Event{{At: r.Started, Type: "run_started", Message: "runbook " + r.Runbook}}
	for _, s := range r.Steps {
		if s.Status == StepSkipped {
			ev = append(ev, Event{At: s.Started, Type: "step_skipped", Step: s.ID, Message: s.SkipReason})
			continue
		}
		if s.Started.IsZero() {
			continue
		}
		ev = append(ev, Event{At: s.Started, Type: "step_started", Step: s.ID})
		for _, a := range s.Attempts {
			ev = append(ev, Event{At: a.Started, Type: "attempt_started", Step: s.ID, Attempt: a.N})
			if a.Error != "" {
				ev = append(ev, Event{At: a.Finished, Type: "attempt_failed", Step: s.ID, Attempt: a.N,
					Message: fmt.Sprintf("%s (retryable: %v)", a.Error, a.Retryable)})
			}
		}
		switch s.Status {
		case StepSucceeded:
			ev = append(ev, Event{At: s.Finished, Type: "step_succeeded", Step: s.ID})
		case StepFailed:
			ev = append(ev, Event{At: s.Finished, Type: "step_failed", Step: s.ID, Message: s.Error})
		}
		if rb := s.Rollback; rb != nil {
			ev = append(ev, Event{At: rb.Started, Type: "rollback_started", Step: s.ID})
			typ := "rollback_succeeded"
			if rb.Status == StepFailed {
				typ = "rollback_failed"
			}
			ev = append(ev, Event{At: rb.Finished, Type: typ, Step: s.ID, Message: rb.Error})
		}
	}
	for _, a := range r.Approvals {
		ev = append(ev, Event{At: a.RequestedAt, Type: "approval_requested", Step: a.Step, Message: a.Message})
		if !a.GrantedAt.IsZero() {
			ev = append(ev, Event{At: a.GrantedAt, Type: "approval_granted", Step: a.Step, Message: "by " + a.By})
		}
	}
	ev = append(ev, extra...)
	if !r.Finished.IsZero() {
		ev = append(ev, Event{At: r.Finished, Type: "run_finished", Message: string(r.Status)})
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].At.Before(ev[j].At) })
	return ev
}

var fixtures = map[string]func() *Run{
	"planned_failover":  plannedFailover,
	"failed_rollback":   failedRollback,
	"paused_nested":     pausedNested,
	"unplanned_resumed": unplannedResumed,
}
