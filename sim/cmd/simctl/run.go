package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// errUsage marks command-line mistakes (exit code 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: simctl up|down|status|reset|fault|timing [flags]  (see `go doc ./sim/cmd/simctl`)")
		return 2
	}
	cmds := map[string]func(context.Context, []string, io.Writer) error{
		"up":          cmdUp,
		"down":        cmdDown,
		"status":      cmdStatus,
		"reset":       cmdReset,
		"fault":       cmdFault,
		"timing":      cmdTiming,
		"proxy-serve": cmdProxyServe,
		"dns-serve":   cmdDNSServe,
	}
	fn, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "simctl: unknown command %q\n", args[0])
		return 2
	}
	if err := fn(ctx, args[1:], stdout); err != nil {
		fmt.Fprintln(stderr, "simctl:", err)
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			return 2
		}
		return 1
	}
	return 0
}

// state is <dir>/state.json, written by up.
type state struct {
	EmulatorURL string `json:"emulator_url"`
	ProxyURL    string `json:"proxy_url"`
	EmulatorPID int    `json:"emulator_pid"`
	ProxyPID    int    `json:"proxy_pid"`
	DNSAddr     string `json:"dns_addr,omitempty"`
	DNSPID      int    `json:"dns_pid,omitempty"`
	Primary     string `json:"primary_region"`
	DR          string `json:"dr_region"`
	Timing      string `json:"timing"`
	Seed        uint64 `json:"seed"`
	Topology    bool   `json:"topology"`
}

const (
	stateFile       = "state.json"
	envFile         = "env"
	emulatorPIDFile = "emulator.pid"
	proxyPIDFile    = "proxy.pid"
	dnsPIDFile      = "dns.pid"
	dnsLog          = "dns.log"
	emulatorLog     = "emulator.log"
	proxyLog        = "proxy.log"
)

func loadState(dir string) (state, error) {
	var s state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return s, fmt.Errorf("no simulation in %s (run `simctl up --dir %s`)", dir, dir)
		}
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func dirFlag(fs *flag.FlagSet) *string {
	return fs.String("dir", ".sim", "directory holding the simulation's state, logs, env and configs")
}

