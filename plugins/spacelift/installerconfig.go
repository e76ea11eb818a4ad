package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
)

type installerParams struct {
	PrimaryConfig  string `json:"primary_config" required:"true" doc:"path of the primary installation's installer config (config.json)"`
	DRConfig       string `json:"dr_config" required:"true" doc:"path of the DR installation's installer config (config.dr.json)"`
	ActiveRegion   string `json:"active_region" required:"true" doc:"the region that now runs the services: aws_region of exactly one of the two files"`
	Permanent      bool   `json:"permanent" doc:"the move is permanent: the active config gets disaster_recovery.is_dr_instance false, the other true"`
	DisablePassive bool   `json:"disable_passive_services" default:"true" doc:"also set disable_services true in the other region's config, so re-running its installer does not start services against a database it cannot write"`
	BackupDir      string `json:"backup_dir" doc:"an existing directory for the backups; default: next to each file"`
}

type fieldChange struct {
	Field  string `json:"field" doc:"the JSON path of the field, e.g. disaster_recovery.is_dr_instance"`
	Before any    `json:"before" doc:"the old value (null if the field was absent)"`
	After  any    `json:"after" doc:"the new value"`
}

type fileResult struct {
	Path    string        `json:"path" doc:"the config file"`
	Role    string        `json:"role" doc:"active or passive"`
	Region  string        `json:"region" doc:"the file's aws_region"`
	Backup  string        `json:"backup" doc:"the backup written before the change; empty if the file did not change"`
	Changes []fieldChange `json:"changes" doc:"the fields that changed"`
}

type installerOutputs struct {
	Files       []fileResult `json:"files" doc:"per file: its role, backup and changed fields"`
	BackupPaths []string     `json:"backup_paths" doc:"the backups written, one per changed file"`
	Changed     bool         `json:"changed" doc:"whether any file changed"`
}

func installerConfigAction() plugin.Action {
	return plugin.NewAction("installer_config_update", updateInstallerConfigs).
		Doc("Rewrites the two Spacelift installer configs after a failover or failback: disable_services false in the now-active " +
			"region's config (true in the other's), and, if the move is permanent, disaster_recovery.is_dr_instance false for the " +
			"active one and true for the other. Edits only those values, keeping every other byte; writes a timestamped backup " +
			"of each changed file first and replaces it atomically. Idempotent.").
		Idempotent().
		Plan(planInstallerConfigs).
		Validate(validateInstallerConfigs)
}

func validateInstallerConfigs(req plugin.ValidateRequest[installerParams]) []plugin.Diagnostic {
	p := req.Params
	if req.Unknown("/primary_config") || req.Unknown("/dr_config") {
		return nil
	}
	if filepath.Clean(p.PrimaryConfig) == filepath.Clean(p.DRConfig) {
		return []plugin.Diagnostic{plugin.Errorf("/dr_config", "dr_config is the same file as primary_config")}
	}
	return nil
}

// configFile is one installer config, read and planned.
type configFile struct {
	path    string // as given
	real    string // symlinks resolved: the file that is rewritten
	mode    fs.FileMode
	doc     []byte
	region  string
	role    string
	edits   []edit
	changes []fieldChange
}

