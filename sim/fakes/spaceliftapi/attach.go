package spaceliftapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/runbookhq/runbook/sim/fakes/kubeapi"
)

// This file connects the worker model to what runs the workers: the
// emulator's auto-scaling groups and the Kubernetes fake's pods, and reads
// the broker domain through the emulator's Route 53 API.

// emulatorEvent is what the emulator reports about an instance of a
// watched auto-scaling group (its /_sim/hooks control API): "started" once
// the instance has booted (it left Pending), "stopped" once it has left
// the group.
type emulatorEvent struct {
	Type       string `json:"type"`
	Region     string `json:"region"`
	Group      string `json:"group"`
	InstanceID string `json:"instance_id"`
}

func asgKey(region, group string) string { return region + "/" + group }

func asgProcess(e emulatorEvent) string {
	return "asg:" + e.Region + "/" + e.Group + "/" + e.InstanceID
}

// apply starts or stops the worker of one instance. The process's metadata
// is what Spacelift's EC2 worker pool module sets on its workers
// (SPACELIFT_METADATA_asg_id and SPACELIFT_METADATA_instance_id, in
// spacelift-io/terraform-aws-spacelift-workerpool-on-ec2's user data).
func (s *Server) applyEmulatorEvent(ctx context.Context, e emulatorEvent) {
	s.mu.Lock()
	pool, ok := s.asgPools[asgKey(e.Region, e.Group)]
	s.mu.Unlock()
	if !ok {
		return
	}
	switch e.Type {
	case "instance-started":
		_, _ = s.StartWorker(ctx, pool, asgProcess(e), map[string]string{"asg_id": e.Group, "instance_id": e.InstanceID})
	case "instance-stopped":
		s.StopWorker(asgProcess(e))
	}
}

// emulatorEvents receives the emulator's hook calls. The emulator waits
// for the answer before it answers the request that caused the events, so
// a worker has looked its broker up before anyone can see its instance
// InService (and, say, move the broker record next).
func (s *Server) emulatorEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var body struct {
		Events []emulatorEvent `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "invalid JSON", http.StatusBadRequest)
		return
	}
	for _, e := range body.Events {
		s.applyEmulatorEvent(r.Context(), e)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

func postJSON(ctx context.Context, url string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// AttachASG makes the instances of an emulated auto-scaling group workers
// of pool poolID: it registers a hook with the emulator (emulatorURL, the
// emulator's own address, not a fault proxy's), starts a worker for every
// instance already booted, and from then on one for each instance that
// boots, and stops the worker of each instance that leaves the group. The
// returned function removes the hook.
func (s *Server) AttachASG(ctx context.Context, emulatorURL, poolID, region, group string) (detach func() error, err error) {
	s.mu.Lock()
	s.asgPools[asgKey(region, group)] = poolID
	s.mu.Unlock()
	var reg struct {
		ID        string          `json:"id"`
		Instances []emulatorEvent `json:"instances"`
	}
	base := strings.TrimRight(emulatorURL, "/")
	err = postJSON(ctx, base+"/_sim/hooks", map[string]any{
		"url":                s.url + "/_emulator/events",
		"autoscaling_groups": []map[string]string{{"region": region, "group": group}},
	}, &reg)
	if err != nil {
		return nil, fmt.Errorf("spaceliftapi: registering with the emulator: %w", err)
	}
	for _, e := range reg.Instances {
		s.applyEmulatorEvent(ctx, e)
	}
	return func() error {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return postJSON(c, base+"/_sim/hooks/remove", map[string]string{"id": reg.ID}, nil)
	}, nil
}

// AttachPods makes the pods of the Kubernetes fake in namespace that match
// selector workers of pool poolID: the running ones now, each new one when
// its container starts, and a pod that goes away stops its worker.
func (s *Server) AttachPods(ctx context.Context, kube *kubeapi.Server, poolID, namespace, selector string) error {
	sel, err := labels.Parse(selector)
	if err != nil {
		return err
	}
	on := func(ev kubeapi.PodEvent) {
		if ev.Namespace != namespace || !sel.Matches(labels.Set(ev.Labels)) {
			return
		}
		process := "pod:" + ev.Namespace + "/" + ev.Name
		switch ev.Type {
		case kubeapi.PodStarted:
			_, _ = s.StartWorker(ctx, poolID, process, map[string]string{"namespace": ev.Namespace, "pod": ev.Name})
		case kubeapi.PodStopped:
			s.StopWorker(process)
		}
	}
	for _, ev := range kube.WatchPods(on) {
		on(ev)
	}
	return nil
}

// Route53Resolver resolves names from Route 53 through the AWS API (the
// emulator's, in the simulation): the value of the record of that name
// (CNAME, or an alias target, or the first address of an A/AAAA record) in
// the most specific hosted zone containing it. It answers what the record
// says now, as a resolver would once the change has propagated and its
// cache expired: it models neither propagation nor a resolver cache.
type Route53Resolver struct {
	Client *route53.Client
	// ZoneID restricts the look-up to one hosted zone; empty: the most
	// specific zone whose name contains the name.
	ZoneID string
}

// Resolve implements Resolver.
func (r Route53Resolver) Resolve(ctx context.Context, name string) (string, error) {
	name = normName(name)
	zone := r.ZoneID
	if zone == "" {
		best := ""
		p := route53.NewListHostedZonesPaginator(r.Client, &route53.ListHostedZonesInput{})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return "", err
			}
			for _, z := range out.HostedZones {
				zn := normName(aws.ToString(z.Name))
				if (name == zn || strings.HasSuffix(name, "."+zn)) && len(zn) > len(best) && (z.Config == nil || !z.Config.PrivateZone) {
					best, zone = zn, aws.ToString(z.Id)
				}
			}
		}
		if zone == "" {
			return "", fmt.Errorf("no hosted zone contains %s", name)
		}
	}
	out, err := r.Client.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(zone), StartRecordName: aws.String(name)})
	if err != nil {
		return "", err
	}
	for _, rr := range out.ResourceRecordSets {
		if normName(aws.ToString(rr.Name)) != name {
			continue
		}
		if rr.AliasTarget != nil {
			return normName(aws.ToString(rr.AliasTarget.DNSName)), nil
		}
		switch rr.Type {
		case "CNAME", "A", "AAAA":
			if len(rr.ResourceRecords) > 0 {
				return normName(aws.ToString(rr.ResourceRecords[0].Value)), nil
			}
		}
	}
	return "", errors.New("NXDOMAIN: no record named " + name)
}
