// Command simctl runs the DR simulation in the background for drills and demos:
// the emulator, the fault proxy in front of it, the seeded two-region
// installation, and a DNS server answering for its hosted zones (as Route 53's
// name servers would), with an env file to source.
//
//	simctl up     [--dir .sim] [--port 4566] [--emulator-port 0] [--timing ci|instant|realistic|FILE]
//	              [--seed 1] [--primary eu-west-1] [--dr eu-west-3] [--no-topology] [--dns-port 0]
//	simctl down   [--dir .sim]
//	simctl status [--dir .sim]
//	simctl reset  [--dir .sim]          forget everything, clear faults, seed again
//	simctl fault  [--dir .sim] latency DURATION [--jitter D] [filters]
//	simctl fault  errors RATE [--kind throttle|5xx|503] [--after-forward] [--limit N] [filters]
//	simctl fault  fail SERVICE [OPERATION] [--kind ...] [--region R]
//	simctl fault  blackhole REGION [--mode hang|close] [--hold D]
//	simctl fault  list | remove ID | clear | seed N
//	simctl fault  log [filters] | count [filters]     (filters: --region --service --operation)
//	simctl timing [--dir .sim] [show] | preset NAME | set NAME=SECONDS... | advance DURATION
//
// Every process up starts runs in its own process group, recorded in
// <dir>/emulator.pid, <dir>/proxy.pid and <dir>/dns.pid; down kills the groups.
// The DNS server's address (UDP and TCP on 127.0.0.1) is RUNBOOK_SIM_DNS in the
// env file: give it as dns.resolve_check's nameservers and resolver.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
