package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/runbookhq/runbook/sdk/journal"
)

// ApproverEnv states who approves, like --approver: a name, a ticket, a
// change number. Recorded with every approval of the run.
const ApproverEnv = "RUNBOOK_APPROVER"

// ApproverUserAgentKey marks the caller-identity request in its
// User-Agent ("runbook-approver/sts"), as the plugins' and the state's
// requests are marked: CloudTrail and the simulation can tell it apart.
const ApproverUserAgentKey = "runbook-approver"

// stsTimeout bounds the AWS caller-identity lookup: an STS endpoint that
// does not answer (a dark region, no network) makes the identity unknown,
// never the approval late.
const stsTimeout = 3 * time.Second

// identityLookup finds out, once and in the background, who answers this
// process's approvals; get waits for it at most until its bound.
type identityLookup struct {
	done chan struct{}
	id   journal.Identity
}

// startIdentity starts the lookup: OS user and host, the CI run named by
// the environment, the stated approver (--approver, else $RUNBOOK_APPROVER)
// and, when AWS credentials are present, STS GetCallerIdentity within
// stsTimeout.
func startIdentity(ctx context.Context, stated string, getenv func(string) string) *identityLookup {
	l := &identityLookup{done: make(chan struct{})}
	if stated == "" {
		stated = getenv(ApproverEnv)
	}
	l.id = journal.Identity{OSUser: osUser(getenv), Stated: strings.TrimSpace(stated), CI: ciIdentity(getenv)}
	l.id.Host, _ = os.Hostname()
	if !awsCredentialsPresent(getenv) {
		l.id.AWSUnknown = "no AWS credentials in the environment or the shared AWS files"
		close(l.done)
		return l
	}
	go func() {
		defer close(l.done)
		l.id.AWS, l.id.AWSUnknown = callerIdentity(context.WithoutCancel(ctx), stsTimeout)
	}()
	return l
}

// get returns the identity, waiting for the AWS lookup at most until its
// own bound (or ctx's end, the identity then saying so).
func (l *identityLookup) get(ctx context.Context) *journal.Identity {
	select {
	case <-l.done:
		id := l.id
		return &id
	case <-ctx.Done():
		id := journal.Identity{OSUser: l.id.OSUser, Host: l.id.Host, Stated: l.id.Stated, CI: l.id.CI, AWSUnknown: "the approval was answered before STS did"}
		return &id
	}
}

func osUser(getenv func(string) string) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := getenv("USER"); u != "" {
		return u
	}
	return getenv("USERNAME")
}

// awsCredentialsPresent reports whether the SDK's default chain has a
// source of credentials to try without probing the network: credentials
// or a profile in the environment, a web identity token, a container
// credentials endpoint, or the shared config and credentials files. An EC2
// instance profile is tried only when AWS_EC2_METADATA_DISABLED=false says
// so, so that a machine without AWS never sends a request to the metadata
// address.
func awsCredentialsPresent(getenv func(string) string) bool {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		if getenv(k) != "" {
			return true
		}
	}
	if strings.EqualFold(getenv("AWS_EC2_METADATA_DISABLED"), "false") {
		return true
	}
	home := getenv("HOME")
	for _, f := range []struct{ env, def string }{{"AWS_SHARED_CREDENTIALS_FILE", "credentials"}, {"AWS_CONFIG_FILE", "config"}} {
		path := getenv(f.env)
		if path == "" && home != "" {
			path = filepath.Join(home, ".aws", f.def)
		}
		if path == "" || path == os.DevNull {
			continue
		}
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
			return true
		}
	}
	return false
}

// callerIdentity asks STS who the default credential chain is (AWS STS API
// Reference, "GetCallerIdentity": no permission is needed to call it). It
// returns the identity, or why it is unknown; never a credential, and
// never the SDK's error text (which may name endpoints and profiles), only
// its code.
func callerIdentity(ctx context.Context, timeout time.Duration) (*journal.AWSIdentity, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	late := fmt.Sprintf("STS did not answer within %s", timeout)
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, "the AWS configuration could not be loaded"
	}
	if cfg.Credentials == nil {
		return nil, "no AWS credentials"
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Sprintf("no AWS credentials within %s", timeout)
		}
		return nil, "no AWS credentials"
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // STS's global endpoint
	}
	cfg.APIOptions = append(cfg.APIOptions, awsmiddleware.AddUserAgentKeyValue(ApproverUserAgentKey, "sts"))
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.RetryMaxAttempts = 1 }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		var ae smithy.APIError
		switch {
		case ctx.Err() != nil:
			return nil, late
		case errors.As(err, &ae):
			return nil, "STS refused: " + ae.ErrorCode()
		}
		return nil, "STS could not be reached"
	}
	return &journal.AWSIdentity{ARN: aws.ToString(out.Arn), Account: aws.ToString(out.Account), UserID: aws.ToString(out.UserId)}, ""
}

// ciIdentity is the CI run this process belongs to, from the variables
// the CI sets: GitHub Actions (GitHub Docs, "Store information in
// variables", "Default environment variables": GITHUB_ACTIONS, GITHUB_ACTOR,
// GITHUB_TRIGGERING_ACTOR, GITHUB_WORKFLOW, GITHUB_RUN_ID,
// GITHUB_RUN_ATTEMPT, GITHUB_REPOSITORY, GITHUB_SERVER_URL), GitLab CI
// (GitLab Docs, "Predefined CI/CD variables reference": GITLAB_CI,
// GITLAB_USER_LOGIN, CI_JOB_NAME, CI_PIPELINE_ID, CI_PROJECT_PATH,
// CI_PIPELINE_URL), or any CI setting CI=true. nil outside CI.
func ciIdentity(getenv func(string) string) *journal.CIIdentity {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		c := &journal.CIIdentity{System: "github-actions", Actor: getenv("GITHUB_ACTOR"), Workflow: getenv("GITHUB_WORKFLOW"),
			RunID: getenv("GITHUB_RUN_ID"), Repository: getenv("GITHUB_REPOSITORY")}
		if t := getenv("GITHUB_TRIGGERING_ACTOR"); t != "" && t != c.Actor {
			c.Actor += " (re-run by " + t + ")"
		}
		if a := getenv("GITHUB_RUN_ATTEMPT"); a != "" && a != "1" && c.RunID != "" {
			c.RunID += " attempt " + a
		}
		if srv, id := getenv("GITHUB_SERVER_URL"), getenv("GITHUB_RUN_ID"); srv != "" && c.Repository != "" && id != "" {
			c.URL = strings.TrimRight(srv, "/") + "/" + c.Repository + "/actions/runs/" + id
		}
		return c
	case getenv("GITLAB_CI") == "true":
		return &journal.CIIdentity{System: "gitlab-ci", Actor: getenv("GITLAB_USER_LOGIN"), Workflow: getenv("CI_JOB_NAME"),
			RunID: getenv("CI_PIPELINE_ID"), Repository: getenv("CI_PROJECT_PATH"), URL: getenv("CI_PIPELINE_URL")}
	case strings.EqualFold(getenv("CI"), "true"):
		return &journal.CIIdentity{System: "ci"}
	}
	return nil
}
