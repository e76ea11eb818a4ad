package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// switchRunbook has the shape of runbooks/region-switch.yaml: steps of the
// path not taken (unplanned mode, Cloudflare and CloudFront traffic, the
// other worker restarts, the config rewrite) between those that run.
func switchRunbook() *runbook.Runbook {
	step := func(id, uses string) *runbook.Step {
		return &runbook.Step{ID: id, Uses: uses, Retry: runbook.Retry{Attempts: 1}, Timeout: 10 * time.Minute}
	}
	named := func(s *runbook.Step, name string) *runbook.Step { s.Name = name; return s }
	stop := step("stop_source", "aws.ecs_services")
	stop.Timeout = time.Minute
	return &runbook.Runbook{Name: "failover", Steps: []*runbook.Step{
		step("check_inputs", "core.assert"),
		step("check_old_writer", "core.assert"),
		step("fence", "aws.ecs_fence"),
		step("approve_db", "core.approve"),
		named(step("db_switchover", "aws.aurora_global_switchover"), "Switch the Aurora writer over to the target region (planned)"),
		step("db_failover", "aws.aurora_global_failover"),
		named(step("start_target", "aws.ecs_services"), "Start the ECS services in the target region"),
		{ID: "traffic", Name: "Switch traffic", Parallel: []*runbook.Step{
			step("dns_server", "dns.route53_record"),
			step("cloudflare_server", "dns.cloudflare_record"),
			step("cloudfront_server", "aws.cloudfront_origin"),
			step("dns_iot", "dns.route53_record"),
			step("cloudflare_iot", "dns.cloudflare_record"),
		}},
		{ID: "finish", Parallel: []*runbook.Step{
			step("workers", "aws.asg_cycle"),
			step("workers_k8s_restart", "k8sworkers.rollout_restart"),
			step("workers_spacelift", "spacelift.worker_pool_cycle"),
			stop,
		}},
		step("installer_configs", "spacelift.installer_config_update"),
		step("installer_next", "core.log"),
		step("notice", "notify.cookie_invalidation_notice"),
	}}
}

// liveRegion is the live region as it is on the screen now.
func (h *liveHarness) liveRegion() string {
	row, _ := h.screen.Cursor()
	lines := h.screen.Lines()
	return strings.Join(lines[max(row-h.l.liveLines, 0):row], "\n")
}

func skip(step, reason string) engine.Event {
	return ev(journal.StepSkipped, step, msg(reason))
}

