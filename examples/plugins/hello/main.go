// Command runbook-plugin-hello greets someone: the example of docs/plugins.md.
package main

import (
	"context"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
)

type Greet struct {
	Name      string        `json:"name" required:"true" doc:"Who to greet."`
	Sleep     time.Duration `json:"sleep" doc:"Wait this long first, e.g. 30s."`
	FailTimes int           `json:"fail_times" doc:"Fail the first N attempts (retryably)."`
}

type Greeting struct {
	Greeting string `json:"greeting"`
}

func greet(ctx context.Context, req plugin.Request[Greet]) (Greeting, error) {
	req.Progress("greeting "+req.Params.Name, "attempt", req.Attempt)
	if req.Attempt <= req.Params.FailTimes {
		return Greeting{}, plugin.RetryableCode("Shy", "%s did not answer (attempt %d)", req.Params.Name, req.Attempt)
	}
	select {
	case <-time.After(req.Params.Sleep):
		return Greeting{"Hello, " + req.Params.Name + "!"}, nil
	case <-ctx.Done():
		return Greeting{}, ctx.Err()
	}
}

func main() {
	greetAction := plugin.NewAction("greet", greet).Doc("Greets someone by name.").ReadOnly()
	plugin.Serve(plugin.Info{Name: "hello", Version: "0.1.0"}, greetAction.Plan(func(_ context.Context, r plugin.PlanRequest[Greet]) (plugin.Plan, error) {
		return plugin.Plan{Summary: "greet " + r.Params.Name}, nil
	}))
}
