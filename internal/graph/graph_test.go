package graph

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/runbook"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// env is the expression environment the test runbooks compile against.
func env() expr.Env {
	outputs := expr.ObjectType(map[string]expr.Type{"stable": expr.BoolType})
	return expr.Env{
		Inputs: map[string]expr.Type{"mode": expr.StringType, "workers": expr.StringType, "note": expr.StringType, "primary_region": expr.StringType},
		Steps: map[string]expr.Type{
			"aurora_status": expr.ObjectType(map[string]expr.Type{"writer_region": expr.StringType, "replication_lag_ms": expr.NumberType}),
			"services_dr":   outputs,
		},
		Outputs: &outputs,
	}
}

func cond(t *testing.T, src string) *expr.Program {
	t.Helper()
	p, err := expr.Compile(src, env(), expr.Bool)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return p
}

func with(t *testing.T, kv ...string) *expr.Value {
	t.Helper()
	var keys []string
	var vals []*expr.Value
	for i := 0; i < len(kv); i += 2 {
		keys = append(keys, kv[i])
		if expr.HasTemplate(kv[i+1]) {
			tmpl, errs := expr.CompileTemplate(kv[i+1], env())
			if len(errs) > 0 {
				t.Fatalf("template %q: %v", kv[i+1], errs[0])
			}
			vals = append(vals, expr.FromTemplate(tmpl))
		} else {
			vals = append(vals, expr.Static(kv[i+1]))
		}
	}
	return expr.Mapping(keys, vals)
}

func action(id, name, uses string) *runbook.Step {
	plugin, act, _ := strings.Cut(uses, ".")
	return &runbook.Step{ID: id, Name: name, Uses: uses, Plugin: plugin, Action: act}
}

func rollback(uses string) *runbook.Rollback {
	plugin, act, _ := strings.Cut(uses, ".")
	return &runbook.Rollback{Uses: uses, Plugin: plugin, Action: act}
}

// failover is shaped like runbooks/failover.yaml: preflight checks in
// parallel, an approval, the database (planned or unplanned), services,
// traffic and workers side by side, cleanup and the notice.
func failover(t *testing.T) *runbook.Runbook {
	approve := action("approve", "Confirm the switchover", "core.approve")
	approve.With = with(t, "message", "Writer is in ${{ steps.aurora_status.outputs.writer_region }} (lag ${{ steps.aurora_status.outputs.replication_lag_ms }} ms). Switch over?")

	dbFailover := action("db_failover", "Force the DR cluster writable", "aws.aurora_global_failover")
	dbFailover.If = cond(t, `inputs.mode == "unplanned"`)
	db := action("db", "Switch the Aurora writer to the DR region", "aws.aurora_global_switchover")
	db.If = cond(t, `inputs.mode == "planned"`)
	db.Rollback = rollback("aws.aurora_global_switchover")

	services := action("services_dr", "Start the DR services", "aws.ecs_services")
	services.Until = &runbook.Until{Condition: cond(t, "outputs.stable")}
	services.Rollback = rollback("aws.ecs_services")

	dnsServer := action("dns_server", "Point the hostname at the DR load balancer", "dns.route53_record")
	dnsServer.Rollback = rollback("dns.route53_record")
	dnsIot := action("dns_iot", "Point the IoT broker domain at the DR region", "dns.route53_record")
	dnsIot.Rollback = rollback("dns.route53_record")
	asg := action("workers_asg", "Replace the worker instances", "aws.asg_cycle")
	asg.If = cond(t, `inputs.workers == "asg"`)
	pool := action("workers_pool", "Cycle the worker pool", "spacelift.worker_pool_cycle")
	pool.If = cond(t, `inputs.workers == "pool"`)

	stop := action("stop_primary", "Stop the services in the old primary", "aws.ecs_services")
	stop.ContinueOnError = true

	return &runbook.Runbook{
		Name:        "spacelift-failover",
		Description: "Fail Spacelift Self-Hosted over to the DR region.",
		OnFailure:   runbook.OnFailureRollback,
		Steps: []*runbook.Step{
			{ID: "preflight", Name: "Preflight checks", Parallel: []*runbook.Step{
				action("aurora_status", "Read the global cluster", "aws.aurora_global_status"),
				action("s3_replication", "Check bucket replication", "aws.s3_replication_check"),
			}},
			approve,
			dbFailover,
			db,
			services,
			{ID: "switch", Name: "Move traffic and workers", Parallel: []*runbook.Step{dnsServer, dnsIot, asg, pool}},
			stop,
			action("settle", "", "core.sleep"),
			action("notify", "Cookie-invalidation notice", "notify.cookie_invalidation_notice"),
		},
	}
}