func cmdUp(ctx context.Context, args []string, out io.Writer) (err error) {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := dirFlag(fs)
	port := fs.Int("port", emulator.DefaultPort, "port of the fault proxy: the AWS endpoint clients use (0: a free port)")
	emuPort := fs.Int("emulator-port", 0, "port of the emulator behind the proxy (0: a free port)")
	timing := fs.String("timing", emulator.PresetCI, "timing preset (ci, instant, realistic) or a JSON file of seconds per transition")
	seed := fs.Uint64("seed", 1, "seed of the fault proxy's random choices")
	primary := fs.String("primary", "eu-west-1", "primary region")
	dr := fs.String("dr", "eu-west-3", "DR region")
	variant := fs.String("variant", "", "a named pair of regions instead of --primary and --dr: default (eu-west-1, eu-west-3) or us-east-1 (us-east-1, us-west-2)")
	noTopo := fs.Bool("no-topology", false, "start the emulator and proxy without seeding the installation")
	dnsPort := fs.Int("dns-port", 0, "port (UDP and TCP) of the DNS server answering for the hosted zones (0: a free port)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return usageErr("up takes no arguments")
	}
	if *variant != "" {
		o, err := topology.Variant(*variant, topology.Options{})
		if err != nil {
			return usageErr("%v", err)
		}
		*primary, *dr = o.PrimaryRegion, o.DRRegion
	}
	if s, err := loadState(*dir); err == nil && (alive(s.EmulatorPID) || alive(s.ProxyPID)) {
		return fmt.Errorf("a simulation is already up in %s (emulator pid %d, proxy pid %d): `simctl down --dir %s` first", *dir, s.EmulatorPID, s.ProxyPID, *dir)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}

	opts := emulator.Options{Port: *emuPort, Detached: true, LogPath: filepath.Join(abs, emulatorLog), IgnoreExternal: true}
	if _, err := os.Stat(*timing); err == nil {
		b, err := os.ReadFile(*timing)
		if err != nil {
			return err
		}
		var t emulator.Timing
		if err := json.Unmarshal(b, &t); err != nil {
			return fmt.Errorf("timing file %s: %w", *timing, err)
		}
		opts.Timing = t
	} else {
		opts.TimingPreset = *timing
	}
	emu, err := emulator.Start(ctx, opts)
	if err != nil {
		return err
	}
	st := state{EmulatorURL: emu.URL, EmulatorPID: emu.PID(), Primary: *primary, DR: *dr, Timing: *timing, Seed: *seed, Topology: !*noTopo}
	defer func() {
		if err != nil {
			_ = killGroup(st.DNSPID, "dns-serve")
			_ = killGroup(st.ProxyPID, "proxy-serve")
			_ = emu.Stop()
			removeRunFiles(abs)
		}
	}()
	if err := writeFile(filepath.Join(abs, emulatorPIDFile), []byte(strconv.Itoa(emu.PID())+"\n")); err != nil {
		return err
	}

	proxyURL, proxyPID, err := startProxy(ctx, abs, emu.URL, *port, *seed)
	st.ProxyPID = proxyPID
	if err != nil {
		return err
	}
	st.ProxyURL = proxyURL
	if err := writeFile(filepath.Join(abs, proxyPIDFile), []byte(strconv.Itoa(proxyPID)+"\n")); err != nil {
		return err
	}
	if !*noTopo {
		if err := seedTopology(ctx, abs, st); err != nil {
			return err
		}
	}
	// The name servers of the emulator's hosted zones (after seeding: they
	// answer the load balancers' addresses from topology.json).
	st.DNSAddr, st.DNSPID, err = startChild(ctx, abs, "dns", dnsLog, "dns-serve", "--emulator", st.EmulatorURL,
		"--topology", filepath.Join(abs, topology.TopologyFile), "--addr", fmt.Sprintf("127.0.0.1:%d", *dnsPort))
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(abs, dnsPIDFile), []byte(strconv.Itoa(st.DNSPID)+"\n")); err != nil {
		return err
	}
	if !*noTopo {
		// inputs.json names it as the name servers the DR runbooks' DNS check asks.
		topo, err := topology.Load(filepath.Join(abs, topology.TopologyFile))
		if err != nil {
			return err
		}
		topo.DNSServer = st.DNSAddr
		if err := topo.WriteFiles(abs); err != nil {
			return err
		}
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := writeFile(filepath.Join(abs, stateFile), append(b, '\n')); err != nil {
		return err
	}
	if err := writeEnv(abs, st); err != nil {
		return err
	}
	fmt.Fprintf(out, "simulation up in %s\n  AWS endpoint (fault proxy): %s\n  emulator: %s\n  DNS (Route 53 zones): %s\n  regions: primary %s, DR %s\n  source %s\n",
		abs, st.ProxyURL, st.EmulatorURL, st.DNSAddr, st.Primary, st.DR, filepath.Join(abs, envFile))
	return nil
}

// seedTopology seeds the installation straight into the emulator (so the proxy's
// log starts clean) and writes the configs and topology.json.
func seedTopology(ctx context.Context, dir string, st state) error {
	topo, err := topology.Seed(ctx, topology.Options{EndpointURL: st.EmulatorURL, PrimaryRegion: st.Primary, DRRegion: st.DR, Wait: true})
	if err != nil {
		return err
	}
	topo.DNSServer = st.DNSAddr
	return topo.WriteFiles(dir)
}

