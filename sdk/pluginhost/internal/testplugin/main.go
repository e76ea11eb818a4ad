// Command testplugin is a runbook plugin for tests of the host, the engine
// and the CLI: each action exercises one behaviour a real plugin can show
// (success, progress, retryable and fatal failures, waiting, side effects,
// crashing, logging, spawning children). Every action supports Plan.
//
// Start-up misbehaviour is chosen with the environment variable
// RUNBOOK_TESTPLUGIN_STARTUP: "garbage" prints a line to stdout first
// (breaking both `describe` and the go-plugin handshake), "hang" never
// starts serving, "exit" exits with status 3 at once.
//
// Build variants with -ldflags: -X main.version=V changes the reported
// version (and so the binary's checksum); -X main.protocolVersion=N makes
// the plugin speak plugin protocol major version N.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf16"

	"github.com/hashicorp/go-hclog"

	"github.com/runbookhq/runbook/sdk/plugin"
)

var (
	version         = "0.1.0"
	protocolVersion = ""
)

// childArg makes the binary a child process that sleeps (see spawn);
// daemonArg one that starts such a child in a new session, prints its pid
// and exits (the double fork of a daemon).
const (
	childArg  = "__testplugin_child_sleep"
	daemonArg = "__testplugin_daemonize"
)

// markerEnv names a file the plugin appends a line to whenever it starts,
// whatever it was started for (describe included): a test proves with it
// that a plugin was never run.
const markerEnv = "RUNBOOK_TESTPLUGIN_MARKER"

func main() {
	if len(os.Args) > 1 && os.Args[1] == childArg {
		time.Sleep(time.Hour)
		return
	}
	if len(os.Args) > 1 && os.Args[1] == daemonArg {
		cmd := exec.Command(os.Args[0], childArg)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			os.Exit(1)
		}
		fmt.Println(cmd.Process.Pid)
		return
	}
	if m := os.Getenv(markerEnv); m != "" {
		if f, err := os.OpenFile(m, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "started pid %d args %q\n", os.Getpid(), os.Args[1:])
			f.Close()
		}
	}
	switch os.Getenv("RUNBOOK_TESTPLUGIN_STARTUP") {
	case "garbage":
		fmt.Println("debug: testplugin starting up")
	case "hang":
		if len(os.Args) == 1 {
			time.Sleep(time.Hour)
		}
	case "exit":
		fmt.Fprintln(os.Stderr, "testplugin: refusing to start (RUNBOOK_TESTPLUGIN_STARTUP=exit)")
		os.Exit(3)
	}
	info := plugin.Info{Name: "testplugin", Version: version}
	actions := []plugin.Action{noop(), echo(), fail(), sleep(), record(), crash(), logAction(), spawn(), env()}
	if protocolVersion != "" {
		v, err := strconv.Atoi(protocolVersion)
		if err != nil {
			panic(err)
		}
		plugin.Handshake.ProtocolVersion = uint(v)
		if len(os.Args) > 1 && os.Args[1] == "describe" {
			srv, err := plugin.NewServer(info, actions...)
			if err != nil {
				panic(err)
			}
			d := srv.Description()
			d.ProtocolVersion = v
			_ = json.NewEncoder(os.Stdout).Encode(d)
			return
		}
	}
	plugin.Serve(info, actions...)
}

type none struct{}

func planAction(resource string, after any) plugin.Plan {
	return plugin.Plan{Summary: "would " + resource, Changes: []plugin.Change{{Resource: resource, After: after, Kind: plugin.ChangeAction}}}
}

func noop() plugin.Action {
	return plugin.NewAction("noop", func(context.Context, plugin.Request[none]) (none, error) {
		return none{}, nil
	}).Doc("Does nothing.").ReadOnly().
		Plan(func(context.Context, plugin.PlanRequest[none]) (plugin.Plan, error) {
			return plugin.Plan{Summary: "nothing to do", Changes: []plugin.Change{{Resource: "nothing", Kind: plugin.ChangeNoop}}}, nil
		})
}

