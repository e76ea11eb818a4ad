package ui

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/engine"
)

func TestSummary(t *testing.T) {
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	res := &engine.Result{RunID: "r1", Status: engine.StatusSucceeded, Started: at(0), Finished: at(200),
		Steps: []engine.StepResult{
			{ID: "db", Uses: "aws.x", Status: engine.StepSucceeded, Attempts: 2, Started: at(0), Finished: at(67)},
			{ID: "traffic", Status: engine.StepSucceeded, Started: at(67), Finished: at(130)},
			{ID: "dns", Group: "traffic", Uses: "dns.y", Status: engine.StepSucceeded, Attempts: 1, Started: at(67), Finished: at(130)},
			{ID: "probe", Uses: "dns.z", Status: engine.StepFailed, Continued: true, Attempts: 1, Started: at(130), Finished: at(131)},
			{ID: "old", Uses: "aws.x", Status: engine.StepSkipped, Started: at(131), Finished: at(131)},
		},
		Outputs: map[string]any{"writer": "eu-west-3", "token": "s3cr3t", "time_to_database_writable": "1m7.123456789s", "lag": "250ms"},
	}
	var b bytes.Buffer
	Summary(&b, res, []Milestone{{Name: "traffic switched", At: at(130)}, {Name: "database writable", At: at(67)}}, map[string]bool{"token": true})
	want := `
STEP     STATUS              ATTEMPTS  DURATION
db       succeeded           2         1m07s
traffic  succeeded                     1m03s
  dns    succeeded           1         1m03s
probe    failed (continued)  1         1.0s
old      skipped

run r1: succeeded in 3m20s
  ◆ database writable  +1m07s
  ◆ traffic switched   +2m10s

outputs:
  lag = 250ms
  time_to_database_writable = 1m07s
  token = ***
  writer = eu-west-3
`
	if got := b.String(); got != want {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}

	b.Reset()
	Summary(&b, &engine.Result{RunID: "r2", Status: engine.StatusPaused, Started: at(0), Finished: at(1), Waiting: []string{"confirm"}}, nil, nil)
	if !strings.Contains(b.String(), "continue with: runbook resume r2 --approve confirm") {
		t.Errorf("paused summary:\n%s", b.String())
	}
	b.Reset()
	Summary(&b, &engine.Result{RunID: "r3", Status: engine.StatusRollbackFailed, Started: at(0), Finished: at(1),
		Failure:          &engine.StepError{Step: "svc", Message: "boom"},
		RollbackFailures: []*engine.StepError{{Step: "db", Rollback: true, Message: "stuck"}}, Err: errors.New("x")}, nil, nil)
	for _, want := range []string{"failed: step svc failed: boom", "rollback failed: rollback of step db failed: stuck — manual attention needed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("rollback-failed summary lacks %q:\n%s", want, b.String())
		}
	}
}
