package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

// Installer configs shaped like the vendor's: the fields a failover
// changes (disable_services, disaster_recovery.is_dr_instance), plus
// others the plugin must leave alone, in an order that is not alphabetical.
const primaryJSON = `{
  "aws_region": "eu-west-1",
  "hostname": "spacelift.myorg.com",
  "iot_broker_endpoint": "worker-iot.spacelift.myorg.com",
  "disable_services": false,
  "website_domain": "spacelift.myorg.com",
  "tracing": {"enabled": true, "sample_rate": 1.0e-1},
  "disaster_recovery": {
    "is_dr_instance": false,
    "replica_region": "eu-west-3",
    "encryption_primary_key_arn": "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234",
    "s3_bucket_replication": {
      "enabled": true,
      "replica_kms_key_arn": "arn:aws:kms:eu-west-3:111122223333:key/mrk-1234",
      "states_bucket_arn": "arn:aws:s3:::spacelift-states-dr"
    }
  },
  "note": "braces } and \"quotes\" in strings: {\"disable_services\": true}",
  "unicode": "caf\u00e9"
}
`

const drJSON = `{
    "aws_region": "eu-west-3",
    "disable_services": true,
    "hostname": "spacelift.myorg.com",
    "disaster_recovery": {
        "replica_region": "eu-west-1",
        "is_dr_instance": true
    }
}`

type configDir struct {
	dir, primary, dr string
}