func echo() plugin.Action {
	return plugin.NewAction("echo", func(_ context.Context, req plugin.Request[map[string]any]) (map[string]any, error) {
		req.Progress("echoing", "keys", len(req.Params))
		return req.Params, nil
	}).Doc("Returns its parameters as outputs.").Idempotent().
		Plan(func(_ context.Context, req plugin.PlanRequest[map[string]any]) (plugin.Plan, error) {
			return planAction("echo", req.Params), nil
		})
}

type failParams struct {
	Mode    string `json:"mode" enum:"retryable,fatal" default:"retryable" doc:"How to fail."`
	Times   int    `json:"times" doc:"Fail while the attempt number is at most this; 0 fails every attempt."`
	Code    string `json:"code" default:"TestFailure" doc:"Error code."`
	Message string `json:"message" default:"failing on request" doc:"Error message."`
	// RetryAfter, when set, is the wait the error asks for, as a server's
	// Retry-After header would.
	RetryAfter time.Duration `json:"retry_after" doc:"The wait a retryable error asks for (as HTTP Retry-After)."`
}

type failOutputs struct {
	Attempt int `json:"attempt" doc:"The attempt that succeeded."`
}

func fail() plugin.Action {
	return plugin.NewAction("fail", func(_ context.Context, req plugin.Request[failParams]) (failOutputs, error) {
		p := req.Params
		if p.Times == 0 || req.Attempt <= p.Times {
			msg := fmt.Sprintf("%s (attempt %d)", p.Message, req.Attempt)
			if p.Mode == "fatal" {
				return failOutputs{}, plugin.FatalCode(p.Code, "%s", msg)
			}
			if p.RetryAfter > 0 {
				return failOutputs{}, plugin.RetryAfter(plugin.RetryableCode(p.Code, "%s", msg), p.RetryAfter)
			}
			return failOutputs{}, plugin.RetryableCode(p.Code, "%s", msg)
		}
		return failOutputs{Attempt: req.Attempt}, nil
	}).Doc("Fails (retryably or fatally) for the first `times` attempts, then succeeds.").Idempotent().
		Plan(func(_ context.Context, req plugin.PlanRequest[failParams]) (plugin.Plan, error) {
			return planAction("fail", req.Params.Mode), nil
		})
}

type sleepParams struct {
	Duration time.Duration `json:"duration" required:"true" doc:"How long to sleep."`
}

type sleepOutputs struct {
	Slept time.Duration `json:"slept"`
	PID   int           `json:"pid"`
}

func sleep() plugin.Action {
	return plugin.NewAction("sleep", func(ctx context.Context, req plugin.Request[sleepParams]) (sleepOutputs, error) {
		req.Progress("sleeping", "pid", os.Getpid(), "duration", req.Params.Duration.String())
		start := time.Now()
		select {
		case <-time.After(req.Params.Duration):
		case <-ctx.Done():
			return sleepOutputs{}, fmt.Errorf("sleep interrupted after %s: %w", time.Since(start).Round(time.Millisecond), ctx.Err())
		}
		return sleepOutputs{Slept: req.Params.Duration, PID: os.Getpid()}, nil
	}).Doc("Sleeps, stopping early when cancelled. Its first progress event carries the plugin's pid.").Idempotent().
		Plan(func(_ context.Context, req plugin.PlanRequest[sleepParams]) (plugin.Plan, error) {
			return planAction("sleep", req.Params.Duration.String()), nil
		})
}

type recordParams struct {
	File string `json:"file" required:"true" doc:"File to append to."`
	Line string `json:"line" required:"true" doc:"Line to append."`
}

type recordOutputs struct {
	Lines int `json:"lines" doc:"Lines in the file after appending."`
}

func countLines(file string) (int, error) {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return 0, nil
	}
	return strings.Count(string(b), "\n"), err
}

