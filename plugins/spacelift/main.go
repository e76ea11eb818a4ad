// Command runbook-plugin-spacelift acts on a self-hosted Spacelift
// installation itself: it cycles a worker pool through the GraphQL API (so
// workers reconnect to the broker the IoT domain now points at), reads the
// pool's workers and waits until enough have registered since the broker
// record moved (the proof they reconnected), and rewrites the installer's
// per-region config files after a failover.
package main

import "github.com/runbookhq/runbook/sdk/plugin"

// version is the plugin's version, reported by Describe.
const version = "0.1.0"

func main() {
	plugin.Serve(plugin.Info{Name: "spacelift", Version: version}, cycleAction(), installerConfigAction(), poolWorkersAction(), reconnectedAction())
}