func writeEnv(dir string, st state) error {
	// Empty shared config files keep a developer's profiles out of the simulation.
	for _, f := range []string{"aws-config", "aws-credentials"} {
		if err := writeFile(filepath.Join(dir, f), nil); err != nil {
			return err
		}
	}
	lines := []string{
		"# Source this file: the AWS side of the DR simulation started by simctl up.",
		"export AWS_ENDPOINT_URL=" + st.ProxyURL,
		"export AWS_ACCESS_KEY_ID=" + emulator.AccessKeyID,
		"export AWS_SECRET_ACCESS_KEY=" + emulator.SecretAccessKey,
		"unset AWS_SESSION_TOKEN AWS_PROFILE",
		"export AWS_REGION=" + st.Primary,
		"export AWS_DEFAULT_REGION=" + st.Primary,
		"export AWS_CONFIG_FILE=" + filepath.Join(dir, "aws-config"),
		"export AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "aws-credentials"),
		"export AWS_EC2_METADATA_DISABLED=true",
		"export RUNBOOK_SIM_EXTERNAL=1",
		"export RUNBOOK_SIM_DIR=" + dir,
		"export RUNBOOK_SIM_EMULATOR_URL=" + st.EmulatorURL,
		"export RUNBOOK_SIM_PROXY_URL=" + st.ProxyURL,
		"export RUNBOOK_SIM_PRIMARY_REGION=" + st.Primary,
		"export RUNBOOK_SIM_DR_REGION=" + st.DR,
		"export RUNBOOK_SIM_DNS=" + st.DNSAddr,
	}
	if st.Topology {
		lines = append(lines,
			"export RUNBOOK_SIM_TOPOLOGY="+filepath.Join(dir, topology.TopologyFile),
			"export RUNBOOK_SIM_CONFIG="+filepath.Join(dir, topology.PrimaryConfigFile),
			"export RUNBOOK_SIM_CONFIG_DR="+filepath.Join(dir, topology.DRConfigFile))
	}
	return writeFile(filepath.Join(dir, envFile), []byte(strings.Join(lines, "\n")+"\n"))
}

// startProxy runs `simctl proxy-serve` in its own session and waits until it listens.
func startProxy(ctx context.Context, dir, target string, port int, seed uint64) (string, int, error) {
	url, pid, err := startChild(ctx, dir, "proxy", proxyLog, "proxy-serve", "--target", target, "--addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--seed", strconv.FormatUint(seed, 10))
	if err != nil {
		return url, pid, err
	}
	return url, pid, faultproxy.NewClient(url).Health(ctx)
}

// startChild runs `simctl <args> --ready-file <dir>/<name>.ready` in its own
// session, logging to log, and waits until it writes its address there.
func startChild(ctx context.Context, dir, name, log string, args ...string) (string, int, error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, err
	}
	ready := filepath.Join(dir, name+".ready")
	_ = os.Remove(ready)
	logf, err := os.OpenFile(filepath.Join(dir, log), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", 0, err
	}
	defer logf.Close()
	cmd := exec.Command(self, append(args, "--ready-file", ready)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", 0, err
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			_ = cmd.Process.Release()
			return strings.TrimSpace(string(b)), pid, nil
		}
		select {
		case err := <-exited:
			return "", pid, fmt.Errorf("%s exited at start (%v); see %s", args[0], err, filepath.Join(dir, log))
		case <-deadline:
			return "", pid, fmt.Errorf("%s not ready after 30s", args[0])
		case <-ctx.Done():
			return "", pid, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cmdProxyServe runs the fault proxy in the foreground (what up starts).
func cmdProxyServe(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("proxy-serve", flag.ContinueOnError)
	target := fs.String("target", "", "emulator URL")
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	seed := fs.Uint64("seed", 1, "random seed")
	ready := fs.String("ready-file", "", "file to write the proxy's URL to once it listens")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	p, err := faultproxy.Start(*target, *addr, *seed)
	if err != nil {
		return err
	}
	defer p.Close()
	if *ready != "" {
		if err := writeFile(*ready, []byte(p.URL+"\n")); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "fault proxy %s -> %s (seed %d)\n", p.URL, *target, *seed)
	<-ctx.Done()
	return nil
}

// cmdDNSServe runs the simulation's DNS server in the foreground (what up
// starts): the emulator's public hosted zones, and the load balancers' names
// from topology.json (read again when it changes).
func cmdDNSServe(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dns-serve", flag.ContinueOnError)
	emu := fs.String("emulator", "", "emulator URL (read directly, not through the fault proxy)")
	topo := fs.String("topology", "", "topology.json giving the load balancers' addresses")
	addr := fs.String("addr", "127.0.0.1:0", "listen address, UDP and TCP (loopback only)")
	ready := fs.String("ready-file", "", "file to write the server's address to once it listens")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *emu == "" {
		return usageErr("dns-serve needs --emulator")
	}
	var t func() *topology.Topology
	if *topo != "" {
		t = dnsserver.TopologyFile(*topo)
	}
	srv, err := dnsserver.Listen(*addr, dnsserver.ForSimulation(*emu, t, nil)...)
	if err != nil {
		return err
	}
	defer srv.Close()
	if *ready != "" {
		if err := writeFile(*ready, []byte(srv.Addr()+"\n")); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "DNS server %s (UDP and TCP) for the hosted zones of %s\n", srv.Addr(), *emu)
	<-ctx.Done()
	return nil
}

func cmdDown(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	dir := dirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var errs []error
	for _, f := range []struct{ file, marker string }{{dnsPIDFile, "dns-serve"}, {proxyPIDFile, "proxy-serve"}, {emulatorPIDFile, "serve.py"}} {
		b, err := os.ReadFile(filepath.Join(*dir, f.file))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.file, err))
			continue
		}
		if err := killGroup(pid, f.marker); err != nil {
			errs = append(errs, fmt.Errorf("%s %d: %w", f.file, pid, err))
			continue
		}
		fmt.Fprintf(out, "stopped %s process group %d\n", strings.TrimSuffix(f.file, ".pid"), pid)
	}
	if len(errs) == 0 {
		removeRunFiles(*dir)
	}
	return errors.Join(errs...)
}

