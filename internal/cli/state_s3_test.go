package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/journal/s3store"
	"github.com/runbookhq/runbook/sdk/spec"
	"github.com/runbookhq/runbook/sim/contracts"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// s3e2e runs the real binary against the emulator's S3, as two machines
// sharing one state would.
type s3e2e struct {
	t      *testing.T
	bin    string
	emuURL string
	marker string
}

func (e *s3e2e) env(home string, extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_ENDPOINT_URL=" + e.emuURL,
		"AWS_REGION=eu-west-1",
		"AWS_ACCESS_KEY_ID=" + emulator.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + emulator.SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"RUNBOOK_PLUGIN_PATH=" + e.bin,
		"NO_COLOR=1",
		e.marker,
	}
	return append(env, extra...)
}

type s3Result struct {
	code           int
	stdout, stderr string
}

func (r s3Result) events() []journal.Record {
	var out []journal.Record
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		var ev journal.Record
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type != "" {
			out = append(out, ev)
		}
	}
	return out
}

// start starts bin/runbook in dir in a process group of its own.
func (e *s3e2e) start(dir string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(e.bin, "runbook"), args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd, &stdout, &stderr
}

func (e *s3e2e) run(dir string, env []string, args ...string) s3Result {
	e.t.Helper()
	cmd, stdout, stderr := e.start(dir, env, args...)
	timer := time.AfterFunc(2*time.Minute, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer timer.Stop()
	_ = cmd.Wait()
	return s3Result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// paste runs a command the CLI printed through sh, as a user pasting it.
func (e *s3e2e) paste(dir string, env []string, command string) s3Result {
	e.t.Helper()
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	return s3Result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// leftovers lists live processes carrying this test's marker.
func (e *s3e2e) leftovers() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(e.marker+"\x00")) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat")); err == nil && bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func buildForS3Test(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	bin := t.TempDir()
	for out, pkg := range map[string]string{"runbook": "./cmd/runbook", "runbook-plugin-hello": "./examples/plugins/hello"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, out), pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, b)
		}
	}
	return bin
}

const s3HelloRunbook = `version: 1
name: hello-team
inputs:
  who: { type: string, default: team }
plugins:
  hello: { command: runbook-plugin-hello }
steps:
  - id: greet
    uses: hello.greet
    with: { name: "${{ inputs.who }}" }
  - id: confirm
    uses: core.approve
    with: { message: "greet again?" }
  - id: again
    uses: hello.greet
    with: { name: again }
outputs:
  greeting: ${{ steps.again.outputs.greeting }}
`

const s3SlowRunbook = `version: 1
name: slow
plugins:
  hello: { command: runbook-plugin-hello }
steps:
  - id: greet
    uses: hello.greet
    with: { name: slow, sleep: 10m }
`