// tricky has nested parallel groups, a conditional group, max_parallel,
// on_failure: stop, and text full of characters both languages treat
// specially.
func tricky(t *testing.T) *runbook.Runbook {
	inner := &runbook.Step{ID: "end", Name: `inner "quoted" <group>`, MaxParallel: 2, Parallel: []*runbook.Step{
		action("graph", `a|b #1 & c\d`, "x.y"),
		action("node", "`tick` {brace} [bracket] (paren)", "x.z"),
	}}
	inner.If = cond(t, `inputs.note != "" || inputs.primary_region in ["eu-west-1", "eu-west-2"]`)
	gate := action("gate", "", "core.approve")
	gate.With = with(t, "message", `Proceed with "${{ inputs.note }}"? <yes|no>`)
	return &runbook.Runbook{
		Name:      `odd "name"`,
		OnFailure: runbook.OnFailureStop,
		Steps: []*runbook.Step{
			{ID: "outer", Parallel: []*runbook.Step{inner, action("solo", "", "x.w")}},
			gate,
			action("subgraph", "last", "x.v"),
		},
	}
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got; go test -update to accept):\n%s", path, diff)
	}
}

func runbooks(t *testing.T) map[string]*runbook.Runbook {
	return map[string]*runbook.Runbook{"failover": failover(t), "tricky": tricky(t)}
}

func TestGolden(t *testing.T) {
	for name, rb := range runbooks(t) {
		var m, d bytes.Buffer
		if err := Mermaid(&m, rb); err != nil {
			t.Fatal(err)
		}
		if err := Dot(&d, rb); err != nil {
			t.Fatal(err)
		}
		golden(t, name+".mmd", m.Bytes())
		golden(t, name+".dot", d.Bytes())
	}
}

var (
	mmNode     = regexp.MustCompile(`^\s*([a-z]_[a-z0-9_]*|n_start|n_end)(\(\("[^"]*"\)\)|\["[^"]*"\]|\("[^"]*"\)|\{\{"[^"]*"\}\})(:::[a-z]+)?$`)
	mmEdge     = regexp.MustCompile(`^\s*([a-z]_[a-z0-9_]+) (-->|-\.->)(\|"[^"]*"\|)? ([a-z]_[a-z0-9_]+)$`)
	mmSubgraph = regexp.MustCompile(`^\s*subgraph (g_[a-z0-9_]+) \["[^"]*"\]$`)
	mmOther    = regexp.MustCompile(`^(%%.*|flowchart TD|\s*direction TB|\s*end|\s*classDef [a-z]+ [a-z0-9:#,\- ]+)$`)
)

