package scenarios_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/runbookhq/runbook/internal/docgen"
	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/iam"
	"github.com/runbookhq/runbook/sdk/spec"
	"github.com/runbookhq/runbook/sim/contracts"
)

// Every AWS call an action made during the DR runbooks' paths is covered
// by the permissions that action declares: the IAM action that authorizes
// the API call, on a resource ARN the declared templates can produce.
// Calls are attributed by the User-Agent the AWS plugins send
// (runbook-action/<plugin>.<action>); a new action that declares nothing
// fails here with what it must add.
func TestPermissionsCoverEveryCall(t *testing.T) {
	xs := runContractPaths(t)
	r, err := contracts.Check(t.Context(), xs, true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkPermissions(r, simAccount)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.problems {
		t.Error(p)
	}
	// Not vacuous: most calls came from actions, and every action of the
	// paths was seen.
	if st.attributed < len(xs)/2 {
		t.Errorf("only %d of %d calls named their action", st.attributed, len(xs))
	}
	for _, a := range []string{"aws.aurora_global_status", "aws.aurora_global_switchover", "aws.aurora_global_failover", "aws.ecs_services",
		"aws.asg_cycle", "aws.iot_endpoint", "aws.s3_replication_check", "aws.s3_batch_replicate", "aws.cloudfront_origin", "dns.route53_record"} {
		if !st.actions[a] {
			t.Errorf("no call of %s was seen", a)
		}
	}
	t.Logf("%d calls attributed to %d actions, %d by the test itself", st.attributed, len(st.actions), st.unattributed)
}

// simAccount is the account of the simulation's calls: moto's, as the
// emulator's STS reports it. (The declared templates' {account} matches any
// account, so only the shape of the ARNs matters here.)
const simAccount = "123456789012"

type permissionStats struct {
	problems                 []string
	attributed, unattributed int
	actions                  map[string]bool
}

var uaActionRE = regexp.MustCompile(regexp.QuoteMeta(awscommon.UserAgentKey) + `/([A-Za-z0-9_.-]+)`)

// checkPermissions attributes each checked call to its action and checks
// that action's declared permissions cover it.
func checkPermissions(r *contracts.Report, account string) (*permissionStats, error) {
	specs, err := actionSpecs()
	if err != nil {
		return nil, err
	}
	st := &permissionStats{actions: map[string]bool{}}
	seen := map[string]bool{}
	for _, c := range r.Calls {
		m := uaActionRE.FindStringSubmatch(c.UserAgent)
		if m == nil {
			st.unattributed++ // the test's own reads of the emulator
			continue
		}
		st.attributed++
		action := m[1]
		st.actions[action] = true
		for _, p := range uncovered(c, action, specs[action], account) {
			if !seen[p] {
				seen[p] = true
				st.problems = append(st.problems, p)
			}
		}
	}
	sort.Strings(st.problems)
	return st, nil
}

var specCache struct {
	sync.Once
	specs map[string]*spec.ActionSpec
	err   error
}

// actionSpecs are the descriptions of every action of the built plugins,
// by "<plugin>.<action>".
func actionSpecs() (map[string]*spec.ActionSpec, error) {
	specCache.Do(func() {
		specCache.specs = map[string]*spec.ActionSpec{}
		for _, p := range []string{"aws", "dns"} {
			out, err := exec.Command(filepath.Join(binDir, "runbook-plugin-"+p), "describe").Output()
			if err != nil {
				specCache.err = fmt.Errorf("runbook-plugin-%s describe: %w", p, err)
				return
			}
			var d spec.Description
			if err := json.Unmarshal(out, &d); err != nil {
				specCache.err = err
				return
			}
			for i := range d.Actions {
				specCache.specs[p+"."+d.Actions[i].Name] = &d.Actions[i]
			}
		}
	})
	return specCache.specs, specCache.err
}

// uncovered says what of a call the action's declared permissions do not
// cover.
func uncovered(c contracts.Call, action string, a *spec.ActionSpec, account string) []string {
	call := fmt.Sprintf("%s called %s %s in %s", action, c.Service, c.Operation, c.Region)
	if a == nil {
		return []string{call + ", but no plugin describes that action"}
	}
	needs, ok := contracts.Needs(c, account)
	if !ok {
		return []string{fmt.Sprintf("%s: which IAM action authorizes %s:%s is not known: add it to contracts.IAMActionOf or contracts.IAMPrefix", call, c.Service, c.Operation)}
	}
	if len(a.Permissions) == 0 {
		return []string{fmt.Sprintf("%s, but it declares no permissions: add .Permissions(...) with %s", call, describeNeeds(needs))}
	}
	var out []string
	for _, n := range needs {
		if !contracts.Declares(a.Permissions, n) {
			out = append(out, fmt.Sprintf("%s, which needs %s; its permissions do not cover it (declared: %s)", call, describeNeeds([]contracts.Need{n}), declared(a)))
		}
	}
	return out
}

func describeNeeds(ns []contracts.Need) string {
	var parts []string
	for _, n := range ns {
		if n.Resource == "" {
			parts = append(parts, n.Action)
		} else {
			parts = append(parts, n.Action+" on "+n.Resource)
		}
	}
	return strings.Join(parts, ", ")
}

func declared(a *spec.ActionSpec) string {
	var parts []string
	for _, p := range a.Permissions {
		s := strings.Join(p.Actions, ",")
		if len(p.Resources) > 0 {
			s += " on " + strings.Join(p.Resources, ",")
		}
		if p.Role != "" {
			s += " (role " + p.Role + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// checkAllRecordedPermissions is TestMain's permission check of what every
// scenario recorded.
func checkAllRecordedPermissions(r *contracts.Report) []string {
	st, err := checkPermissions(r, simAccount)
	if err != nil {
		return []string{err.Error()}
	}
	return st.problems
}

// The coverage check itself: what it must refuse.
func TestPermissionCheckNamesWhatIsNotCovered(t *testing.T) {
	update := contracts.Call{Service: "ecs", Operation: "UpdateService", Region: "eu-west-3",
		Params: map[string]any{"cluster": "spacelift", "service": "server", "desiredCount": 2.0}}
	createJob := contracts.Call{Service: "s3control", Operation: "CreateJob", Region: "eu-west-1",
		Params: map[string]any{"AccountId": simAccount, "RoleArn": "arn:aws:iam::123456789012:role/batch"}}
	getRepl := contracts.Call{Service: "s3", Operation: "GetBucketReplication", Region: "eu-west-1", Params: map[string]any{"Bucket": "states"}}
	perm := func(actions []string, resources ...string) spec.Permission {
		return spec.Permission{Actions: actions, Resources: resources}
	}
	cases := []struct {
		name  string
		call  contracts.Call
		perms []spec.Permission
		want  string // "" means covered
	}{
		{"covered", update, []spec.Permission{perm([]string{"ecs:UpdateService"}, "arn:{partition}:ecs:${region}:{account}:service/${cluster}/*")}, ""},
		{"a wildcard action", update, []spec.Permission{perm([]string{"ecs:Update*"})}, ""},
		{"nothing declared", update, nil, "declares no permissions: add .Permissions(...) with ecs:UpdateService on arn:aws:ecs:eu-west-3:123456789012:service/spacelift/server"},
		{"another action", update, []spec.Permission{perm([]string{"ecs:DescribeServices"})}, "needs ecs:UpdateService on arn:aws:ecs:eu-west-3"},
		{"a resource of the wrong shape", update, []spec.Permission{perm([]string{"ecs:UpdateService"}, "arn:{partition}:ecs:${region}:{account}:service/${cluster}")}, "its permissions do not cover it"},
		{"the S3 action IAM names otherwise", getRepl, []spec.Permission{perm([]string{"s3:GetBucketReplication"}, "arn:{partition}:s3:::${buckets}")}, "needs s3:GetReplicationConfiguration on arn:aws:s3:::states"},
		{"a version of an object", contracts.Call{Service: "s3", Operation: "HeadObject", Region: "eu-west-1", Params: map[string]any{"Bucket": "b", "Key": "k", "VersionId": "v1"}},
			[]spec.Permission{perm([]string{"s3:GetObject"}, "arn:{partition}:s3:::${bucket}/*")}, "needs s3:GetObjectVersion on arn:aws:s3:::b/k"},
		{"the role passed to a service", createJob, []spec.Permission{perm([]string{"s3:CreateJob"})}, "needs iam:PassRole on arn:aws:iam::123456789012:role/batch"},
		{"a permission of the role is not the caller's", createJob, []spec.Permission{perm([]string{"s3:CreateJob"}),
			{Actions: []string{"iam:PassRole"}, Resources: []string{"${role_arn}"}, Role: "role_arn", AssumedBy: "batchoperations.s3.amazonaws.com"}}, "needs iam:PassRole"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := uncovered(c.call, "aws.x", &spec.ActionSpec{Name: "x", Permissions: c.perms}, simAccount)
			switch {
			case c.want == "" && len(got) > 0:
				t.Errorf("not covered: %v", got)
			case c.want != "" && (len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), c.want)):
				t.Errorf("got %q, want a problem with %q", got, c.want)
			case c.want != "" && !strings.Contains(got[0], "aws.x called "+c.call.Service+" "+c.call.Operation):
				t.Errorf("%q does not name the action and the call", got[0])
			}
		})
	}
	if got := uncovered(contracts.Call{Service: "glacier", Operation: "ListVaults"}, "aws.x", &spec.ActionSpec{Permissions: []spec.Permission{perm([]string{"glacier:ListVaults"})}}, simAccount); len(got) != 1 || !strings.Contains(got[0], "not known") {
		t.Errorf("an operation of an unmapped service: %v", got)
	}
}

// The IAM lists of docs/dr-guide.md are `runbook permissions` of the DR
// runbooks for the example inputs in docs/examples (-update rewrites them).
func TestDocsIAMLists(t *testing.T) {
	s := &sim{t: t, dir: t.TempDir()}
	ex := filepath.Join(repoRoot, "docs", "examples")
	base := []string{"--var", "primary=@" + filepath.Join(ex, "config.json"), "--var", "dr=@" + filepath.Join(ex, "config.dr.json")}
	drInputs := append(append([]string(nil), base...), "--var-file", filepath.Join(ex, "inputs.json"))
	cases := []struct{ title, runbook string }{
		{"failover.yaml or failback.yaml, planned (Route 53, ASG workers: the defaults)", failover},
		{"failover.yaml, unplanned", failover},
		{"with `traffic: cloudfront`, in place of the Route 53 server record", failover},
		{"enable-dr.yaml", enableDR},
	}
	extra := [][]string{nil, {"--var", "mode=unplanned"}, {"--var", "traffic=cloudfront", "--var", "cloudfront_distribution_id=E2EXAMPLE"},
		{"--var", "batch_role_arn=arn:aws:iam::123456789012:role/spacelift-s3-batch-replication", "--var", "report_bucket=my-batch-reports"}}
	var b strings.Builder
	var planned []string
	for i, c := range cases {
		args := append([]string{"permissions", c.runbook}, drInputs...)
		if c.runbook == enableDR {
			args = append([]string{"permissions", c.runbook}, base...)
		}
		res := s.runbook(s.ctx(), nil, append(args, extra[i]...)...)
		if res.code != 0 {
			t.Fatalf("%s: exit %d\n%s", c.title, res.code, res.stderr)
		}
		var rep struct {
			Policy iam.Policy `json:"policy"`
			Roles  []iam.Role `json:"roles"`
		}
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		acts := policyActions(rep.Policy)
		if i == 0 {
			planned = acts
			// The title says failback needs the same.
			res := s.runbook(s.ctx(), nil, append([]string{"permissions", failback, "--policy"}, drInputs...)...)
			var p iam.Policy
			if err := json.Unmarshal([]byte(res.stdout), &p); err != nil || !slices.Equal(policyActions(p), planned) {
				t.Fatalf("failback's IAM actions differ from failover's (%v):\n%s%s", err, res.stdout, res.stderr)
			}
		}
		if i == 1 || i == 2 {
			// What the path adds to (or takes from) the planned default.
			var more []string
			for _, a := range acts {
				if !slices.Contains(planned, a) {
					more = append(more, a)
				}
			}
			acts = more
			fmt.Fprintf(&b, "- %s, also: %s\n", c.title, codeList(acts))
			continue
		}
		fmt.Fprintf(&b, "- %s: %s\n", c.title, codeList(acts))
		for _, r := range rep.Roles {
			fmt.Fprintf(&b, "  - the role given as `batch_role_arn`, trusting `%s`: %s\n", r.AssumedBy, codeList(policyActions(r.Policy)))
		}
	}
	docgen.Check(t, "docs/dr-guide.md", "iam", b.String())
}

func policyActions(p iam.Policy) []string {
	var out []string
	for _, st := range p.Statement {
		for _, a := range st.Action {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out
}

func codeList(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + s + "`"
	}
	return strings.Join(out, ", ")
}
