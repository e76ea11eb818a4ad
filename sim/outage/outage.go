// Package outage starts and ends a regional outage of the DR simulation with one
// call. A real outage has two sides, and the simulation keeps them in two places:
//
//   - the region's API does not answer: the fault proxy black-holes every request
//     whose SigV4 scope names the region (faultproxy.Proxy.BlackholeRegion);
//   - AWS's own state goes on without it: the emulator is told the region is dark
//     (emulator.SetRegionDark), so an Aurora global cluster with a member there is
//     not `available` again until it returns, a failover's old primary rejoins and
//     resynchronises only then, and replication-lag metrics stop.
//
// Start does both; End undoes both. A harness that black-holes the proxy alone gets
// an unreachable region whose global cluster nonetheless recovers as if it had
// answered, which is more lenient than AWS.
package outage

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// Proxy is the part of the fault proxy an outage uses; *faultproxy.Proxy has it.
type Proxy interface {
	BlackholeRegion(region, mode string) (string, error)
	RemoveRule(id string) bool
}

var _ Proxy = (*faultproxy.Proxy)(nil)

// Outage is one region made dark by Start.
type Outage struct {
	Region string

	proxy Proxy
	emu   *emulator.Emulator
	rule  string

	mu    sync.Mutex
	ended bool
}

// Start makes region dark: p black-holes its requests (mode faultproxy.Hang: held
// unanswered until the client gives up, or faultproxy.Close) and e models the outage.
// On error nothing is left changed.
func Start(ctx context.Context, p Proxy, e *emulator.Emulator, region, mode string) (*Outage, error) {
	if region == "" {
		return nil, errors.New("outage: no region")
	}
	rule, err := p.BlackholeRegion(region, mode)
	if err != nil {
		return nil, fmt.Errorf("outage: black-holing %s in the fault proxy: %w", region, err)
	}
	if err := e.SetRegionDark(ctx, region, true); err != nil {
		p.RemoveRule(rule)
		return nil, fmt.Errorf("outage: making %s dark in the emulator: %w", region, err)
	}
	return &Outage{Region: region, proxy: p, emu: e, rule: rule}, nil
}

// End brings the region back: its requests are answered again and the emulator
// sees it return (an Aurora failover's old primary rejoins and starts its resync
// now). Calling it again does nothing.
func (o *Outage) End(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return nil
	}
	o.proxy.RemoveRule(o.rule)
	if err := o.emu.SetRegionDark(ctx, o.Region, false); err != nil {
		return fmt.Errorf("outage: ending %s in the emulator: %w", o.Region, err)
	}
	o.ended = true
	return nil
}
