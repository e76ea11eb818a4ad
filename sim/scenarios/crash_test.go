package scenarios_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/runbookhq/runbook/plugins/aws/actions"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// The crash matrix: the runbook process is killed with SIGKILL at a step
// boundary or in the middle of a long step of a planned failover, then the
// operator resumes it as docs/execution.md tells them to. Every point must end
// exactly as an uninterrupted failover does, without a non-idempotent call
// reaching the emulator twice, and with no process left behind.

// crashPoint is where the runbook is killed: just after the first event that
// matches (the event is journaled before it is printed, so the journal holds
// at least that much; the process may have gone a little further).
type crashPoint struct {
	name  string
	ci    bool // in the reduced set CI runs
	match func(journal.Record) bool
	// slowNotice sends the notice to a local webhook that answers after
	// 2 s, so that a kill at the last steps lands before the run ends
	// (with the console only, the notice takes microseconds).
	slowNotice bool
}

var crashPoints = []crashPoint{
	{name: "after run_started", match: on(journal.RunStarted, "")},
	{name: "after check_inputs succeeded", match: on(journal.StepSucceeded, dr("check_inputs"))},
	{name: "after preflight started", match: on(journal.StepStarted, dr("preflight"))},
	{name: "mid db_status read", match: onProgress(dr("db_status"), "global cluster read")},
	{name: "after preflight succeeded", match: on(journal.StepSucceeded, dr("preflight"))},
	{name: "after check_db succeeded", match: on(journal.StepSucceeded, dr("check_db"))},
	{name: "after approve_db granted", match: on(journal.ApprovalGranted, dr("approve_db"))},
	{name: "mid S3 drain: markers written", match: onProgress(dr("s3_drain"), "marker written")},
	{name: "after s3_drain succeeded", match: on(journal.StepSucceeded, dr("s3_drain"))},
	{name: "after db_switchover started", match: on(journal.StepStarted, dr("db_switchover"))},
	{name: "mid switchover: call about to be sent", match: onProgress(dr("db_switchover"), "starting switchover")},
	{name: "mid switchover: switching-over", ci: true, match: onProgress(dr("db_switchover"), "switching-over")},
	{name: "mid switchover: writer flipped, step not recorded", match: onProgress(dr("db_switchover"), "switchover complete")},
	{name: "after db_switchover succeeded", match: on(journal.StepSucceeded, dr("db_switchover"))},
	{name: "after start_dr started", match: on(journal.StepStarted, dr("start_target"))},
	{name: "mid start_dr: first desired count set", match: onProgress(dr("start_target"), "desired count set")},
	{name: "mid ECS stabilise", ci: true, match: onProgress(dr("start_target"), "running 1/2")},
	{name: "after start_dr succeeded", ci: true, match: on(journal.StepSucceeded, dr("start_target"))},
	{name: "mid target health wait", match: onProgress(dr("target_serving"), "target group")},
	{name: "after target_serving succeeded", match: on(journal.StepSucceeded, dr("target_serving"))},
	{name: "after approve_traffic granted", match: on(journal.ApprovalGranted, dr("approve_traffic"))},
	{name: "after traffic started", match: on(journal.StepStarted, dr("traffic"))},
	{name: "mid DNS wait: server record", ci: true, match: onProgress(dr("dns_server"), "change submitted")},
	{name: "mid DNS wait: IoT record", match: onProgress(dr("dns_iot"), "change submitted")},
	{name: "after a DNS record succeeded", match: func(e journal.Record) bool {
		return e.Type == journal.StepSucceeded && (e.Step == dr("dns_server") || e.Step == dr("dns_iot"))
	}},
	{name: "after traffic succeeded", match: on(journal.StepSucceeded, dr("traffic"))},
	{name: "after guard_source_services succeeded", match: on(journal.StepSucceeded, dr("guard_source_services"))},
	{name: "after workers attempt started", match: on(journal.AttemptStarted, dr("workers"))},
	{name: "mid instance refresh", ci: true, match: onProgress(dr("workers"), "instance refresh InProgress")},
	{name: "mid old-region stop: desired count set", match: onProgress(dr("stop_source"), "desired count set")},
	{name: "mid old-region stop: draining", ci: true, match: onProgress(dr("stop_source"), "running 1/0")},
	{name: "after stop_primary succeeded", match: on(journal.StepSucceeded, dr("stop_source"))},
	{name: "after finish succeeded", match: on(journal.StepSucceeded, dr("finish")), slowNotice: true},
	{name: "after installer_next succeeded", match: on(journal.StepSucceeded, dr("installer_next")), slowNotice: true},
	{name: "after notice attempt started", match: on(journal.AttemptStarted, dr("notice")), slowNotice: true},
}

