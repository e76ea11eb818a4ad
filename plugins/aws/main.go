// Command runbook-plugin-aws is the runbook plugin for AWS: Aurora Global,
// ECS, auto scaling, IoT Core, S3 and CloudFront actions (see
// docs/plugins/aws.md).
package main

import (
	"github.com/runbookhq/runbook/plugins/aws/actions"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	plugin.Serve(plugin.Info{Name: "aws", Version: version}, actions.All()...)
}