func writeConfigs(t *testing.T, primary, dr string) configDir {
	t.Helper()
	d := configDir{dir: t.TempDir()}
	d.primary = filepath.Join(d.dir, "config.json")
	d.dr = filepath.Join(d.dir, "config.dr.json")
	if err := os.WriteFile(d.primary, []byte(primary), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.dr, []byte(dr), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d configDir) params(active string, permanent bool) map[string]any {
	return map[string]any{"primary_config": d.primary, "dr_config": d.dr, "active_region": active, "permanent": permanent}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// entries lists the directory, so tests can see every file written.
func (d configDir) entries(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// replaceOnce is strings.Replace that insists old occurs exactly once, so
// an expected document is built from the input by the intended edits only.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%q occurs %d times", old, strings.Count(s, old))
	}
	return strings.Replace(s, old, new, 1)
}

func TestFailoverUpdatesOnlyTheFlags(t *testing.T) {
	d := writeConfigs(t, primaryJSON, drJSON)
	h := start(t, installerConfigAction())
	out, err := h.apply(plugintest.Context(t), "installer_config_update", d.params("eu-west-3", false))
	if err != nil {
		t.Fatal(err)
	}
	wantPrimary := replaceOnce(t, primaryJSON, `"disable_services": false,`, `"disable_services": true,`)
	wantDR := replaceOnce(t, drJSON, `"disable_services": true,`, `"disable_services": false,`)
	if got := read(t, d.primary); got != wantPrimary {
		t.Errorf("config.json:\n%s\nwant:\n%s", got, wantPrimary)
	}
	if got := read(t, d.dr); got != wantDR {
		t.Errorf("config.dr.json:\n%s\nwant:\n%s", got, wantDR)
	}
	// Backups hold the old content and keep the files' permissions.
	backups, _ := out["backup_paths"].([]any)
	if len(backups) != 2 {
		t.Fatalf("backup_paths = %v", out["backup_paths"])
	}
	for i, want := range []struct {
		orig string
		mode os.FileMode
	}{{primaryJSON, 0o640}, {drJSON, 0o600}} {
		b := backups[i].(string)
		if filepath.Dir(b) != d.dir || read(t, b) != want.orig {
			t.Errorf("backup %s does not hold the original", b)
		}
		st, err := os.Stat(b)
		if err != nil || st.Mode().Perm() != want.mode {
			t.Errorf("backup %s mode = %v, want %v", b, st.Mode().Perm(), want.mode)
		}
	}
	for path, mode := range map[string]os.FileMode{d.primary: 0o640, d.dr: 0o600} {
		if st, _ := os.Stat(path); st.Mode().Perm() != mode {
			t.Errorf("%s mode = %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	if !strings.HasPrefix(filepath.Base(backups[0].(string)), "config.json.") || !strings.HasSuffix(backups[0].(string), ".bak") {
		t.Errorf("backup name = %s", backups[0])
	}
	files := out["files"].([]any)
	p0, p1 := files[0].(map[string]any), files[1].(map[string]any)
	if p0["role"] != "passive" || p0["region"] != "eu-west-1" || p1["role"] != "active" || p1["region"] != "eu-west-3" {
		t.Fatalf("files = %v", files)
	}
	if got := fmt.Sprint(p1["changes"]); got != "[map[after:false before:true field:disable_services]]" {
		t.Errorf("dr changes = %s", got)
	}
	if got := fmt.Sprint(p0["changes"]); got != "[map[after:true before:false field:disable_services]]" {
		t.Errorf("primary changes = %s", got)
	}
	if out["changed"] != true {
		t.Errorf("changed = %v", out["changed"])
	}
	// Nothing else was written next to the configs (no leftover temp files).
	if got := len(d.entries(t)); got != 4 {
		t.Errorf("directory holds %v", d.entries(t))
	}

	// Idempotent: a second run changes nothing and writes no backup.
	out, err = h.apply(plugintest.Context(t), "installer_config_update", d.params("eu-west-3", false))
	if err != nil {
		t.Fatal(err)
	}
	if out["changed"] != false || len(out["backup_paths"].([]any)) != 0 || len(d.entries(t)) != 4 {
		t.Fatalf("second run: outputs = %v, dir = %v", out, d.entries(t))
	}
	if read(t, d.primary) != wantPrimary || read(t, d.dr) != wantDR {
		t.Fatal("second run changed the files")
	}
}

func TestPermanentMoveSwapsIsDRInstance(t *testing.T) {
	d := writeConfigs(t, primaryJSON, drJSON)
	h := start(t, installerConfigAction())
	ctx := plugintest.Context(t)
	if _, err := h.apply(ctx, "installer_config_update", d.params("eu-west-3", true)); err != nil {
		t.Fatal(err)
	}
	wantPrimary := replaceOnce(t, primaryJSON, `"disable_services": false,`, `"disable_services": true,`)
	wantPrimary = replaceOnce(t, wantPrimary, `"is_dr_instance": false,`, `"is_dr_instance": true,`)
	wantDR := replaceOnce(t, drJSON, `"disable_services": true,`, `"disable_services": false,`)
	wantDR = replaceOnce(t, wantDR, `"is_dr_instance": true`, `"is_dr_instance": false`)
	if got := read(t, d.primary); got != wantPrimary {
		t.Errorf("config.json:\n%s\nwant:\n%s", got, wantPrimary)
	}
	if got := read(t, d.dr); got != wantDR {
		t.Errorf("config.dr.json:\n%s\nwant:\n%s", got, wantDR)
	}

	// Failing back permanently restores the original documents exactly.
	if _, err := h.apply(ctx, "installer_config_update", d.params("eu-west-1", true)); err != nil {
		t.Fatal(err)
	}
	if read(t, d.primary) != primaryJSON || read(t, d.dr) != drJSON {
		t.Fatalf("failback did not restore the originals:\n%s\n%s", read(t, d.primary), read(t, d.dr))
	}
}

func TestPassiveLeftAloneWhenAsked(t *testing.T) {
	d := writeConfigs(t, primaryJSON, drJSON)
	h := start(t, installerConfigAction())
	p := d.params("eu-west-3", false)
	p["disable_passive_services"] = false
	out, err := h.apply(plugintest.Context(t), "installer_config_update", p)
	if err != nil {
		t.Fatal(err)
	}
	if read(t, d.primary) != primaryJSON || len(out["backup_paths"].([]any)) != 1 {
		t.Fatalf("primary changed or wrong backups: %v", out)
	}
	if f := out["files"].([]any)[0].(map[string]any); f["backup"] != "" || len(f["changes"].([]any)) != 0 {
		t.Fatalf("primary result = %v", f)
	}
}

func TestMissingKeysAreInsertedInTheFileStyle(t *testing.T) {
	primary := "{\n\t\"aws_region\": \"eu-west-1\",\n\t\"disaster_recovery\": {\n\t\t\"replica_region\": \"eu-west-3\"\n\t}\n}\n"
	dr := `{"aws_region":"eu-west-3","disaster_recovery":{}}`
	d := writeConfigs(t, primary, dr)
	h := start(t, installerConfigAction())
	out, err := h.apply(plugintest.Context(t), "installer_config_update", d.params("eu-west-3", true))
	if err != nil {
		t.Fatal(err)
	}
	wantPrimary := "{\n\t\"aws_region\": \"eu-west-1\",\n\t\"disaster_recovery\": {\n\t\t\"replica_region\": \"eu-west-3\",\n\t\t\"is_dr_instance\": true\n\t},\n\t\"disable_services\": true\n}\n"
	wantDR := `{"aws_region":"eu-west-3","disaster_recovery":{"is_dr_instance": false},"disable_services":false}`
	if got := read(t, d.primary); got != wantPrimary {
		t.Errorf("config.json:\n%s\nwant:\n%s", got, wantPrimary)
	}
	if got := read(t, d.dr); got != wantDR {
		t.Errorf("config.dr.json:\n%s\nwant:\n%s", got, wantDR)
	}
	changes := out["files"].([]any)[1].(map[string]any)["changes"]
	if got := fmt.Sprint(changes); got != "[map[after:false before:<nil> field:disable_services] map[after:false before:<nil> field:disaster_recovery.is_dr_instance]]" {
		t.Errorf("changes = %s", got)
	}
}

func TestSymlinkedConfigIsUpdatedThroughTheLink(t *testing.T) {
	d := writeConfigs(t, primaryJSON, drJSON)
	link := filepath.Join(d.dir, "active-dr.json")
	if err := os.Symlink(filepath.Base(d.dr), link); err != nil {
		t.Fatal(err)
	}
	h := start(t, installerConfigAction())
	p := d.params("eu-west-3", false)
	p["dr_config"] = link
	if _, err := h.apply(plugintest.Context(t), "installer_config_update", p); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", fi, err)
	}
	if !strings.Contains(read(t, d.dr), `"disable_services": false`) {
		t.Fatalf("the link's target was not updated:\n%s", read(t, d.dr))
	}
}

func TestInstallerConfigErrorsChangeNothing(t *testing.T) {
	cases := map[string]struct {
		primary, dr string
		params      func(d configDir) map[string]any
		contains    string
	}{
		"region matches neither": {primaryJSON, drJSON, func(d configDir) map[string]any { return d.params("us-east-1", false) },
			`active_region "us-east-1" is neither`},
		"both files in one region": {primaryJSON, strings.Replace(drJSON, "eu-west-3", "eu-west-1", 1),
			func(d configDir) map[string]any { return d.params("eu-west-1", false) }, "cannot tell which one is active"},
		"invalid JSON": {primaryJSON, `{"aws_region": "eu-west-3",}`, func(d configDir) map[string]any { return d.params("eu-west-3", false) },
			"config.dr.json is not valid JSON"},
		"missing file": {primaryJSON, drJSON, func(d configDir) map[string]any {
			p := d.params("eu-west-3", false)
			p["dr_config"] = filepath.Join(d.dir, "nope.json")
			return p
		}, "nope.json: no such file or directory"},
		"no aws_region": {`{"disable_services": false}`, drJSON, func(d configDir) map[string]any { return d.params("eu-west-3", false) },
			"config.json has no aws_region"},
		"disable_services not a boolean": {primaryJSON, strings.Replace(drJSON, `"disable_services": true`, `"disable_services": "yes"`, 1),
			func(d configDir) map[string]any { return d.params("eu-west-3", false) }, `disable_services is "yes", not a boolean`},
		"permanent without disaster_recovery": {`{"aws_region": "eu-west-1", "disable_services": false}`, drJSON,
			func(d configDir) map[string]any { return d.params("eu-west-3", true) }, "has no disaster_recovery section"},
		"duplicate key": {`{"aws_region": "eu-west-1", "disable_services": false, "disable_services": true}`, drJSON,
			func(d configDir) map[string]any { return d.params("eu-west-3", false) }, `key "disable_services" appears twice`},
		"not an object": {`["aws_region"]`, drJSON, func(d configDir) map[string]any { return d.params("eu-west-3", false) }, "not a JSON object"},
		"same file twice": {primaryJSON, drJSON, func(d configDir) map[string]any {
			p := d.params("eu-west-3", false)
			p["dr_config"] = d.primary
			return p
		}, "same file"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := writeConfigs(t, tc.primary, tc.dr)
			before := d.entries(t)
			h := start(t, installerConfigAction())
			_, err := h.apply(plugintest.Context(t), "installer_config_update", tc.params(d))
			pe := pluginError(t, err)
			if pe.Retryable || !strings.Contains(pe.Message, tc.contains) {
				t.Fatalf("err = %+v, want it to contain %q", pe, tc.contains)
			}
			if read(t, d.primary) != tc.primary || read(t, d.dr) != tc.dr || fmt.Sprint(d.entries(t)) != fmt.Sprint(before) {
				t.Fatalf("a failed update changed files: %v", d.entries(t))
			}
		})
	}
}

func TestBackupDir(t *testing.T) {
	d := writeConfigs(t, primaryJSON, drJSON)
	backups := t.TempDir()
	h := start(t, installerConfigAction())
	p := d.params("eu-west-3", false)
	p["backup_dir"] = backups
	out, err := h.apply(plugintest.Context(t), "installer_config_update", p)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range out["backup_paths"].([]any) {
		if filepath.Dir(b.(string)) != backups || read(t, b.(string)) != []string{primaryJSON, drJSON}[i] {
			t.Fatalf("backup %v", b)
		}
	}
	if len(d.entries(t)) != 2 {
		t.Fatalf("backups written next to the configs: %v", d.entries(t))
	}
}

func TestBackupFailureChangesNothing(t *testing.T) {
	d := writeConfigs(t, primaryJSON, drJSON)
	h := start(t, installerConfigAction())
	p := d.params("eu-west-3", false)
	p["backup_dir"] = d.primary // a file, not a directory: creating a backup in it fails, even for root
	_, err := h.apply(plugintest.Context(t), "installer_config_update", p)
	if pe := pluginError(t, err); pe.Code != "BackupFailed" || !strings.Contains(pe.Message, "nothing was changed") {
		t.Fatalf("err = %+v", pe)
	}
	if read(t, d.primary) != primaryJSON || read(t, d.dr) != drJSON || len(d.entries(t)) != 2 {
		t.Fatalf("files changed: %v", d.entries(t))
	}
}

func TestInstallerConfigPlan(t *testing.T) {
	d := writeConfigs(t, primaryJSON, drJSON)
	h := start(t, installerConfigAction())
	ctx := plugintest.Context(t)
	plan, err := h.Plan(ctx, plugin.PlanCall{Action: "installer_config_update", Params: d.params("eu-west-3", true)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range plan.Changes {
		got = append(got, fmt.Sprintf("%s %s %s: %v -> %v", c.Kind, filepath.Base(c.Resource), c.Field, c.Before, c.After))
	}
	want := []string{
		"update config.json disable_services: false -> true",
		"update config.json disaster_recovery.is_dr_instance: false -> true",
		"update config.dr.json disable_services: true -> false",
		"update config.dr.json disaster_recovery.is_dr_instance: true -> false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(plan.Summary, "config.dr.json (eu-west-3) becomes the active region's config") {
		t.Errorf("summary = %q", plan.Summary)
	}
	if read(t, d.primary) != primaryJSON || read(t, d.dr) != drJSON || len(d.entries(t)) != 2 {
		t.Fatal("plan changed something")
	}

	// Up to date: no-op changes.
	if _, err := h.apply(ctx, "installer_config_update", d.params("eu-west-3", true)); err != nil {
		t.Fatal(err)
	}
	plan, err = h.Plan(ctx, plugin.PlanCall{Action: "installer_config_update", Params: d.params("eu-west-3", true)})
	if err != nil || len(plan.Changes) != 2 || plan.Changes[0].Kind != plugin.ChangeNoop || plan.Changes[1].Kind != plugin.ChangeNoop {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}

	// A problem with the files is a diagnostic in the plan.
	plan, err = h.Plan(ctx, plugin.PlanCall{Action: "installer_config_update", Params: d.params("us-east-1", true)})
	if err != nil || len(plan.Diagnostics) != 1 || !strings.Contains(plan.Diagnostics[0].Summary, "us-east-1") {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}

	// The region known only at run time.
	p := d.params("", true)
	p["active_region"] = nil
	plan, err = h.Plan(ctx, plugin.PlanCall{Action: "installer_config_update", Params: p, Unknown: []string{"/active_region"}})
	if err != nil || len(plan.Changes) != 1 || !plan.Changes[0].AfterUnknown {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}
}

func TestParseObjectAt(t *testing.T) {
	doc := []byte(` { "a" : [1, {"x": "}"}], "b\"q": "s\\\"}", "c": {"d": null}, "e": -1.5e3 } `)
	o, err := parseObjectAt(doc, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range o.members {
		got = append(got, m.key+"="+string(doc[m.start:m.end]))
	}
	want := []string{`a=[1, {"x": "}"}]`, `b"q="s\\\"}"`, `c={"d": null}`, `e=-1.5e3`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("members = %q\nwant %q", got, want)
	}
	if doc[o.close] != '}' || o.close != len(doc)-2 {
		t.Fatalf("close = %d", o.close)
	}
	c, _ := o.member("c")
	inner, err := parseObjectAt(doc, c.start)
	if err != nil || len(inner.members) != 1 || inner.members[0].key != "d" {
		t.Fatalf("inner = %+v, %v", inner, err)
	}
}