// nonIdempotent are the actions of the failover (default paths) that are not
// declared idempotent: resume must not re-run them without the operator.
var nonIdempotent = map[string]bool{"aws.asg_cycle": true, "notify.cookie_invalidation_notice": true}

func TestCrashMatrix(t *testing.T) {
	points := crashPoints
	if !fullReliability() {
		points = slices.DeleteFunc(slices.Clone(crashPoints), func(p crashPoint) bool { return !p.ci })
	}
	var mu sync.Mutex
	ran, survived := 0, 0
	t.Cleanup(func() {
		t.Logf("crash matrix: %d/%d points ended as an uninterrupted failover (%d points defined; full set: %s=1)", survived, ran, len(crashPoints), fullEnv)
	})
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			mu.Lock()
			ran++
			mu.Unlock()
			crashAndResume(t, p)
			if !t.Failed() {
				mu.Lock()
				survived++
				mu.Unlock()
			}
		})
	}
}

// crashAndResume runs one point.
func crashAndResume(t *testing.T, p crashPoint) {
	s := newSim(t)
	before := s.state()
	ctx := s.ctx()

	// 1. The failover, killed at the point. The plugins' pids are taken just
	// before the kill, to check that they die with it.
	var plugins []int
	var at journal.Record
	var extra []string // for the run and every resume (a secret input is given again)
	if p.slowNotice {
		extra = slowNoticeArgs(t)
	}
	res := s.runbook(ctx, func(e journal.Record, cmd *exec.Cmd) {
		if at.Type != "" || !p.match(e) {
			return
		}
		at = e
		for _, pr := range pluginChildren(cmd.Process.Pid, "") {
			plugins = append(plugins, pr.pid)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}, s.failoverArgs(extra...)...)
	if at.Type == "" {
		t.Fatalf("the failover ended (exit %d) without reaching the point", res.code)
	}
	if res.code != -int(syscall.SIGKILL) {
		t.Fatalf("the runbook was not killed: exit %d", res.code)
	}
	if len(plugins) == 0 {
		t.Errorf("no plugin process found as a child of the runbook process")
	}
	if alive := gone(plugins, 5*time.Second); len(alive) > 0 {
		t.Errorf("plugin processes %v outlived the runbook killed with SIGKILL", alive)
	}
	s.assertNoProcesses("after the kill")
	id := res.runID()
	j := s.readJournal(id)
	last := j.Records[len(j.Records)-1]
	t.Logf("killed after seq %d (%s %s); the journal ends at seq %d (%s %s %s)", at.Seq, at.Type, at.Step, last.Seq, last.Type, last.Step, last.Message)

	// 2. The operator resumes. The lock's holder is provably dead (this
	// host, this boot, its pid gone): resume takes the lock over and says
	// so, without `runbook unlock`.
	state := "--state=" + s.dir + "/state"
	resume := func(flags ...string) []string {
		return append(append([]string{"resume", id, "--auto-approve", "-o", "json", state}, extra...), flags...)
	}

	// Which steps were cut off mid-action with an action that is not
	// idempotent: resume must stop and name exactly those.
	blocked := inFlightNonIdempotent(j)
	r := s.runbook(ctx, nil, resume()...)
	s.assertNoProcesses("after resume")
	if !strings.Contains(r.stderr, "took over the lock") || !strings.Contains(r.stderr, id) {
		t.Errorf("resume did not take over the dead run's lock with a notice: exit %d\n%s", r.code, r.stderr)
	}
	var retried []string
	if len(blocked) > 0 {
		if r.code == 0 {
			t.Fatalf("resume went on although %v was cut off mid-action", blocked)
		}
		for _, step := range blocked {
			if !strings.Contains(r.stderr, "--retry-step "+step) || !strings.Contains(r.stderr, "--skip-step "+step) {
				t.Errorf("resume refused without telling the operator about %s (--retry-step/--skip-step):\n%s", step, r.stderr)
			}
		}
		if got := stepsNamed(r.stderr); !slices.Equal(got, blocked) {
			t.Errorf("resume named %v, want %v", got, blocked)
		}
		if len(r.eventsOf("", journal.AttemptStarted)) > 0 {
			t.Errorf("resume refused but started attempts")
		}
		t.Logf("resume refused: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
		// The operator checks the target for each and decides.
		var flags []string
		for _, step := range blocked {
			flag := s.operatorDecides(t, step, j)
			flags = append(flags, flag, step)
			if flag == "--retry-step" {
				retried = append(retried, step)
			}
		}
		r = s.runbook(ctx, nil, resume(flags...)...)
		s.assertNoProcesses("after resume with " + strings.Join(flags, " "))
	}
	noPanic(t, "resume", r)
	if r.code != 0 {
		t.Fatalf("resume: exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	fin, ok := r.finished()
	if !ok || fin.Status != journal.StatusSucceeded {
		t.Fatalf("resume did not finish the run: %+v", fin)
	}
	if left := besidesConfigEdits(t, fin.Outputs["left_to_do"], "failover"); left != "nothing" {
		t.Errorf("left_to_do = %v, want nothing", left)
	}

	// 3. The end state is an uninterrupted failover's.
	s.waitWorkersReplaced(before.drWorkers)
	after := s.state()
	s.assertActiveIn(after, s.topo.DR, s.topo.Primary)
	if len(after.drWorkers) != len(before.drWorkers) || slices.ContainsFunc(after.drWorkers, func(id string) bool { return slices.Contains(before.drWorkers, id) }) {
		t.Errorf("DR workers %v, want %d new instances (before: %v)", after.drWorkers, len(before.drWorkers), before.drWorkers)
	}
	s.assertMutationsOnce(t, slices.Contains(retried, dr("workers")))
}

// slowNoticeArgs sends the notice to a local webhook that answers after 2 s
// (webhook_url is a secret input: give these to every resume too).
func slowNoticeArgs(t *testing.T) []string {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	return []string{"--var", "webhook_url=" + hook.URL}
}

// inFlightNonIdempotent returns, sorted, the steps whose action is not
// idempotent and that had an attempt running when the journal ends.
func inFlightNonIdempotent(j *journal.Journal) []string {
	running := map[string]bool{}
	uses := map[string]string{}
	for _, e := range j.Records {
		if e.Step == "" || e.Rollback {
			continue
		}
		uses[e.Step] = e.Uses
		switch e.Type {
		case journal.AttemptStarted:
			running[e.Step] = true
		case journal.AttemptFailed, journal.StepSucceeded, journal.StepFailed, journal.StepSkipped, journal.UntilUnmet:
			running[e.Step] = false
		}
	}
	var out []string
	for step, r := range running {
		if r && nonIdempotent[uses[step]] {
			out = append(out, step)
		}
	}
	slices.Sort(out)
	return out
}

var retryStepRE = regexp.MustCompile(`--retry-step (\S+)`)

// stepsNamed returns the steps a refusal tells the operator to decide about.
func stepsNamed(stderr string) []string {
	var out []string
	for _, m := range retryStepRE.FindAllStringSubmatch(stderr, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// operatorDecides is what an operator does for a step cut off mid-action:
// look at the target, then choose.
//
//   - workers (asg_cycle): if the group has an instance refresh started since
//     the run began, the first process's call took effect and the refresh goes
//     on without it: --skip-step (a second refresh would replace the new
//     instances again). Otherwise nothing was started: --retry-step.
//   - notice: a console notice leaves nothing to check, and a repeated notice
//     is harmless where a missing one is not: --retry-step.
func (s *sim) operatorDecides(t *testing.T, step string, j *journal.Journal) string {
	switch step {
	case dr("workers"):
		out, err := autoscaling.NewFromConfig(s.emu.Config(s.topo.DR.Name)).DescribeInstanceRefreshes(context.Background(),
			&autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(s.topo.DR.ASGName)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.InstanceRefreshes {
			if r.StartTime != nil && !r.StartTime.Before(j.Start().Time.Truncate(time.Second)) {
				t.Logf("workers: instance refresh %s is %s: --skip-step", aws.ToString(r.InstanceRefreshId), r.Status)
				return "--skip-step"
			}
		}
		t.Logf("workers: no instance refresh since the run started: --retry-step")
		return "--retry-step"
	case dr("notice"):
		return "--retry-step"
	}
	t.Fatalf("no operator decision for step %s", step)
	return ""
}

// waitWorkersReplaced waits (a hang guard, not a timed assertion) until the
// DR workers are all new: after --skip-step workers, the refresh the killed
// process started finishes by itself.
func (s *sim) waitWorkersReplaced(old []string) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		st := s.state()
		if len(st.drWorkers) == len(old) && !slices.ContainsFunc(st.drWorkers, func(id string) bool { return slices.Contains(old, id) }) {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// assertMutationsOnce counts, in the proxy's log, the calls that took effect
// (reached the emulator) of every mutating operation of a failover:
//
//   - SwitchoverGlobalCluster: exactly once. The step is idempotent in the
//     sense that a resumed one joins the switchover under way or finds the
//     target already the writer; a second call would switch back.
//   - UpdateService: exactly 3 per region (server, drain, scheduler each
//     once): ecs_services leaves a service already at its count alone.
//   - ChangeResourceRecordSets: exactly 2 (one per record): route53_record
//     leaves a record already as requested alone.
//   - StartInstanceRefresh: once, or twice when the operator chose
//     --retry-step for workers (their decision, told by the CLI).
//   - S3 PutObject and DeleteObject: only the marker objects of the S3
//     drain (s3_replication_wait), under its marker prefix; never an
//     object of the installation's.
//
// Describe*/Get*/List* calls repeat freely after a resume: they change
// nothing, so they are not counted.
func (s *sim) assertMutationsOnce(t *testing.T, retriedWorkers bool) {
	t.Helper()
	check := func(what string, got, want int) {
		if got != want {
			t.Errorf("%s reached the emulator %d times, want %d", what, got, want)
		}
	}
	check("SwitchoverGlobalCluster", s.proxy.Count("rds", "SwitchoverGlobalCluster"), 1)
	check("FailoverGlobalCluster", s.proxy.Count("rds", "FailoverGlobalCluster"), 0)
	for _, r := range []string{s.topo.Primary.Name, s.topo.DR.Name} {
		check("UpdateService in "+r, s.proxy.CountWhere(faultproxy.Filter{Region: r, Service: "ecs", Operation: "UpdateService"}).Forwarded, len(s.topo.Primary.DesiredCounts))
	}
	check("ChangeResourceRecordSets", s.proxy.Count("route53", "ChangeResourceRecordSets"), 2)
	refreshes := s.proxy.Count("autoscaling", "StartInstanceRefresh")
	if refreshes < 1 || refreshes > 1 && !retriedWorkers {
		t.Errorf("StartInstanceRefresh reached the emulator %d times (workers retried by the operator: %v)", refreshes, retriedWorkers)
	}
	if refreshes > 2 {
		t.Errorf("StartInstanceRefresh reached the emulator %d times, more than once per decision", refreshes)
	}
	for _, e := range s.proxy.Log() {
		if e.Forwarded && isMutating(e.Operation) && !slices.Contains(countedMutations, e.Operation) && !isMarkerWrite(e) {
			t.Errorf("uncounted mutating call %s %s %s", e.Region, e.Service, e.Operation)
		}
	}
}

var countedMutations = []string{"SwitchoverGlobalCluster", "UpdateService", "ChangeResourceRecordSets", "StartInstanceRefresh"}

// isMarkerWrite reports whether e writes or deletes a marker object of the
// S3 drain: a key under its marker prefix, in any bucket.
func isMarkerWrite(e faultproxy.Entry) bool {
	if e.Service != "s3" || e.Operation != "PutObject" && e.Operation != "DeleteObject" {
		return false
	}
	// Path-style addressing: the plugins use it with an endpoint override.
	bucket, key, ok := strings.Cut(strings.TrimPrefix(e.Path, "/"), "/")
	return ok && bucket != "" && strings.HasPrefix(key, actions.DefaultMarkerPrefix)
}

// A crash, a resume, then a later failure: the rollbacks must restore the
// state from before the failover, although the steps cut off by the crash
// ran again after their change had taken effect (a re-run sees the new
// state as the current one). The server record's change fails every time
// after the resume, as in TestDNSFailureRollsBack.
func TestCrashThenRollback(t *testing.T) {
	type point struct {
		crashPoint
		// slowServerRecord delays the server record's change in the first
		// run, so that the kill lands before it reaches the emulator (the
		// resumed run must change it, and fail).
		slowServerRecord bool
	}
	points := []point{
		{crashPoint: crashPoint{name: "writer flipped, switchover step not recorded", ci: true, match: onProgress(dr("db_switchover"), "switchover complete")}},
		{crashPoint: crashPoint{name: "DR desired counts set, not stable", match: onProgress(dr("start_target"), "running 1/2")}},
		{crashPoint: crashPoint{name: "IoT record changed, not in sync", match: onProgress(dr("dns_iot"), "change submitted")}, slowServerRecord: true},
	}
	if !fullReliability() {
		points = slices.DeleteFunc(points, func(p point) bool { return !p.ci })
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := newSim(t)
			ctx := s.ctx()
			if p.slowServerRecord {
				if _, err := s.proxy.AddRule(faultproxy.Rule{Service: "route53", Operation: "ChangeResourceRecordSets", BodyContains: "<Type>A</Type>", Latency: faultproxy.Duration(5 * time.Second)}); err != nil {
					t.Fatal(err)
				}
			}
			var at journal.Record
			res := s.runbook(ctx, func(e journal.Record, cmd *exec.Cmd) {
				if at.Type == "" && p.match(e) {
					at = e
					_ = cmd.Process.Signal(syscall.SIGKILL)
				}
			}, s.failoverArgs()...)
			if at.Type == "" || res.code != -int(syscall.SIGKILL) {
				t.Fatalf("not killed at the point (exit %d)", res.code)
			}
			s.assertNoProcesses("after the kill")
			s.proxy.Clear()
			state := "--state=" + s.dir + "/state"
			if u := s.runbook(ctx, nil, "unlock", state); u.code != 0 {
				t.Fatalf("unlock: exit %d\n%s", u.code, u.stderr)
			}
			if _, err := s.proxy.AddRule(faultproxy.Rule{Service: "route53", Operation: "ChangeResourceRecordSets", BodyContains: "<Type>A</Type>", ErrorRate: 1, Error: faultproxy.ServerError}); err != nil {
				t.Fatal(err)
			}
			r := s.runbook(ctx, func(e journal.Record, _ *exec.Cmd) {
				if e.Type == journal.RollbackStarted && e.Step == dr("dns_iot") {
					s.proxy.Clear()
				}
			}, "resume", res.runID(), "--auto-approve", "-o", "json", state)
			s.assertNoProcesses("after resume")
			noPanic(t, "resume", r)
			fin, ok := r.finished()
			if r.code != 1 || !ok || fin.Status != journal.StatusFailed || !fin.RolledBack {
				t.Fatalf("resume: exit %d, run_finished %+v; want failed and rolled back\n%s", r.code, fin, r.stderr)
			}
			// The step cut off by the crash ran again, completed, and was
			// rolled back with the rest.
			for _, step := range []string{dr("dns_iot"), dr("guard_target_services"), dr("db_switchover")} {
				if len(r.eventsOf(step, journal.RollbackSucceeded)) != 1 {
					t.Errorf("%s was not rolled back: %+v", step, r.eventsOf(step, ""))
				}
			}
			s.assertActiveIn(s.state(), s.topo.Primary, s.topo.DR)
		})
	}
}
