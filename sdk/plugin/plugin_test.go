package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

type greetParams struct {
	Name  string        `json:"name" required:"true" doc:"who to greet"`
	Wait  time.Duration `json:"wait" default:"10ms"`
	Mood  string        `json:"mood" enum:"calm,loud" default:"calm"`
	Token string        `json:"token" secret:"true"`
	Fail  string        `json:"fail" enum:",retryable,fatal,panic"`
}

type greetOutputs struct {
	Greeting string        `json:"greeting"`
	Waited   time.Duration `json:"waited"`
}

func greet(ctx context.Context, req plugin.Request[greetParams]) (greetOutputs, error) {
	req.Progress("waiting", "for", req.Params.Wait.String())
	switch req.Params.Fail {
	case "retryable":
		return greetOutputs{}, plugin.RetryableCode("Throttled", "slow down (attempt %d)", req.Attempt)
	case "fatal":
		return greetOutputs{}, errors.New("no such person")
	case "panic":
		panic("boom")
	}
	select {
	case <-time.After(req.Params.Wait):
	case <-ctx.Done():
		return greetOutputs{}, ctx.Err()
	}
	g := "hello, " + req.Params.Name
	if req.Params.Mood == "loud" {
		g = strings.ToUpper(g)
	}
	return greetOutputs{Greeting: g, Waited: req.Params.Wait}, nil
}

func greetAction() plugin.Action {
	return plugin.NewAction("greet", greet).
		Doc("Greets someone.").
		Idempotent().
		ControlPlane(plugin.ControlPlane{Service: "Greeting service", Region: "us-east-1"}).
		Plan(func(ctx context.Context, req plugin.PlanRequest[greetParams]) (plugin.Plan, error) {
			ch := plugin.Change{Resource: "greeting", Before: nil, After: "hello, " + req.Params.Name, Kind: plugin.ChangeCreate}
			if req.Unknown("/name") {
				ch.After, ch.AfterUnknown = nil, true
			}
			return plugin.Plan{Summary: "greet", Changes: []plugin.Change{ch}}, nil
		}).
		Validate(func(req plugin.ValidateRequest[greetParams]) []plugin.Diagnostic {
			if !req.Unknown("/name") && req.Params.Name == "nobody" {
				return []plugin.Diagnostic{plugin.Errorf("/name", "cannot greet nobody")}
			}
			return nil
		})
}

func start(t *testing.T) *plugintest.Client {
	return plugintest.Start(t, plugin.Info{Name: "hello", Version: "0.1.0"}, greetAction())
}

func TestApplyDecodesDefaultsAndDurations(t *testing.T) {
	c := start(t)
	out, err := c.Apply(plugintest.Context(t), "greet", map[string]any{"name": "ops", "mood": "loud"})
	if err != nil {
		t.Fatal(err)
	}
	if out["greeting"] != "HELLO, OPS" || out["waited"] != "10ms" {
		t.Fatalf("outputs = %v", out)
	}
	p := c.Progress()
	if len(p) != 1 || p[0].Message != "waiting" || p[0].Fields["for"] != "10ms" {
		t.Fatalf("progress = %+v", p)
	}
}

func TestApplyErrors(t *testing.T) {
	c := start(t)
	ctx := plugintest.Context(t)
	cases := map[string]struct {
		params    map[string]any
		retryable bool
		code      string
		contains  string
	}{
		"retryable":     {map[string]any{"name": "a", "fail": "retryable"}, true, "Throttled", "slow down (attempt 1)"},
		"fatal":         {map[string]any{"name": "a", "fail": "fatal"}, false, "", "no such person"},
		"panic":         {map[string]any{"name": "a", "fail": "panic"}, false, "PluginPanic", "panicked in action greet: boom"},
		"missing name":  {map[string]any{}, false, "InvalidParams", `missing required property "name"`},
		"unknown field": {map[string]any{"name": "a", "nmae": "b"}, false, "InvalidParams", `unknown property "nmae"`},
		"bad duration":  {map[string]any{"name": "a", "wait": "soon"}, false, "InvalidParams", "not a duration"},
		"deadline":      {map[string]any{"name": "a", "wait": "1h"}, true, "Timeout", "deadline"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			call := plugin.ApplyCall{RunID: "r", StepID: "s", Action: "greet", Attempt: 1, Params: tc.params}
			if name == "deadline" {
				call.Deadline = time.Now().Add(200 * time.Millisecond)
			}
			_, err := c.ApplyCall(ctx, call)
			var pe *plugin.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *plugin.Error", err, err)
			}
			if pe.Retryable != tc.retryable || pe.Code != tc.code || !strings.Contains(pe.Message, tc.contains) {
				t.Fatalf("err = %+v", pe)
			}
		})
	}
}

