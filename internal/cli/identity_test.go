package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/emulator"
)

// awsEnv points the SDK's default chain at endpoint with static test
// credentials (and a session token that must never be recorded), and at
// nothing else: no shared files, no instance metadata.
func awsEnv(t *testing.T, endpoint string) {
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", emulator.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", emulator.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "sess-t0ken-must-not-leak")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_PROFILE", "")
	for _, k := range []string{"GITHUB_ACTIONS", "GITLAB_CI", "CI", ApproverEnv} {
		t.Setenv(k, "")
	}
}

// An approval given with --approve from a CI job, with AWS credentials:
// the journal records the caller identity STS (the emulator's) answers, the
// CI run from GitHub Actions' variables, the stated approver, the OS user
// and host; the report shows them; no credential is in either.
func TestApprovalRecordsWhoApproved(t *testing.T) {
	emu := emulator.StartForTest(t)
	awsEnv(t, emu.URL)
	for k, v := range map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_WORKFLOW": "DR drill",
		"GITHUB_RUN_ID": "4242", "GITHUB_REPOSITORY": "myorg/infra", "GITHUB_SERVER_URL": "https://github.com"} {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	rbPath := filepath.Join(dir, "rb.yaml")
	src := "version: 1\nname: who\nsteps:\n  - id: ok\n    uses: core.approve\n    with: { message: \"go?\" }\n"
	if err := os.WriteFile(rbPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	ctx := context.Background()
	const id = "20250611T101500Z-0000beef"
	io, _, out, errOut := TestStreams()
	if code := Run(ctx, io, []string{"run", rbPath, "--state", state, "--run-id", id, "--approve", "ok", "--approver", "CHG-1234"}); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	var raw []byte
	for _, rec := range openJournal(t, journal.NewFileStore(state), id).Records {
		if rec.Type == journal.ApprovalGranted {
			raw, _ = json.Marshal(rec) // as the journal holds it
		}
	}
	var granted map[string]any
	if err := json.Unmarshal(raw, &granted); err != nil || granted == nil {
		t.Fatalf("no approval_granted in the journal: %v", err)
	}
	t.Logf("journaled: %s", raw)
	ap, _ := granted["approver"].(map[string]any)
	aws, _ := ap["aws"].(map[string]any)
	ci, _ := ap["ci"].(map[string]any)
	arn, _ := aws["arn"].(string)
	if !regexp.MustCompile(`^arn:aws:(sts|iam)::\d{12}:`).MatchString(arn) || aws["account"] == "" || !strings.Contains(arn, aws["account"].(string)) {
		t.Errorf("AWS caller identity: %s", raw)
	}
	host, _ := os.Hostname()
	if ap["host"] != host || ap["os_user"] == "" || ap["stated"] != "CHG-1234" {
		t.Errorf("host, OS user, stated approver: %s", raw)
	}
	if ci["system"] != "github-actions" || ci["actor"] != "octocat" || ci["workflow"] != "DR drill" || ci["run_id"] != "4242" ||
		ci["url"] != "https://github.com/myorg/infra/actions/runs/4242" {
		t.Errorf("CI identity: %s", raw)
	}

	io, _, out, errOut = TestStreams()
	if code := Run(ctx, io, []string{"report", id, "--state", state}); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, errOut)
	}
	md := out.String()
	for _, want := range []string{"AWS " + arn, "github-actions actor octocat", "run 4242", "stated: CHG-1234", "OS "} {
		if !strings.Contains(strings.ReplaceAll(md, `\`, ""), want) {
			t.Errorf("the report's approvals lack %q:\n%s", want, md)
		}
	}
	for _, secret := range []string{emulator.SecretAccessKey + `"`, "sess-t0ken-must-not-leak", `"` + emulator.AccessKeyID + `"`} {
		if strings.Contains(string(raw), secret) || strings.Contains(md, strings.Trim(secret, `"`)+" ") {
			t.Errorf("credential %q recorded", secret)
		}
	}
}

// An STS endpoint that accepts the connection and never answers (a dark
// region, a black-holed network) makes the AWS identity unknown within the
// bound; the approval is not held up longer.
func TestApprovalIdentityWithSTSUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	awsEnv(t, "http://"+ln.Addr().String())
	start := time.Now()
	id := startIdentity(context.Background(), "", os.Getenv).get(context.Background())
	took := time.Since(start)
	if took > stsTimeout+2*time.Second {
		t.Errorf("the identity took %s, bound %s", took, stsTimeout)
	}
	if id.AWS != nil || id.AWSUnknown != "STS did not answer within 3s" {
		t.Errorf("identity %+v", id)
	}
	if id.OSUser == "" || id.Host == "" {
		t.Errorf("OS user and host still recorded: %+v", id)
	}
}

// Without AWS credentials nothing is asked of the network; the CI run and
// the stated approver come from the environment.
func TestApprovalIdentityFromTheEnvironment(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"HOME": home, "USER": "runner", "GITLAB_CI": "true", "GITLAB_USER_LOGIN": "ops-bot",
		"CI_JOB_NAME": "failover", "CI_PIPELINE_ID": "77", "CI_PROJECT_PATH": "myorg/infra",
		"CI_PIPELINE_URL": "https://gitlab.example.com/myorg/infra/-/pipelines/77", ApproverEnv: "on-call: bob"}
	getenv := func(k string) string { return env[k] }
	id := startIdentity(context.Background(), "", getenv).get(context.Background())
	if id.AWS != nil || !strings.HasPrefix(id.AWSUnknown, "no AWS credentials") {
		t.Errorf("AWS without credentials: %+v", id)
	}
	if id.CI == nil || id.CI.System != "gitlab-ci" || id.CI.Actor != "ops-bot" || id.CI.RunID != "77" || id.CI.URL != env["CI_PIPELINE_URL"] {
		t.Errorf("CI: %+v", id.CI)
	}
	if id.Stated != "on-call: bob" {
		t.Errorf("stated %q", id.Stated)
	}
	if got := id.String(); !strings.Contains(got, "gitlab-ci actor ops-bot (myorg/infra, workflow failover, run 77)") || !strings.Contains(got, "stated: on-call: bob") {
		t.Errorf("one line: %s", got)
	}
	// A shared credentials file counts as credentials present.
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte("[default]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !awsCredentialsPresent(getenv) {
		t.Error("~/.aws/credentials not taken as credentials present")
	}
	env["GITLAB_CI"], env["GITHUB_ACTIONS"], env["GITHUB_ACTOR"], env["GITHUB_TRIGGERING_ACTOR"], env["GITHUB_RUN_ID"], env["GITHUB_RUN_ATTEMPT"] =
		"", "true", "octocat", "monalisa", "9", "2"
	if c := ciIdentity(getenv); c.Actor != "octocat (re-run by monalisa)" || c.RunID != "9 attempt 2" {
		t.Errorf("re-run: %+v", c)
	}
}
