// Command runbook-plugin-k8sworkers restarts Kubernetes-hosted Spacelift
// workers so that they reconnect to the IoT broker the worker domain now
// points at: a kubectl-style rollout restart of the worker-pool controller
// Deployment, or deleting the worker pods and waiting for their
// replacements.
package main

import "github.com/runbookhq/runbook/sdk/plugin"

// version is the plugin's version, reported by Describe.
const version = "0.1.0"

func main() {
	w := &workers{connect: connect}
	plugin.Serve(plugin.Info{Name: "k8sworkers", Version: version}, w.rolloutRestartAction(), w.deletePodsAction())
}
