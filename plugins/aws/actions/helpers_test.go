package actions

import (
	"context"

	"errors"
	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

const (
	primaryRegion = "eu-west-1"
	drRegion      = "eu-west-3"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// start serves the plugin's actions over gRPC, against the package's
// shared emulator (tests name their resources with awstest.Name).
func start(t *testing.T) (*plugintest.Client, *awstest.Env) {
	t.Helper()
	env := awstest.Shared(t)
	return plugintest.Start(t, plugin.Info{Name: "aws", Version: "test"}, All()...), env
}

// actionError asserts that err is the action's own failure and returns it.
func actionError(t *testing.T, err error) *plugin.Error {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want an action error", err, err)
	}
	return pe
}

// wantFatal asserts a fatal action error whose message has every part.
func wantFatal(t *testing.T, err error, parts ...string) *plugin.Error {
	t.Helper()
	pe := actionError(t, err)
	if pe.Retryable {
		t.Fatalf("err = %+v, want fatal", pe)
	}
	for _, p := range parts {
		if !strings.Contains(pe.Message, p) {
			t.Fatalf("error %q does not mention %q", pe.Message, p)
		}
	}
	return pe
}

// progressMessages lists the messages of the progress events received.
func progressMessages(c *plugintest.Client) []string {
	var out []string
	for _, p := range c.Progress() {
		out = append(out, p.Message)
	}
	return out
}

func hasMessage(msgs []string, part string) bool {
	for _, m := range msgs {
		if strings.Contains(m, part) {
			return true
		}
	}
	return false
}

func tctx(t *testing.T) context.Context { return plugintest.Context(t) }

func awsRegion(t *testing.T, arn string) string {
	t.Helper()
	r, err := awscommon.RegionOfARN(arn)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
