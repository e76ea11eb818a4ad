// Command runbook-plugin-dns is the runbook plugin for DNS: pointing a name
// at the active region (see docs/plugins/dns.md). Each DNS provider is a
// subpackage exporting Action(); adding one is one line below.
package main

import (
	"github.com/runbookhq/runbook/plugins/dns/cloudflare"
	"github.com/runbookhq/runbook/plugins/dns/resolve"
	"github.com/runbookhq/runbook/plugins/dns/route53"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	plugin.Serve(plugin.Info{Name: "dns", Version: version},
		route53.Action(),
		route53.ReadAction(),
		route53.AliasesAction(),
		route53.FailoverAction(),
		cloudflare.Action(),
		cloudflare.CheckAction(),
		resolve.Action(),
	)
}