// A planned failover through Route 53 and the Spacelift API, on a 72-column
// terminal: what the operator sees while it runs (every service's progress,
// a change's new value kept when its line is shortened, a step waiting on a
// slow endpoint saying so) and the transcript it leaves, where the steps
// of the paths not taken are one line per group.
func TestLiveSkippedPathsGolden(t *testing.T) {
	h := newHarness(t, switchRunbook(), 72, 30, false)
	var out strings.Builder
	snap := func(what string) {
		region := h.liveRegion()
		// Redrawn in place: a line of the live region never wraps.
		for _, line := range strings.Split(region, "\n") {
			if n := len([]rune(line)); n > 71 {
				t.Errorf("a line of %d columns in the live region of a 72-column terminal: %q", n, line)
			}
		}
		out.WriteString("== live region: " + what + " ==\n" + region + "\n\n")
	}
	g := func(id string) func(*engine.Event) { return group(id) }
	notPlanned := `if: inputs.mode == "unplanned" is false`

	h.at(0, engine.Event{Type: journal.RunStarted, Run: &journal.RunInfo{Runbook: "failover"}})
	h.at(0, ev(journal.StepStarted, "check_inputs", uses("core.assert")))
	h.at(0.01, ev(journal.StepSucceeded, "check_inputs", dur(0.012345)))
	h.at(0.01, skip("check_old_writer", notPlanned))
	h.at(0.01, skip("fence", notPlanned))
	h.at(0.01, ev(journal.StepStarted, "approve_db", uses("core.approve")))
	h.at(0.02, ev(journal.ApprovalRequested, "approve_db", msg("Promote?")))
	h.at(0.02, ev(journal.ApprovalGranted, "approve_db", func(e *engine.Event) { e.By, e.Via = "alice", "pre-approved" }))
	h.at(0.02, ev(journal.StepSucceeded, "approve_db", dur(0.004)))
	h.at(0.02, ev(journal.StepStarted, "db_switchover", uses("aws.aurora_global_switchover")))
	h.at(0.02, ev(journal.AttemptStarted, "db_switchover", attempt(1)))
	h.at(0.5, ev(journal.Progress, "db_switchover", msg("starting switchover"), fields(
		"from", "arn:aws:rds:eu-west-1:123456789012:cluster:spacelift-primary", "issued_in", "eu-west-1",
		"to", "arn:aws:rds:eu-west-3:123456789012:cluster:spacelift-dr")))
	snap("the switchover's target kept whole")
	h.at(62.4, ev(journal.StepSucceeded, "db_switchover", dur(62.383912)))
	h.at(62.4, skip("db_failover", notPlanned))
	h.at(62.4, ev(journal.StepStarted, "start_target", uses("aws.ecs_services")))
	h.at(62.4, ev(journal.AttemptStarted, "start_target", attempt(1)))
	h.at(62.5, ev(journal.Progress, "start_target", msg("split-brain guard passed: the database writer is in this region"), fields("region", "eu-west-3")))
	for i, svc := range []string{"server", "drain", "scheduler"} {
		h.at(63+float64(i)/10, ev(journal.Progress, "start_target", msg("desired count set"), fields("service", svc, "from", 0, "to", 2)))
	}
	h.at(70, ev(journal.Progress, "start_target", msg("service server: running 1/2"), fields("service", "server", "stable", false)))
	h.at(70.1, ev(journal.Progress, "start_target", msg("service drain: running 2/2"), fields("service", "drain", "stable", true)))
	snap("every service's progress")
	h.at(80, ev(journal.StepSucceeded, "start_target", dur(17.6)))
	h.at(80, ev(journal.StepStarted, "traffic"))
	h.at(80, ev(journal.StepStarted, "dns_server", g("traffic"), uses("dns.route53_record")))
	h.at(80, ev(journal.AttemptStarted, "dns_server", g("traffic"), attempt(1)))
	h.at(80, skip("cloudflare_server", `if: inputs.traffic == "cloudflare" is false`))
	h.at(80, skip("cloudfront_server", `if: inputs.traffic == "cloudfront" is false`))
	h.at(80, ev(journal.StepStarted, "dns_iot", g("traffic"), uses("dns.route53_record")))
	h.at(80, skip("cloudflare_iot", `if: inputs.iot_dns == "cloudflare" is false`))
	h.at(80.3, ev(journal.Progress, "dns_server", g("traffic"), msg("change submitted: A spacelift.example.com alias primary-lb-1234567890.eu-west-1.elb.amazonaws.com -> alias dualstack.dr-lb-0987654321.eu-west-3.elb.amazonaws.com"),
		fields("change_id", "C0123456789ABCDEFGHIJ", "status", "PENDING")))
	snap("a record change's new value kept whole")
	h.at(95.0, ev(journal.StepSucceeded, "dns_iot", g("traffic"), dur(15)))
	h.at(95.05, ev(journal.StepSucceeded, "dns_server", g("traffic"), dur(15.05)))
	h.at(95.05, ev(journal.StepSucceeded, "traffic", dur(15.05)))
	h.at(95.1, ev(journal.StepStarted, "finish"))
	h.at(95.1, skip("workers", `if: inputs.workers == "asg" is false`))
	h.at(95.1, skip("workers_k8s_restart", `if: inputs.workers == "kubernetes" && inputs.k8s_deployment != "" is false`))
	h.at(95.1, ev(journal.StepStarted, "workers_spacelift", g("finish"), uses("spacelift.worker_pool_cycle")))
	h.at(95.1, ev(journal.AttemptStarted, "workers_spacelift", g("finish"), attempt(1)))
	h.at(95.1, ev(journal.StepStarted, "stop_source", g("finish"), uses("aws.ecs_services")))
	h.at(95.1, ev(journal.AttemptStarted, "stop_source", g("finish"), attempt(1)))
	h.at(95.2, ev(journal.Progress, "stop_source", g("finish"), msg("calling ECS"), fields("region", "eu-west-1")))
	h.at(96, ev(journal.StepSucceeded, "workers_spacelift", g("finish"), dur(0.9)))
	h.tick(107.6)
	snap("a step waiting on a slow endpoint")
	h.at(110, ev(journal.StepSucceeded, "stop_source", g("finish"), dur(14.9)))
	h.at(110, ev(journal.StepSucceeded, "finish", dur(14.9)))
	h.at(110, skip("installer_configs", "if: inputs.rewrite_installer_configs is false"))
	h.at(110, ev(journal.StepStarted, "installer_next", uses("core.log")))
	h.at(110, ev(journal.StepSucceeded, "installer_next", dur(0.001)))
	h.at(110, ev(journal.StepStarted, "notice", uses("notify.cookie_invalidation_notice")))
	h.at(110.2, ev(journal.StepSucceeded, "notice", dur(0.2)))
	h.at(110.2, engine.Event{Type: journal.RunFinished, Status: "succeeded"})
	h.l.Close()
	h.checkClean()
	out.WriteString("== transcript ==\n" + h.screen.String() + "\n")
	golden(t, "live_skipped_paths.golden", []byte(out.String()))
}

