// Command runbook-plugin-notify tells people what a runbook did. Its one
// action, cookie_invalidation_notice, tells users that a failover invalidated
// their sessions and what to do about it, on Slack, a generic JSON webhook
// and the run's console.
package main

import "github.com/runbookhq/runbook/sdk/plugin"

// version is the plugin's version, reported by Describe.
const version = "0.1.0"

func main() {
	plugin.Serve(plugin.Info{Name: "notify", Version: version}, noticeAction(newSender()))
}
