// Package scenarios holds the simulation scenarios: the real runbook binary
// and plugins run runbooks/failover.yaml and failback.yaml against the
// emulated two-region installation (sim/emulator behind sim/faultproxy), and
// every assertion reads the end state back through the AWS APIs.
package scenarios