func record() plugin.Action {
	return plugin.NewAction("record", func(_ context.Context, req plugin.Request[recordParams]) (recordOutputs, error) {
		f, err := os.OpenFile(req.Params.File, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return recordOutputs{}, err
		}
		if _, err := fmt.Fprintln(f, req.Params.Line); err != nil {
			f.Close()
			return recordOutputs{}, err
		}
		if err := f.Close(); err != nil {
			return recordOutputs{}, err
		}
		n, err := countLines(req.Params.File)
		return recordOutputs{Lines: n}, err
	}).Doc("Appends a line to a file: a side effect tests can count. Not idempotent.").
		Plan(func(_ context.Context, req plugin.PlanRequest[recordParams]) (plugin.Plan, error) {
			n, err := countLines(req.Params.File)
			if err != nil {
				return plugin.Plan{}, err
			}
			return plugin.Plan{Summary: "append a line to " + req.Params.File, Changes: []plugin.Change{{
				Resource: req.Params.File, Field: "lines", Before: n, After: n + 1, Kind: plugin.ChangeUpdate,
			}}}, nil
		})
}

type crashParams struct {
	Mode    string        `json:"mode" enum:"exit,kill" default:"exit" doc:"exit: os.Exit(code); kill: SIGKILL itself."`
	Code    int           `json:"code" default:"2" doc:"Exit status for mode exit."`
	After   time.Duration `json:"after" doc:"Wait this long first."`
	Message string        `json:"message" doc:"A line written to stderr just before crashing."`
}