// planFiles reads both configs and works out the edits. It changes nothing.
func planFiles(p installerParams) ([]*configFile, error) {
	if p.ActiveRegion == "" {
		return nil, errors.New("active_region is empty")
	}
	var files []*configFile
	for _, path := range []string{p.PrimaryConfig, p.DRConfig} {
		f, err := readConfig(path)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if files[0].real == files[1].real {
		return nil, fmt.Errorf("%s and %s are the same file", p.PrimaryConfig, p.DRConfig)
	}
	active := -1
	for i, f := range files {
		if f.region == p.ActiveRegion {
			if active >= 0 {
				return nil, fmt.Errorf("both %s and %s have aws_region %q: cannot tell which one is active", files[0].path, files[1].path, f.region)
			}
			active = i
		}
	}
	if active < 0 {
		return nil, fmt.Errorf("active_region %q is neither %s's aws_region (%q) nor %s's (%q)", p.ActiveRegion, files[0].path, files[0].region, files[1].path, files[1].region)
	}
	for i, f := range files {
		f.role = "passive"
		if i == active {
			f.role = "active"
		}
		if err := f.plan(p); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func readConfig(path string) (*configFile, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("installer config %s: %w", path, unwrapPathError(err))
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("installer config %s: %w", path, unwrapPathError(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("installer config %s is not a regular file", path)
	}
	doc, err := os.ReadFile(real)
	if err != nil {
		return nil, fmt.Errorf("installer config %s: %w", path, unwrapPathError(err))
	}
	if !json.Valid(doc) {
		var v any
		err := json.Unmarshal(doc, &v)
		return nil, fmt.Errorf("installer config %s is not valid JSON: %v", path, err)
	}
	f := &configFile{path: path, real: real, mode: st.Mode().Perm(), doc: doc}
	top, err := parseObjectAt(doc, 0)
	if err != nil {
		return nil, fmt.Errorf("installer config %s: %v", path, err)
	}
	m, ok := top.member("aws_region")
	if !ok {
		return nil, fmt.Errorf("installer config %s has no aws_region", path)
	}
	if err := json.Unmarshal(doc[m.start:m.end], &f.region); err != nil || f.region == "" {
		return nil, fmt.Errorf("installer config %s: aws_region is not a region name", path)
	}
	return f, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// plan works out f's edits for its role.
func (f *configFile) plan(p installerParams) error {
	top, err := parseObjectAt(f.doc, 0)
	if err != nil {
		return fmt.Errorf("installer config %s: %v", f.path, err)
	}
	if f.role == "active" {
		if err := f.setBool(top, "", "disable_services", false); err != nil {
			return err
		}
	} else if p.DisablePassive {
		if err := f.setBool(top, "", "disable_services", true); err != nil {
			return err
		}
	}
	if p.Permanent {
		m, ok := top.member("disaster_recovery")
		if !ok {
			return fmt.Errorf("installer config %s has no disaster_recovery section: cannot set is_dr_instance for a permanent move", f.path)
		}
		dr, err := parseObjectAt(f.doc, m.start)
		if err != nil {
			return fmt.Errorf("installer config %s: disaster_recovery is not an object", f.path)
		}
		if err := f.setBool(dr, "disaster_recovery.", "is_dr_instance", f.role == "passive"); err != nil {
			return err
		}
	}
	return nil
}

func (f *configFile) setBool(o *jsonObject, prefix, key string, want bool) error {
	var before any
	if m, ok := o.member(key); ok {
		var b bool
		if err := json.Unmarshal(f.doc[m.start:m.end], &b); err != nil {
			return fmt.Errorf("installer config %s: %s%s is %s, not a boolean", f.path, prefix, key, f.doc[m.start:m.end])
		}
		before = b
	}
	e, changed := setMember(f.doc, o, key, fmt.Sprint(want))
	if !changed {
		return nil
	}
	f.edits = append(f.edits, e)
	f.changes = append(f.changes, fieldChange{Field: prefix + key, Before: before, After: want})
	return nil
}

func planInstallerConfigs(_ context.Context, req plugin.PlanRequest[installerParams]) (plugin.Plan, error) {
	p := req.Params
	for _, path := range []string{"/primary_config", "/dr_config", "/active_region", "/permanent", "/disable_passive_services"} {
		if req.Unknown(path) {
			return plugin.Plan{
				Summary: "update the installer configs (the files and the active region are known after apply)",
				Changes: []plugin.Change{{Resource: "installer configs", AfterUnknown: true, Kind: plugin.ChangeUpdate}},
			}, nil
		}
	}
	files, err := planFiles(p)
	if err != nil {
		return plugin.Plan{
			Summary:     "update the installer configs",
			Diagnostics: []plugin.Diagnostic{plugin.Errorf("", "%v", err)},
		}, nil
	}
	plan := plugin.Plan{Summary: fmt.Sprintf("installer configs: %s (%s) becomes the active region's config", files[activeIndex(files)].path, p.ActiveRegion)}
	for _, f := range files {
		if len(f.changes) == 0 {
			plan.Changes = append(plan.Changes, plugin.Change{Resource: f.path, Kind: plugin.ChangeNoop})
			continue
		}
		for _, c := range f.changes {
			kind := plugin.ChangeUpdate
			if c.Before == nil {
				kind = plugin.ChangeCreate
			}
			plan.Changes = append(plan.Changes, plugin.Change{Resource: f.path, Field: c.Field, Before: c.Before, After: c.After, Kind: kind})
		}
	}
	return plan, nil
}

func activeIndex(files []*configFile) int {
	for i, f := range files {
		if f.role == "active" {
			return i
		}
	}
	return 0
}

func updateInstallerConfigs(_ context.Context, req plugin.Request[installerParams]) (installerOutputs, error) {
	p := req.Params
	if filepath.Clean(p.PrimaryConfig) == filepath.Clean(p.DRConfig) {
		return installerOutputs{}, plugin.FatalCode("InvalidParams", "dr_config is the same file as primary_config")
	}
	files, err := planFiles(p)
	if err != nil {
		return installerOutputs{}, plugin.FatalCode("InvalidConfig", "%v", err)
	}
	out := installerOutputs{Files: []fileResult{}, BackupPaths: []string{}}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	// Back up every file that will change before rewriting any, so a failure
	// part-way leaves a backup of each file touched.
	backups := make([]string, len(files))
	for i, f := range files {
		if len(f.edits) == 0 {
			continue
		}
		b, err := writeBackup(f, p.BackupDir, stamp)
		if err != nil {
			return installerOutputs{}, plugin.FatalCode("BackupFailed", "backing up %s: %v (nothing was changed)", f.path, err)
		}
		backups[i] = b
		req.Progress("backed up installer config", "path", f.path, "backup", b)
	}
	for i, f := range files {
		res := fileResult{Path: f.path, Role: f.role, Region: f.region, Backup: backups[i], Changes: f.changes}
		if res.Changes == nil {
			res.Changes = []fieldChange{}
		}
		if len(f.edits) > 0 {
			if err := writeAtomic(f.real, applyEdits(f.doc, f.edits), f.mode); err != nil {
				msg := fmt.Sprintf("rewriting %s: %v", f.path, err)
				if i > 0 && len(out.BackupPaths) > 0 {
					msg += fmt.Sprintf(" (%s was already updated; its backup is %s)", files[0].path, out.BackupPaths[0])
				}
				return installerOutputs{}, plugin.FatalCode("WriteFailed", "%s", msg)
			}
			out.BackupPaths = append(out.BackupPaths, backups[i])
			out.Changed = true
			for _, c := range f.changes {
				req.Log.Info("installer config updated", "path", f.path, "field", c.Field, "before", c.Before, "after", c.After)
			}
			req.Progress("installer config updated", "path", f.path, "role", f.role, "fields", changedFields(f.changes))
		} else {
			req.Progress("installer config already up to date", "path", f.path, "role", f.role)
		}
		out.Files = append(out.Files, res)
	}
	return out, nil
}

func changedFields(cs []fieldChange) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Field)
	}
	return strings.Join(names, ", ")
}

// writeBackup copies f's current content to <file>.<stamp>.bak next to it
// (or in dir), never overwriting an earlier backup.
func writeBackup(f *configFile, dir, stamp string) (string, error) {
	base := f.path + "." + stamp
	if dir != "" {
		base = filepath.Join(dir, filepath.Base(f.path)+"."+stamp)
	}
	for n := 0; n < 100; n++ {
		name := base + ".bak"
		if n > 0 {
			name = fmt.Sprintf("%s-%d.bak", base, n)
		}
		fh, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", unwrapPathError(err)
		}
		_, werr := fh.Write(f.doc)
		if werr == nil {
			werr = fh.Sync()
		}
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(name)
			return "", werr
		}
		return name, nil
	}
	return "", fmt.Errorf("too many backups named %s*.bak", base)
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over it, so a crash leaves either the old
// or the new file, never half of one.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return unwrapPathError(err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return unwrapPathError(err)
	}
	ok = true
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