// TestS3StateEndToEnd: `--state s3://...` through the binary: a run
// started in one place is listed and resumed from another (another working
// directory and HOME, nothing local); two runs started together: one
// proceeds, the other is refused naming it; the winner killed, its lock is
// reported stale (never taken over) until `runbook unlock` removes it.
func TestS3StateEndToEnd(t *testing.T) {
	bin := buildForS3Test(t)
	emu := emulator.StartForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := s3.NewFromConfig(emu.Config("eu-west-1"), func(o *s3.Options) { o.UsePathStyle = true })
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{
		Bucket:                    aws.String("team-state"),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: "eu-west-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The binary reaches S3 through a recording proxy: its calls are checked
	// against the permissions the state declares, and AWS's API models.
	proxy, err := faultproxy.Start(emu.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.Record(true)
	e := &s3e2e{t: t, bin: bin, emuURL: proxy.URL, marker: fmt.Sprintf("RUNBOOK_S3_E2E_MARKER=%d", time.Now().UnixNano())}
	t.Cleanup(func() {
		if pids := e.leftovers(); len(pids) > 0 {
			t.Errorf("processes left behind: %v", pids)
		}
	})
	keys := func(prefix string) []string {
		out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("team-state"), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		var k []string
		for _, o := range out.Contents {
			k = append(k, aws.ToString(o.Key))
		}
		return k
	}

	t.Run("run on one machine, resume on another", func(t *testing.T) {
		e.t = t
		const state = "s3://team-state/dr"
		dirA, homeA, dirB, homeB := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
		if err := os.WriteFile(filepath.Join(dirA, "hello.yaml"), []byte(s3HelloRunbook), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e.run(dirA, e.env(homeA), "plugins", "lock", "hello.yaml"); r.code != 0 {
			t.Fatalf("plugins lock: %d\n%s", r.code, r.stderr)
		}
		r := e.run(dirA, e.env(homeA), "run", "hello.yaml", "--state", state, "-o", "json")
		if r.code != 3 {
			t.Fatalf("run: exit %d, want 3 (paused)\n%s", r.code, r.stderr)
		}
		id := r.events()[0].RunID

		r = e.run(dirB, e.env(homeB), "runs", "--state", state, "-o", "json")
		var sum journal.RunSummary
		if r.code != 0 || json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &sum) != nil || sum.RunID != id || sum.Status != journal.StatusPaused {
			t.Fatalf("runs from elsewhere: exit %d, %q\n%s", r.code, r.stdout, r.stderr)
		}
		r = e.run(dirB, e.env(homeB), "resume", id, "--approve", "confirm", "--state", state, "-o", "json")
		if r.code != 0 {
			t.Fatalf("resume from elsewhere: exit %d\n%s", r.code, r.stderr)
		}
		evs := r.events()
		fin := evs[len(evs)-1]
		if fin.Type != journal.RunFinished || fin.Outputs["greeting"] != "Hello, again!" {
			t.Errorf("resumed run ended with %+v", fin)
		}
		if evs[0].Type != journal.RunResumed || evs[0].Seq < 5 {
			t.Errorf("resume's first event: %+v, want run_resumed continuing the numbering", evs[0])
		}
		for _, d := range []string{dirA, dirB, homeA, homeB} {
			if _, err := os.Stat(filepath.Join(d, journal.DefaultDirName)); !os.IsNotExist(err) {
				t.Errorf("a local state directory was created in %s", d)
			}
		}
		objs := keys("dr/")
		if len(objs) != int(fin.Seq) || objs[0] != "dr/runs/"+id+"/0000000001.json" {
			t.Errorf("objects in the bucket: %v, want the %d journal records and no lock", objs, fin.Seq)
		}

		// The command the summary prints to continue a paused run carries
		// the S3 state: pasted into a shell elsewhere, it resumes the run.
		r = e.run(dirA, e.env(homeA), "run", "hello.yaml", "--state", state)
		if r.code != 3 {
			t.Fatalf("run: exit %d, want 3 (paused)\n%s", r.code, r.stderr)
		}
		_, hint, ok := strings.Cut(r.stdout, "continue with: ")
		hint, _, _ = strings.Cut(hint, "\n")
		if !ok || !strings.Contains(hint, "--state "+state) {
			t.Fatalf("no resume command with the state in:\n%s", r.stdout)
		}
		if p := e.paste(dirB, e.env(homeB), hint); p.code != 0 || !strings.Contains(p.stdout, "succeeded") {
			t.Fatalf("pasted %s: exit %d\n%s%s", hint, p.code, p.stdout, p.stderr)
		}
	})

	t.Run("two runs at once, then a stale lock", func(t *testing.T) {
		e.t = t
		const state = "s3://team-state/race"
		dir, home := t.TempDir(), t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "slow.yaml"), []byte(s3SlowRunbook), 0o644); err != nil {
			t.Fatal(err)
		}
		env := e.env(home, "RUNBOOK_S3_LOCK_LEASE=2s")
		type proc struct {
			id  string
			cmd *exec.Cmd
			out *bytes.Buffer
			err *bytes.Buffer
		}
		exited := make(chan int, 2)
		procs := make([]proc, 2)
		for i, id := range []string{"race-a", "race-b"} {
			cmd, out, errb := e.start(dir, env, "run", "slow.yaml", "--state", state, "--run-id", id, "-o", "json")
			procs[i] = proc{id, cmd, out, errb}
		}
		for i := range procs {
			go func() { _ = procs[i].cmd.Wait(); exited <- i }()
		}
		// The loser exits at once; the winner holds the lock for ten minutes.
		var loser int
		select {
		case loser = <-exited:
		case <-time.After(time.Minute):
			t.Fatal("neither run was refused")
		}
		winner := procs[1-loser]
		l := procs[loser]
		if code := l.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(l.err.String(), "is locked by run "+winner.id) || !strings.Contains(l.err.String(), "nothing was run") {
			t.Fatalf("the refused run: exit %d, want 1 naming %s\n%s", code, winner.id, l.err.String())
		}
		if strings.Contains(l.out.String(), "run_started") {
			t.Errorf("the refused run started:\n%s", l.out.String())
		}
		if len(keys("race/runs/"+l.id+"/")) != 0 {
			t.Error("the refused run wrote a journal")
		}

		deadline0 := time.Now().Add(time.Minute)
		// While the winner runs, its lease is current: unlock refuses.
		if r := e.run(dir, env, "unlock", "--state", state); r.code != 1 || !strings.Contains(r.stderr, winner.id) || !strings.Contains(r.stderr, "may still be in progress") {
			t.Errorf("unlock of a live run's lock: exit %d\n%s", r.code, r.stderr)
		}

		// The winner's machine dies in the middle of its step (once the
		// step's attempt is in the journal).
		for len(keys("race/runs/"+winner.id+"/")) < 3 {
			if time.Now().After(deadline0) {
				t.Fatal("the winning run never started its step")
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(-winner.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		// Its lock stays, refused first as current then as stale, never
		// taken over.
		deadline := time.Now().Add(time.Minute)
		for {
			r := e.run(dir, env, "run", "slow.yaml", "--state", state, "--run-id", "race-c")
			if r.code != 1 || !strings.Contains(r.stderr, "is locked by run "+winner.id) {
				t.Fatalf("run against the dead run's lock: exit %d\n%s", r.code, r.stderr)
			}
			if strings.Contains(r.stderr, "expired") && strings.Contains(r.stderr, "runbook unlock") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the dead run's lease never expired:\n%s", r.stderr)
			}
			time.Sleep(300 * time.Millisecond)
		}
		// The refusal names the unlock command, which is pasted as printed.
		refusal := e.run(dir, env, "run", "slow.yaml", "--state", state, "--run-id", "race-d")
		_, unlock, ok := strings.Cut(refusal.stderr, "remove the lock with `")
		unlock, _, _ = strings.Cut(unlock, "`")
		if !ok || !strings.Contains(unlock, "unlock --state "+state) {
			t.Fatalf("no unlock command in:\n%s", refusal.stderr)
		}
		r := e.paste(dir, env, unlock)
		if r.code != 0 || !strings.Contains(r.stdout, "removed the lock") || !strings.Contains(r.stdout, winner.id) {
			t.Fatalf("unlock of the stale lock: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = e.run(dir, env, "runs", "--state", state, "-o", "json")
		if !strings.Contains(r.stdout, `"run_id":"`+winner.id+`"`) || !strings.Contains(r.stdout, `"status":"incomplete"`) {
			t.Errorf("runs after the crash: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// The state is usable again.
		if err := os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(s3HelloRunbook), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e.run(dir, env, "run", "hello.yaml", "--state", state, "--auto-approve"); r.code != 0 {
			t.Errorf("a run after unlock: exit %d\n%s", r.code, r.stderr)
		}
		if k := keys("race/lock.json"); len(k) != 0 {
			t.Errorf("lock left after the last run: %v", k)
		}
	})

	t.Run("every call is one its permissions allow", func(t *testing.T) {
		r, err := contracts.Check(ctx, proxy.Exchanges(), true)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range r.Findings {
			t.Errorf("API model: %s", f)
		}
		var perms []spec.Permission
		for _, url := range []string{"s3://team-state/dr", "s3://team-state/race"} {
			p, err := s3store.Permissions(url)
			if err != nil {
				t.Fatal(err)
			}
			perms = append(perms, p...)
		}
		ops := map[string]bool{}
		for _, c := range r.Calls {
			if strings.Contains(c.UserAgent, ApproverUserAgentKey+"/sts") {
				// Who approved: STS GetCallerIdentity, which needs no
				// permission (AWS STS API Reference, GetCallerIdentity).
				if c.Service != "sts" || c.Operation != "GetCallerIdentity" {
					t.Errorf("%s %s made as the approver's identity lookup", c.Service, c.Operation)
				}
				continue
			}
			if !strings.Contains(c.UserAgent, s3store.UserAgentKey+"/s3") {
				t.Errorf("%s %s does not say it is the state's: User-Agent %q", c.Service, c.Operation, c.UserAgent)
				continue
			}
			ops[c.Operation] = true
			needs, ok := contracts.Needs(c, "123456789012")
			if !ok {
				t.Fatalf("no IAM action known for %s %s", c.Service, c.Operation)
			}
			for _, n := range needs {
				if !contracts.Declares(perms, n) {
					t.Errorf("the S3 state called %s %s, which needs %s on %s: not in s3store.Permissions", c.Service, c.Operation, n.Action, n.Resource)
				}
			}
		}
		for _, op := range []string{"HeadBucket", "PutObject", "GetObject", "DeleteObject", "ListObjectsV2"} {
			if !ops[op] {
				t.Errorf("no %s among the state's calls %v", op, ops)
			}
		}
	})

	t.Run("bad state URLs", func(t *testing.T) {
		e.t = t
		dir, home := t.TempDir(), t.TempDir()
		for url, want := range map[string]string{
			"s3://Bad_Bucket/x":       "not a valid bucket name",
			"s3://team-state/x?foo=1": "unknown parameter",
			"s3://no-such-bucket-1/x": "does not exist",
		} {
			r := e.run(dir, e.env(home), "runs", "--state", url)
			if r.code == 0 || !strings.Contains(r.stderr, want) {
				t.Errorf("--state %s: exit %d, want an error with %q\n%s", url, r.code, want, r.stderr)
			}
		}
	})
}