func crash() plugin.Action {
	return plugin.NewAction("crash", func(ctx context.Context, req plugin.Request[crashParams]) (none, error) {
		req.Progress("crashing", "pid", os.Getpid())
		select {
		case <-time.After(req.Params.After):
		case <-ctx.Done():
			return none{}, ctx.Err()
		}
		if req.Params.Message != "" {
			// File descriptor 2 itself, where a Go panic goes (go-plugin
			// replaces os.Stderr with a pipe forwarded over gRPC).
			_, _ = syscall.Write(2, []byte(req.Params.Message+"\n"))
		}
		if req.Params.Mode == "kill" {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
		os.Exit(req.Params.Code)
		return none{}, nil
	}).Doc("Ends the plugin process in the middle of the action.").
		Plan(func(context.Context, plugin.PlanRequest[crashParams]) (plugin.Plan, error) {
			return planAction("crash", nil), nil
		})
}

type logParams struct {
	Message string            `json:"message" required:"true"`
	Level   string            `json:"level" enum:"trace,debug,info,warn,error" default:"info"`
	Fields  map[string]string `json:"fields"`
	// Raw writes the message to os.Stderr as a plain line instead of
	// through hclog (go-plugin forwards it to the host over gRPC).
	Raw bool `json:"raw"`
	// FD2 writes it raw to file descriptor 2 itself, which go-plugin reads
	// line by line (and splits lines longer than its 64 KiB buffer).
	FD2 bool `json:"fd2"`
	// Encode writes the message encoded, as a plugin might print a value.
	Encode string `json:"encode" enum:",hex,HEX,json-ascii,go-ascii,percent-lower,base64-pem,base64-mime"`
	// Pad puts this many x before the message (a long line).
	Pad int `json:"pad"`
}

// encodeMessage encodes a log message as logParams.Encode asks.
func encodeMessage(m, how string) string {
	wrap := func(s string, n int, sep string) string {
		var lines []string
		for len(s) > n {
			lines, s = append(lines, s[:n]), s[n:]
		}
		return strings.Join(append(lines, s), sep)
	}
	switch how {
	case "hex":
		return hex.EncodeToString([]byte(m))
	case "HEX":
		return strings.ToUpper(hex.EncodeToString([]byte(m)))
	case "json-ascii":
		// JSON with every character outside ASCII a \u escape, as
		// Python's json.dumps writes it.
		b, _ := json.Marshal(m)
		var sb strings.Builder
		for _, r := range string(b) {
			switch {
			case r < 0x80:
				sb.WriteRune(r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(&sb, `\u%04x\u%04x`, r1, r2)
			default:
				fmt.Fprintf(&sb, `\u%04x`, r)
			}
		}
		return sb.String()
	case "go-ascii":
		return strconv.QuoteToASCII(m)
	case "percent-lower":
		// %c3%ab: lower case hex escapes, the letters as they are.
		q := []byte(url.QueryEscape(m))
		for i := 0; i+2 < len(q); i++ {
			if q[i] == '%' {
				q[i+1], q[i+2] = bytes.ToLower(q[i+1 : i+2])[0], bytes.ToLower(q[i+2 : i+3])[0]
			}
		}
		return string(q)
	case "base64-pem":
		return wrap(base64.StdEncoding.EncodeToString([]byte(m)), 64, "\n")
	case "base64-mime":
		return wrap(base64.StdEncoding.EncodeToString([]byte(m)), 76, "\r\n")
	}
	return m
}

func logAction() plugin.Action {
	return plugin.NewAction("log", func(_ context.Context, req plugin.Request[logParams]) (none, error) {
		msg := strings.Repeat("x", req.Params.Pad) + encodeMessage(req.Params.Message, req.Params.Encode)
		switch {
		case req.Params.FD2:
			_, _ = syscall.Write(2, []byte(msg+"\n"))
			return none{}, nil
		case req.Params.Raw:
			fmt.Fprintln(os.Stderr, msg)
			return none{}, nil
		}
		req.Params.Message = msg
		var kv []any
		for k, v := range req.Params.Fields {
			kv = append(kv, k, v)
		}
		req.Log.Log(hclog.LevelFromString(req.Params.Level), req.Params.Message, kv...)
		return none{}, nil
	}).Doc("Writes a log line to stderr (hclog, or raw).").ReadOnly().
		Plan(func(context.Context, plugin.PlanRequest[logParams]) (plugin.Plan, error) {
			return planAction("log", nil), nil
		})
}

type spawnParams struct {
	Detach string `json:"detach" enum:"none,setsid,daemon" default:"none" doc:"none: a child in the plugin's process group; setsid: a child in a session of its own; daemon: a grandchild in a session of its own, whose parent exits at once (a double fork)."`
}

type spawnOutputs struct {
	PID int `json:"pid" doc:"The sleeping process's pid."`
}

func spawn() plugin.Action {
	return plugin.NewAction("spawn", func(_ context.Context, req plugin.Request[spawnParams]) (spawnOutputs, error) {
		self, err := os.Executable()
		if err != nil {
			return spawnOutputs{}, err
		}
		if req.Params.Detach == "daemon" {
			out, err := exec.Command(self, daemonArg).Output()
			if err != nil {
				return spawnOutputs{}, err
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
			req.Progress("spawned", "pid", pid)
			return spawnOutputs{PID: pid}, err
		}
		// The child keeps the plugin's stderr: the hardest case for the
		// host, whose log reader only sees EOF once the child is gone too.
		cmd := exec.Command(self, childArg)
		cmd.Stderr = os.Stderr
		if req.Params.Detach == "setsid" {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := cmd.Start(); err != nil {
			return spawnOutputs{}, err
		}
		go func() { _ = cmd.Wait() }()
		req.Progress("spawned", "pid", cmd.Process.Pid)
		return spawnOutputs{PID: cmd.Process.Pid}, nil
	}).Doc("Starts a process that sleeps for an hour (a child, or a grandchild in a new session), and returns its pid.").
		Plan(func(context.Context, plugin.PlanRequest[spawnParams]) (plugin.Plan, error) {
			return planAction("spawn", nil), nil
		})
}

type envParams struct {
	Name string `json:"name" required:"true"`
}

type envOutputs struct {
	Value string `json:"value"`
	Set   bool   `json:"set"`
}

func env() plugin.Action {
	return plugin.NewAction("env", func(_ context.Context, req plugin.Request[envParams]) (envOutputs, error) {
		v, ok := os.LookupEnv(req.Params.Name)
		return envOutputs{Value: v, Set: ok}, nil
	}).Doc("Returns an environment variable of the plugin process.").ReadOnly().
		Plan(func(context.Context, plugin.PlanRequest[envParams]) (plugin.Plan, error) {
			return planAction("env", nil), nil
		})
}
