package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// interleaved parses flags that may come after positional arguments
// ("blackhole eu-west-1 --mode close"), returning the positional ones.
func interleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdFault(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fault", flag.ContinueOnError)
	dir := dirFlag(fs)
	region := fs.String("region", "", "only requests signed for this region")
	service := fs.String("service", "", "only this service (signing name: rds, ecs, autoscaling, route53, s3, s3control, ...)")
	operation := fs.String("operation", "", "only this operation (UpdateService, SwitchoverGlobalCluster, ...)")
	jitter := fs.Duration("jitter", 0, "latency: random extra up to this")
	kind := fs.String("kind", string(faultproxy.Throttle), "error kind: throttle, 5xx, 503")
	after := fs.Bool("after-forward", false, "errors: let the call reach the emulator, then lose its answer")
	limit := fs.Int("limit", 0, "apply to this many requests only (0: no limit)")
	mode := fs.String("mode", faultproxy.Hang, "blackhole: hang (hold until the client gives up) or close")
	hold := fs.Duration("hold", 0, "blackhole hang: close after this long (0: until the client gives up)")
	pos, err := interleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("fault latency|errors|fail|blackhole|list|remove|clear|seed|log|count")
	}
	st, err := loadState(*dir)
	if err != nil {
		return err
	}
	c := faultproxy.NewClient(st.ProxyURL)
	filter := faultproxy.Filter{Region: *region, Service: *service, Operation: *operation}
	base := faultproxy.Rule{Region: *region, Service: *service, Operation: *operation, Limit: *limit, AfterForward: *after}
	add := func(r faultproxy.Rule) error {
		id, err := c.AddRule(ctx, r)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, id)
		return nil
	}
	verb, rest := pos[0], pos[1:]
	need := func(n int, what string) error {
		if len(rest) < n {
			return usageErr("fault %s %s", verb, what)
		}
		return nil
	}
	switch verb {
	case "latency":
		if err := need(1, "DURATION"); err != nil {
			return err
		}
		d, err := time.ParseDuration(rest[0])
		if err != nil {
			return usageErr("latency %q: %v", rest[0], err)
		}
		base.Latency, base.Jitter = faultproxy.Duration(d), faultproxy.Duration(*jitter)
		return add(base)
	case "errors":
		if err := need(1, "RATE (0..1)"); err != nil {
			return err
		}
		rate, err := strconv.ParseFloat(rest[0], 64)
		if err != nil {
			return usageErr("rate %q: %v", rest[0], err)
		}
		base.ErrorRate, base.Error = rate, faultproxy.ErrorKind(*kind)
		return add(base)
	case "fail":
		if err := need(1, "SERVICE [OPERATION]"); err != nil {
			return err
		}
		base.Service = rest[0]
		if len(rest) > 1 {
			base.Operation = rest[1]
		}
		base.ErrorRate, base.Error = 1, faultproxy.ErrorKind(*kind)
		return add(base)
	case "blackhole":
		if err := need(1, "REGION"); err != nil {
			return err
		}
		base.Region, base.Blackhole, base.Hold = rest[0], *mode, faultproxy.Duration(*hold)
		return add(base)
	case "list":
		rules, err := c.Rules(ctx)
		if err != nil {
			return err
		}
		return printJSON(out, rules)
	case "remove":
		if err := need(1, "ID"); err != nil {
			return err
		}
		return c.RemoveRule(ctx, rest[0])
	case "clear":
		return c.Clear(ctx)
	case "seed":
		if err := need(1, "N"); err != nil {
			return err
		}
		n, err := strconv.ParseUint(rest[0], 10, 64)
		if err != nil {
			return usageErr("seed %q: %v", rest[0], err)
		}
		return c.Seed(ctx, n)
	case "log":
		entries, err := c.Log(ctx, filter)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TIME\tREGION\tSERVICE\tOPERATION\tSTATUS\tFORWARDED\tFAULT")
		for _, e := range entries {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%v\t%s\n", e.Time.Format("15:04:05.000"), e.Region, e.Service, e.Operation, e.Status, e.Forwarded, e.Fault)
		}
		return w.Flush()
	case "count":
		n, err := c.Count(ctx, filter)
		if err != nil {
			return err
		}
		return printJSON(out, n)
	}
	return usageErr("unknown fault command %q", verb)
}

func cmdTiming(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("timing", flag.ContinueOnError)
	dir := dirFlag(fs)
	pos, err := interleaved(fs, args)
	if err != nil {
		return err
	}
	_, e, err := connect(ctx, *dir)
	if err != nil {
		return err
	}
	verb := "show"
	if len(pos) > 0 {
		verb, pos = pos[0], pos[1:]
	}
	switch verb {
	case "show":
	case "preset":
		if len(pos) != 1 {
			return usageErr("timing preset ci|instant|realistic")
		}
		if err := e.SetPreset(ctx, pos[0]); err != nil {
			return err
		}
	case "set":
		if len(pos) == 0 {
			return usageErr("timing set NAME=SECONDS...")
		}
		t := emulator.Timing{}
		for _, kv := range pos {
			k, v, ok := strings.Cut(kv, "=")
			secs, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil {
				return usageErr("timing set: %q is not NAME=SECONDS", kv)
			}
			t[k] = secs
		}
		if err := e.SetTiming(ctx, t); err != nil {
			return err
		}
	case "advance":
		if len(pos) != 1 {
			return usageErr("timing advance DURATION")
		}
		d, err := time.ParseDuration(pos[0])
		if err != nil {
			return usageErr("advance %q: %v", pos[0], err)
		}
		if err := e.Advance(ctx, d); err != nil {
			return err
		}
		fmt.Fprintf(out, "clock advanced by %s\n", d)
		return nil
	default:
		return usageErr("unknown timing command %q", verb)
	}
	t, err := e.Timing(ctx)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%gs\n", k, t[k])
	}
	return w.Flush()
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