func TestUnknownAction(t *testing.T) {
	c := start(t)
	_, err := c.Apply(plugintest.Context(t), "wave", nil)
	if err == nil || !strings.Contains(err.Error(), `no action "wave"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestDescribeCarriesSchemas(t *testing.T) {
	c := start(t)
	d, err := c.Describe(plugintest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := d.Action("greet")
	if !ok || !a.Idempotent || !a.SupportsPlan || a.ReadOnly || a.Doc != "Greets someone." {
		t.Fatalf("spec = %+v", a)
	}
	if !a.Params.IsRequired("name") || !a.Params.Closed || a.Params.Properties["wait"].Format != "duration" {
		t.Fatalf("params schema = %+v", a.Params)
	}
	if got := a.Params.SecretPaths(); len(got) != 1 || got[0] != "/token" {
		t.Fatalf("secret paths = %v", got)
	}
	if fmt.Sprint(a.Params.Properties["mood"].Enum) != "[calm loud]" {
		t.Fatalf("enum = %v", a.Params.Properties["mood"].Enum)
	}
	if fmt.Sprint(a.ControlPlanes) != "[{Greeting service us-east-1}]" {
		t.Fatalf("control planes = %+v", a.ControlPlanes)
	}
}

func TestValidateAndPlan(t *testing.T) {
	c := start(t)
	ctx := plugintest.Context(t)
	diags, err := c.Validate(ctx, "greet", map[string]any{"name": "nobody"}, nil)
	if err != nil || len(diags) != 1 || diags[0].Path != "/name" {
		t.Fatalf("diags = %+v, err = %v", diags, err)
	}
	diags, err = c.Validate(ctx, "greet", map[string]any{"name": nil}, []string{"/name"})
	if err != nil || len(diags) != 0 {
		t.Fatalf("unknown name: diags = %+v, err = %v", diags, err)
	}
	diags, _ = c.Validate(ctx, "greet", map[string]any{"name": 3, "mood": "angry"}, nil)
	if len(diags) != 2 {
		t.Fatalf("diags = %+v", diags)
	}
	plan, err := c.Plan(ctx, plugin.PlanCall{Action: "greet", Params: map[string]any{"name": nil}, Unknown: []string{"/name"}})
	if err != nil || len(plan.Changes) != 1 || !plan.Changes[0].AfterUnknown {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}
}

func TestDescribeSubcommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := plugin.ServeForTest(plugin.Info{Name: "hello", Version: "0.1.0"}, []plugin.Action{greetAction()}, []string{"describe"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var d plugin.Description
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "hello" || d.ProtocolVersion != plugin.ProtocolVersion || len(d.Actions) != 1 {
		t.Fatalf("description = %+v", d)
	}
	if fmt.Sprint(d.Actions[0].ControlPlanes) != "[{Greeting service us-east-1}]" {
		t.Fatalf("describe: control planes = %+v", d.Actions[0].ControlPlanes)
	}
	if code := plugin.ServeForTest(plugin.Info{Name: "hello"}, nil, []string{"bogus"}, &out, &errb); code != 2 {
		t.Fatalf("bogus argument: exit %d", code)
	}
}

func TestDuplicateActionRejected(t *testing.T) {
	if _, err := plugin.NewServer(plugin.Info{Name: "x"}, greetAction(), greetAction()); err == nil {
		t.Fatal("want error for a duplicate action")
	}
}

func TestNilParamsAreAnEmptyObject(t *testing.T) {
	c := plugintest.Start(t, plugin.Info{Name: "x"}, plugin.NewAction("noop", func(context.Context, plugin.Request[struct{}]) (struct{}, error) {
		return struct{}{}, nil
	}))
	if _, err := c.Apply(plugintest.Context(t), "noop", nil); err != nil {
		t.Fatal(err)
	}
}
