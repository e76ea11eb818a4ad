// Package contracts checks AWS exchanges recorded by the fault proxy against
// AWS's own API models (botocore's service-2.json in the simulation's pinned
// Python environment): the operation exists, the request's parameters have
// the required members, types, enum values, lengths and patterns the model
// gives, and the emulator's answers match the operation's output shape and
// modeled errors. The checks are in awscontracts.py, run with the
// simulation's interpreter; see docs/simulation.md.
package contracts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// Finding is one way an exchange departs from the model.
type Finding struct {
	Seq       int    `json:"seq"`
	Region    string `json:"region"`
	UserAgent string `json:"user_agent"`
	// Operation is "<botocore service>:<operation>", e.g. "rds:SwitchoverGlobalCluster".
	Operation string `json:"operation"`
	Direction string `json:"direction"` // request or response
	// Member is the path of the member at fault ("ChangeBatch.Changes[0].Action"),
	// empty for the whole message.
	Member string `json:"member"`
	// Rule is what it breaks: required, unknown-member, type, enum, pattern,
	// min-length, max-length, min, max, unknown-operation, unknown-service,
	// error-code, error-status, body, ...
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
	// Reason is why an allowlist entry excuses it (Report.Allowlisted only).
	Reason string `json:"reason,omitempty"`
}

func (f Finding) String() string {
	member := f.Member
	if member == "" {
		member = "(message)"
	}
	return fmt.Sprintf("%s %s #%d: member %s: rule %s: %s", f.Operation, f.Direction, f.Seq, member, f.Rule, f.Detail)
}

// Call is what the model says an exchange was.
type Call struct {
	Seq         int            `json:"seq"`
	Service     string         `json:"service"`      // botocore's name: rds, s3control, cloudwatch
	SigningName string         `json:"signing_name"` // s3 for S3 Control, monitoring for CloudWatch
	Operation   string         `json:"operation"`
	Region      string         `json:"region"`
	UserAgent   string         `json:"user_agent"`
	Params      map[string]any `json:"params"` // the request decoded along the model
}

// Report is the result of a check.
type Report struct {
	RequestsChecked  int       `json:"requests_checked"`
	ResponsesChecked int       `json:"responses_checked"`
	Findings         []Finding `json:"findings"`
	Allowlisted      []Finding `json:"allowlisted"`
	Calls            []Call    `json:"exchanges"`
}

// Operations counts the calls by "<service>:<operation>", sorted.
func (r *Report) Operations() []string {
	n := map[string]int{}
	for _, c := range r.Calls {
		n[c.Service+":"+c.Operation]++
	}
	out := make([]string, 0, len(n))
	for k, v := range n {
		out = append(out, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(out)
	return out
}

// AllowlistFile is the explicit list of the emulator's departures from the
// models that cannot be fixed here, each with its reason.
const AllowlistFile = "sim/contracts/allowlist.json"

// Check checks exchanges with the simulation's interpreter and the
// repository's allowlist (allowlist false: none, as the tests of the
// checker itself want).
func Check(ctx context.Context, xs []faultproxy.Exchange, allowlist bool) (*Report, error) {
	root, err := emulator.RepoRoot()
	if err != nil {
		return nil, err
	}
	python, err := emulator.Python(root)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "runbook-contracts-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "exchanges.jsonl")
	if err := faultproxy.WriteExchanges(in, xs); err != nil {
		return nil, err
	}
	args := []string{filepath.Join(root, "sim", "contracts", "awscontracts.py"), in}
	if allowlist {
		args = append(args, "--allowlist", filepath.Join(root, AllowlistFile))
	}
	cmd := exec.CommandContext(ctx, python, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("contracts: %s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("contracts: reading the checker's report: %w", err)
	}
	return &r, nil
}