func removeRunFiles(dir string) {
	for _, f := range []string{emulatorPIDFile, proxyPIDFile, dnsPIDFile, stateFile, "proxy.ready", "dns.ready"} {
		_ = os.Remove(filepath.Join(dir, f))
	}
}

// alive reports whether pid exists.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// killGroup ends process group pgid, if its leader is still the process we started
// (its command line contains marker: pid files outlive reboots and pids are reused).
func killGroup(pgid int, marker string) error {
	if pgid <= 0 {
		return nil
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pgid)); err == nil {
		if !strings.Contains(string(cmdline), marker) {
			return nil // not ours any more
		}
	} else if !groupExists(pgid) {
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for groupExists(pgid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
			if groupExists(pgid) {
				return fmt.Errorf("process group %d survived SIGKILL", pgid)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func groupExists(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	dir := dirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	st, err := loadState(*dir)
	if err != nil {
		return err
	}
	up := func(pid int) string {
		if alive(pid) {
			return "running"
		}
		return "NOT RUNNING"
	}
	fmt.Fprintf(out, "emulator %s (pid %d) %s\nfault proxy %s (pid %d) %s\nDNS %s (pid %d) %s\nregions: primary %s, DR %s\n",
		st.EmulatorURL, st.EmulatorPID, up(st.EmulatorPID), st.ProxyURL, st.ProxyPID, up(st.ProxyPID), st.DNSAddr, st.DNSPID, up(st.DNSPID), st.Primary, st.DR)
	if rules, err := faultproxy.NewClient(st.ProxyURL).Rules(ctx); err == nil {
		fmt.Fprintf(out, "faults: %d rule(s)\n", len(rules))
	}
	if !alive(st.EmulatorPID) || !alive(st.ProxyPID) || !alive(st.DNSPID) {
		return errors.New("the simulation is not fully up")
	}
	return nil
}

func connect(ctx context.Context, dir string) (state, *emulator.Emulator, error) {
	st, err := loadState(dir)
	if err != nil {
		return st, nil, err
	}
	e, err := emulator.Connect(ctx, st.EmulatorURL)
	if err != nil {
		return st, nil, err
	}
	if !e.HasControl() {
		return st, nil, fmt.Errorf("the emulator at %s does not answer", st.EmulatorURL)
	}
	return st, e, nil
}

func cmdReset(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	dir := dirFlag(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	st, e, err := connect(ctx, *dir)
	if err != nil {
		return err
	}
	if err := e.Reset(ctx); err != nil {
		return err
	}
	c := faultproxy.NewClient(st.ProxyURL)
	if err := c.Clear(ctx); err != nil {
		return err
	}
	if err := c.ResetLog(ctx); err != nil {
		return err
	}
	if err := c.Seed(ctx, st.Seed); err != nil {
		return err
	}
	if st.Topology {
		abs, _ := filepath.Abs(*dir)
		if err := seedTopology(ctx, abs, st); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "simulation reset: resources seeded again, faults cleared, timing as at start")
	return nil
}