// A step that waits by design (core.sleep) is not said to wait for an
// answer; a plugin's action that has been silent for less than 5 s is not
// either.
func TestLiveQuietSteps(t *testing.T) {
	rb := &runbook.Runbook{Steps: []*runbook.Step{
		{ID: "nap", Uses: "core.sleep", Timeout: time.Hour},
		{ID: "call", Uses: "aws.ecs_services", Timeout: time.Minute},
	}}
	h := newHarness(t, rb, 100, 20, false)
	h.at(0, ev(journal.StepStarted, "nap", uses("core.sleep")))
	h.at(0, ev(journal.AttemptStarted, "nap", attempt(1)))
	h.at(0, ev(journal.Progress, "nap", msg("sleeping 1m0s")))
	h.tick(30)
	if got := h.screenText(); strings.Contains(got, "no answer") {
		t.Errorf("core.sleep said to wait for an answer:\n%s", got)
	}
	h.at(60, ev(journal.StepSucceeded, "nap", dur(60)))
	h.at(60, ev(journal.StepStarted, "call", uses("aws.ecs_services")))
	h.at(60, ev(journal.AttemptStarted, "call", attempt(1)))
	h.tick(64.9)
	if got := h.screenText(); strings.Contains(got, "no answer") {
		t.Errorf("said to wait after 4.9s:\n%s", got)
	}
	h.tick(66)
	if got := h.screenText(); !strings.Contains(got, "    ↳ no answer from ECS for 6.0s (limit 1m00s)") {
		t.Errorf("a silent action:\n%s", got)
	}
	h.l.Close()
	h.checkClean()
}

// Shortening keeps the new value of a change whole, in the message (after
// "->") or in a to= field, and cuts the rest first.
func TestShortenKeepsTheNewValue(t *testing.T) {
	for _, c := range []struct {
		msg    string
		fields map[string]any
		width  int
		want   []string
	}{
		{"desired count set", map[string]any{"service": "server", "from": 0, "to": 2}, 100, []string{"desired count set (to=2, from=0, service=server)"}},
		{"desired count set", map[string]any{"service": "server", "from": 0, "to": 2}, 30, []string{"desired count set (to=2, from…"}},
		{"origin changed: old-lb.eu-west-1.elb.amazonaws.com -> dr-lb.eu-west-3.elb.amazonaws.com", nil, 60,
			[]string{"origin chang…zonaws.com -> dr-lb.eu-west-3.elb.amazonaws.com"}},
		{"origin changed: old -> dr-lb.eu-west-3.elb.amazonaws.com", map[string]any{"distribution": "E123"}, 48,
			[]string{"origin changed: old (distribution=E123)", "-> dr-lb.eu-west-3.elb.amazonaws.com"}},
		{"a plain message that is far too long", nil, 20, []string{"a plain message tha…"}},
	} {
		head, target, tail := noteText(c.msg, c.fields)
		got := shorten(head, target, tail, c.width)
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("shorten(%q, %v, %d) = %q, want %q", c.msg, c.fields, c.width, got, c.want)
		}
		for _, l := range got {
			if n := len([]rune(l)); n > c.width {
				t.Errorf("%q: %d columns, width %d", l, n, c.width)
			}
		}
	}
}