// mermaidEdges checks every line of a Mermaid flowchart against the small
// grammar this package writes (so an unescaped quote or a stray keyword
// shows up as a line that does not parse), checks that subgraphs are
// balanced and edges join declared nodes, and returns the edges.
func mermaidEdges(t *testing.T, src string) map[string]string {
	t.Helper()
	declared := map[string]string{}
	edges := map[string]string{}
	open := 0
	for i, line := range strings.Split(strings.TrimSuffix(src, "\n"), "\n") {
		switch {
		case mmSubgraph.MatchString(line):
			open++
		case strings.TrimSpace(line) == "end":
			open--
			if open < 0 {
				t.Errorf("line %d: end without subgraph", i+1)
			}
		case mmOther.MatchString(line):
		case mmNode.MatchString(line):
			m := mmNode.FindStringSubmatch(line)
			declared[m[1]] = m[2]
		case mmEdge.MatchString(line):
			m := mmEdge.FindStringSubmatch(line)
			for _, id := range []string{m[1], m[4]} {
				if _, ok := declared[id]; !ok {
					t.Errorf("line %d: edge to undeclared node %s", i+1, id)
				}
			}
			edges[m[1]+" "+m[2]+" "+m[4]] = strings.Trim(m[3], `|"`)
		default:
			t.Errorf("line %d does not parse: %q", i+1, line)
		}
	}
	if open != 0 {
		t.Errorf("%d subgraphs left open", open)
	}
	return edges
}

func TestMermaidStructure(t *testing.T) {
	var b bytes.Buffer
	if err := Mermaid(&b, failover(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	edges := mermaidEdges(t, out)
	want := map[string]string{
		"n_start --> f_preflight":          "",
		"f_preflight --> s_aurora_status":  "",
		"f_preflight --> s_s3_replication": "",
		"s_aurora_status --> j_preflight":  "",
		"s_s3_replication --> j_preflight": "",
		"j_preflight --> s_approve":        "",
		"s_approve --> s_db_failover":      "if inputs.mode == #34;unplanned#34;",
		"s_db_failover --> s_db":           "if inputs.mode == #34;planned#34;",
		"s_db -.-> r_db":                   "rollback",
		"s_db --> s_services_dr":           "",
		"s_services_dr -.-> r_services_dr": "rollback",
		"s_services_dr --> f_switch":       "",
		"f_switch --> s_dns_server":        "",
		"f_switch --> s_dns_iot":           "",
		"f_switch --> s_workers_asg":       "if inputs.workers == #34;asg#34;",
		"f_switch --> s_workers_pool":      "if inputs.workers == #34;pool#34;",
		"s_dns_server -.-> r_dns_server":   "rollback",
		"s_dns_iot -.-> r_dns_iot":         "rollback",
		"s_dns_server --> j_switch":        "",
		"s_dns_iot --> j_switch":           "",
		"s_workers_asg --> j_switch":       "",
		"s_workers_pool --> j_switch":      "",
		"j_switch --> s_stop_primary":      "",
		"s_stop_primary --> s_settle":      "",
		"s_settle --> s_notify":            "",
		"s_notify --> n_end":               "",
	}
	if diff := cmp.Diff(want, edges); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	for _, want := range []string{
		`s_approve{{"approve<br/>Confirm the switchover<br/>core.approve<br/>asks: Writer is in<br/>${{ steps.aurora_status.outputs.writer_region }} (lag<br/>${{ steps.aurora_status.outputs.replication_lag_ms }} ms).<br/>Switch over?"}}:::approval`,
		`s_settle("settle<br/>core.sleep"):::builtin`,
		`r_db["rollback db<br/>aws.aurora_global_switchover"]:::rollback`,
		`s_services_dr["services_dr<br/>Start the DR services<br/>aws.ecs_services<br/>until: outputs.stable"]`,
		`s_stop_primary["stop_primary<br/>Stop the services in the old primary<br/>aws.ecs_services<br/>continues on error"]`,
		`subgraph g_switch ["switch: Move traffic and workers (parallel)"]`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Mermaid lacks %s", want)
		}
	}
}

func TestMermaidEscapes(t *testing.T) {
	var b bytes.Buffer
	if err := Mermaid(&b, tricky(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	edges := mermaidEdges(t, out)
	if got := edges["f_outer --> f_end"]; got != `if inputs.note != #34;#34; #124;#124; inputs.primary_region in [#34;eu-west-1#34;, #34;eu-west-2#34;]` {
		t.Errorf("conditional group edge label = %q", got)
	}
	for _, want := range []string{
		`subgraph g_end ["end: inner #34;quoted#34; #60;group#62; (parallel, at most 2 at a time)"]`,
		`s_graph["graph<br/>a#124;b #35;1 #38; c\d<br/>x.y"]`,
		`s_node["node<br/>#96;tick#96; {brace} [bracket] (paren)<br/>x.z"]`,
		`asks: Proceed with #34;${{ inputs.note }}#34;? #60;yes#124;no#62;`,
		`%% on_failure: stop: the rollbacks (dashed) are not run automatically.`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Mermaid lacks %s\n%s", want, out)
		}
	}
}

// Graphviz itself parses and lays out the DOT output. Skipped when dot is
// not installed, unless CI_REQUIRE_GRAPHVIZ is set.
func TestDotRendersWithGraphviz(t *testing.T) {
	bin, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("CI_REQUIRE_GRAPHVIZ") != "" {
			t.Fatal("CI_REQUIRE_GRAPHVIZ is set but graphviz is not installed (apt-get install -y graphviz)")
		}
		t.Skip("graphviz is not installed (apt-get install -y graphviz); set CI_REQUIRE_GRAPHVIZ to make this a failure")
	}
	for name, rb := range runbooks(t) {
		var b bytes.Buffer
		if err := Dot(&b, rb); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, bin, "-Tsvg")
		cmd.Stdin = &b
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("%s: dot -Tsvg: %v\n%s", name, err, stderr.String())
		}
		svg := stdout.String()
		// Every step is a node, every group a cluster, rollbacks dashed.
		rb.Walk(func(s *runbook.Step) {
			id := stepID(s.ID)
			if s.IsGroup() {
				id = "cluster_" + clusterID(s.ID)
			}
			if !strings.Contains(svg, "<title>"+id+"</title>") {
				t.Errorf("%s: graphviz output has no %s", name, id)
			}
		})
		if name == "failover" {
			if n := strings.Count(svg, `stroke-dasharray="5,2"`); n < 4 {
				t.Errorf("failover: %d dashed shapes, want the 4 rollback edges and nodes", n)
			}
			if !strings.Contains(svg, "<title>s_db&#45;&gt;r_db</title>") {
				t.Errorf("failover: no rollback edge db -> its rollback")
			}
		}
	}
}

func TestDotQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:      `"plain"`,
		`say "hi"`:   `"say \"hi\""`,
		`a\lb`:       `"a\\lb"`,
		"two\nlines": `"two\nlines"`,
		`\"`:         `"\\\""`,
	} {
		if got := dotQuote(in); got != want {
			t.Errorf("dotQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestNoRunbook(t *testing.T) {
	if err := Mermaid(&bytes.Buffer{}, nil); err == nil {
		t.Error("Mermaid(nil) succeeded")
	}
	if err := Dot(&bytes.Buffer{}, &runbook.Runbook{Steps: []*runbook.Step{{}}}); err == nil {
		t.Error("Dot with a step without id succeeded")
	}
}

func TestWrap(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want []string
	}{
		{"short", 3, []string{"short"}},
		{"one two three four five six", 2, []string{"one two three", "four five six"}},
		{"one two three four five six seven", 2, []string{"one two three", "four five six …"}},
		{"averyveryverylongwordindeed x", 2, []string{"averyveryverylongwordindeed", "x"}},
		{"is ${{ a.b + c }} ok", 3, []string{"is", "${{ a.b + c }}", "ok"}},
		{"${{ x }}${{ y }} z", 3, []string{"${{ x }}${{ y }}", "z"}},
		{"a ${{ x y z w v u t", 3, []string{"a", "${{ x y z w v u t"}},
	} {
		if diff := cmp.Diff(c.want, wrap(c.in, 13, c.n)); diff != "" {
			t.Errorf("wrap(%q) (-want +got):\n%s", c.in, diff)
		}
	}
}
