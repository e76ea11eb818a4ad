package main

// notes explains the figures: what bounds each one, what was changed to
// reach the targets, and what was tried where a target does not hold. It is
// kept with the generator so the document stays whole when it is rewritten.
const notes = `**Per-step overhead.** A no-op step is three journal records, one gRPC stream over AutoMTLS to the plugin
process and back, and the expression environment for the next step. Two things made it grow with the runbook and are
fixed: the engine rebuilt the map of every finished step's status, outputs and times for each evaluation (quadratic:
1,000 in-process steps cost 1.27 ms each, now ~60 µs), and the host read /proc/<pid>/stat (four system calls) before
each call to tell a dead plugin, now one waitid(WNOWAIT). On this machine system calls are expensive (a sandboxed
kernel): the profile of BenchmarkRunNoopSteps is about 40% system calls (journal writes, the gRPC socket, futex
wake-ups) and the interpreter's own CPU is under 10%. What remains per step is the round trip through a second process
over TLS. The target is a median; the Go benchmark's ns/step is a mean over whole runs and carries the tail (GC, the
occasional slow wake-up). Both move by a third between runs on this VM with nothing changed in the per-step path: the
CLI median on tmpfs was 0.415 ms in the run before this one and 0.547 ms in this one, the Go mean 0.600 ms and then
0.402 ms; the target holds in one of the two measurements of each run, so it is at the edge, not met with margin. Batching journal
writes into the next barrier would save two write calls per step but would lose records to a kill -9 of the
interpreter (a write reaches the page cache and survives the process; a buffer does not), so it was not done.

**fsync.** The journal used to fsync every record (three per step). It now fsyncs only records after which the engine
acts or stops (attempt_started, approvals, run_paused, run_interrupted, run_finished; journal.Barrier); the records in
between are written at once and made durable by the next barrier, or within 100 ms. A machine crash inside that window
can lose the outcome of a step that finished; resume then treats that step as cut off mid-action (re-run if
idempotent, otherwise the operator decides), exactly as for a crash during the action. The per-step figure is the
marginal count (1,000 steps minus 100 steps); the few others are the run's start and end, the state directory and the lock.

**Against Ansible.** The figure compares the slope of wall time over N, so both tools' start-up is left out. Ansible
runs each task's module as a new Python process and re-renders the play's context per task; runbook keeps one plugin
process per plugin for the whole run and sends each step over an existing gRPC connection.

**Start-up.** Where it went (five plugins, 181 MB of executables): validation describes each plugin with
` + "`<plugin> describe`" + ` (a process each) after hashing it; the host then hashed each executable again, go-plugin's
SecureConfig hashed it a third time before exec, and each plugin then does the go-plugin handshake with AutoMTLS (an
ECDSA P-521 key and certificate generated on each side) and answers Describe over gRPC. sha256 runs at ~750 MB/s here,
so the three passes alone were ~0.7 s of CPU. Each binary is now hashed once per process (the digest remembered with
the file's device, inode, size, mtime and ctime, never for a file changed in the last 2 s, the way git treats racily
clean index entries; the host checks the pin itself right before exec, as SecureConfig did), which took the five-plugin
start from 1.07 s to ~350 ms; then digests and descriptions were kept on disk between runs (~/.cache/runbook, private to
the user; a description by the executable's digest and the whole environment; docs/decisions.md), so a run after the
first neither hashes the executables nor runs ` + "`describe`" + `: ~350 ms to the figure above, and ` + "`runbook validate`" + ` of the
same file from ~170 ms to ~15 ms. A binary swapped or rewritten between validation and start is still refused
(test/acceptance integrity tests). What remains is starting five Go processes of 17–71 MB on two cores: their package
initialisation (~27 ms of CPU each for the AWS SDK's service schemas and for client-go's scheme registration, under
10 ms for the others, by GODEBUG=inittrace=1), page faults on their code, and the AutoMTLS handshakes. This figure
varies by tens of milliseconds from one run of this VM to the next (163 ms here, 228–235 ms in three later runs of
` + "`bench -only startup`" + `), so the target holds at best at the edge. Next steps, not taken here: verify-and-exec from one
file descriptor (hash the open file, exec /proc/self/fd/N, closing the check-then-exec window SecureConfig also has),
and a P-256 key for AutoMTLS (go-plugin's choice is P-521; a TLS config of our own on both sides).

**Validation.** Identical expressions (the same ` + "`${{ inputs.region }}`" + ` in every step) are compiled once against
the same environment type and each expression's references are parsed once (process-wide caches, keyed by source and a
canonical form of the environment type); an exact ` + "`${{ e }}`" + ` takes its static type from the compiled program
instead of compiling it a second time. What remains for 1,000 steps (cold, in process: the Cold benchmark) is about a third expr-lang's
compiler (parse, type check and a fresh configuration with its builtin table for every Compile, which its API does not
let us reuse), a seventh YAML decoding with positions, the runbook's own reference checks, schema checks of every
parameter, and the garbage collector (a quarter to a third of the CPU profile). The CLI's fixed cost (the 1-step row:
process start, and with the on-disk cache no hashing or describe of the AWS plugin) is now ~12 ms. Next steps: one
expr-lang parse per expression shared by the reference checks and the compiler (two today), and a configuration built
once per environment shape.

**Failover.** The critical path of the model is the S3 replication backlog drained (a marker object through each of
the five buckets, side by side), the db switchover, then the services stable, then their targets healthy behind the
load balancer, then the two DNS records side by side, then the worker refresh and stopping the old region side by
side. The S3 drain and the target health are waits AWS's documents call for (docs/dr-guide.md): they are on the path,
one after another, not beside it. Every wait one at a time adds the second DNS
record and stopping the old region; the runbook already runs those side by side, so its floor is the critical path
and the 60% target cannot hold for this runbook: critical path over the sum of waits is the ratio in the table, well
above 60%. What keeps it there is a safety ordering kept on purpose (docs/decisions.md): the services start only once
the database writer is in the DR region, and the workers restart only after the broker record points at the DR region
(else they reconnect to the old broker). The runbook was not reordered to win a benchmark. The gap between the wall
time and the critical path is start-up, the preflight reads, the plugins' own API calls around each wait, and the
detection delay of each wait (up to one poll interval, 2 s by default).

**Polling.** Each wait polls at poll_interval (2 s by default) and stops at the first read that shows the resource
ready, so it notices readiness within one interval. The waits used to read at once and then every interval, one read
more than the interval allows (4 reads for a 6 s Route 53 change: 0.67 per second); a wait on an operation the action
has just started (a switchover or failover issued, desired counts changed, an instance refresh started, a Route 53
change PENDING) now reads first after one interval (awscommon.PollAfter), which holds the rate to one read per interval
and notices completion no later. A wait that joins an operation already under way (resume), or services whose count
did not change, still reads at once.

**Memory.** The interpreter keeps every step's state and outputs for expressions and the summary, so its peak grows
with the number of steps (the 10,000-step row). Peak RSS counts the pages of the executable a process has touched: for
the plugins that link the AWS SDK or client-go most of it is file-backed (code and the runtime's tables, shared with the
page cache), and their private memory is the last column. The k8sworkers plugin goes over 40 MiB of RSS on file-backed
pages alone: it links the whole typed client-go clientset and initialises its schemes at start. Linking only the
clients it uses (apps/v1, core/v1), or a dynamic client, would shrink the binary and its start-up; that is a change to
the plugin, proposed rather than made here.

**Parallel groups.** Children start as soon as a slot is free; the group's overhead over the ideal is the launch of
each wave's attempts and their journal barriers.`
