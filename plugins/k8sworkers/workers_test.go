package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

const ns = "spacelift-workers"
const controller = "spacelift-workerpool-controller"

func restartArgs(extra map[string]any) map[string]any {
	p := map[string]any{"namespace": ns, "deployment": controller, "poll_interval": "1ms"}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func getDeployment(t *testing.T, c *fakeCluster, name string) *appsv1.Deployment {
	t.Helper()
	obj, err := c.cs.Tracker().Get(deploymentsGVR, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*appsv1.Deployment)
}

func countVerb(c *fakeCluster, verb, resource string) int {
	n := 0
	for _, a := range c.cs.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

func TestRolloutRestart(t *testing.T) {
	c := newFakeCluster(t, deployment(controller, 3, "7"))
	h := start(t, c.workers())
	before := time.Now().UTC().Truncate(time.Second)
	out, err := h.apply(plugintest.Context(t), "rollout_restart", "run-1/workers", restartArgs(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := getDeployment(t, c, controller)
	at := d.Spec.Template.Annotations[restartedAtAnnotation]
	ts, perr := time.Parse(time.RFC3339, at)
	if perr != nil || ts.Before(before) || d.Spec.Template.Annotations[restartKeyAnnotation] != "run-1/workers" || d.Spec.Template.Annotations["team"] != "platform" {
		t.Fatalf("template annotations = %v", d.Spec.Template.Annotations)
	}
	if d.Generation != 5 || d.Annotations[revisionAnnotation] != "8" {
		t.Fatalf("generation %d revision %s", d.Generation, d.Annotations[revisionAnnotation])
	}
	want := map[string]any{"namespace": ns, "deployment": controller, "restarted_at": at, "previous_restarted_at": "",
		"previous_revision": "7", "revision": "8", "patched": true, "replicas": 3.0, "updated_replicas": 3.0, "ready_replicas": 3.0, "available_replicas": 3.0}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("output %s = %v, want %v", k, out[k], v)
		}
	}
	got := h.messages()
	wantMsgs := []string{
		"current state",
		"deployment restarted; waiting for the rollout",
		"waiting for the deployment controller to observe the restart",
		"1 of 3 new replicas updated",
		"2 of 3 new replicas updated",
		"1 old replicas pending termination",
		"2 of 3 updated replicas available",
		"rollout complete: 3 of 3 replicas updated and available",
	}
	if strings.Join(got, "\n") != strings.Join(wantMsgs, "\n") {
		t.Fatalf("progress:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantMsgs, "\n"))
	}
	if n := countVerb(c, "patch", "deployments"); n != 1 {
		t.Fatalf("patches = %d", n)
	}

	// The same step again (a resume): no second restart, it only waits.
	out, err = h.apply(plugintest.Context(t), "rollout_restart", "run-1/workers", restartArgs(nil))
	if err != nil {
		t.Fatal(err)
	}
	if out["patched"] != false || out["restarted_at"] != at || countVerb(c, "patch", "deployments") != 1 || getDeployment(t, c, controller).Generation != 5 {
		t.Fatalf("re-run restarted again: %v", out)
	}

	// Another step (a different key) restarts again.
	out, err = h.apply(plugintest.Context(t), "rollout_restart", "run-2/workers", restartArgs(nil))
	if err != nil {
		t.Fatal(err)
	}
	if out["patched"] != true || out["previous_restarted_at"] != at || out["previous_revision"] != "8" || out["revision"] != "9" {
		t.Fatalf("second restart: %v", out)
	}
}

func TestRolloutRestartToleratesAPIBlips(t *testing.T) {
	c := newFakeCluster(t, deployment(controller, 1, "2"))
	h := start(t, c.workers())
	ctx := plugintest.Context(t)
	// Let the first Get (before the restart) through, then fail two.
	c.cs.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		c.failGets = 2
		c.mu.Unlock()
		return false, nil, nil
	})
	out, err := h.apply(ctx, "rollout_restart", "k", restartArgs(nil))
	if err != nil {
		t.Fatal(err)
	}
	if out["revision"] != "3" || strings.Count(h.logText(), "reading the deployment failed; still waiting") != 2 {
		t.Fatalf("outputs = %v\nlogs:\n%s", out, h.logText())
	}
}

func TestRolloutRestartFailures(t *testing.T) {
	cases := map[string]struct {
		setup     func(c *fakeCluster)
		params    map[string]any
		timeout   time.Duration
		retryable bool
		code      string
		contains  string
	}{
		"missing deployment": {
			params: map[string]any{"deployment": "nope"}, code: "NotFound", contains: `reading deployment spacelift-workers/nope: deployments.apps "nope" not found`,
		},
		"paused": {
			setup: func(c *fakeCluster) {
				d := getDeployment(c.t, c, controller).DeepCopy()
				d.Spec.Paused = true
				_ = c.cs.Tracker().Update(deploymentsGVR, d, ns)
			},
			code: "DeploymentPaused", contains: "kubectl rollout resume deployment/" + controller,
		},
		"progress deadline exceeded": {
			setup: func(c *fakeCluster) { c.deadline = true },
			code:  "RolloutFailed", contains: "the rollout exceeded its progress deadline",
		},
		"forbidden": {
			setup: func(c *fakeCluster) {
				c.cs.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, &apiStatusError{code: 403, reason: metav1.StatusReasonForbidden,
						msg: `deployments.apps "` + controller + `" is forbidden: User "ops" cannot patch resource "deployments"`}
				})
			},
			code: "Forbidden", contains: "cannot patch resource",
		},
		"never completes": {
			setup:     func(c *fakeCluster) { c.stuck = 2 },
			timeout:   300 * time.Millisecond,
			retryable: true, code: "Timeout", contains: "(last: 2 of 3 new replicas updated)",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := newFakeCluster(t, deployment(controller, 3, "7"))
			if tc.setup != nil {
				tc.setup(c)
			}
			h := start(t, c.workers())
			call := plugin.ApplyCall{RunID: "r", StepID: "s", Action: "rollout_restart", Attempt: 1, IdempotencyKey: "r/s", Params: restartArgs(tc.params)}
			if tc.timeout > 0 {
				call.Deadline = time.Now().Add(tc.timeout)
			}
			_, err := h.applyCall(plugintest.Context(t), call)
			pe := pluginError(t, err)
			if pe.Retryable != tc.retryable || pe.Code != tc.code || !strings.Contains(pe.Message, tc.contains) {
				t.Fatalf("err = %+v\nwant code %s retryable %v containing %q", pe, tc.code, tc.retryable, tc.contains)
			}
		})
	}
}

func TestRolloutRestartStopsOnCancel(t *testing.T) {
	c := newFakeCluster(t, deployment(controller, 3, "7"))
	c.stuck = 1
	h := start(t, c.workers())
	ctx, cancel := context.WithCancel(plugintest.Context(t))
	gets := 0 // reactors run under the fake's lock: no Actions() in here
	c.cs.PrependReactor("get", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		if gets++; gets > 5 {
			cancel()
		}
		return false, nil, nil
	})
	_, err := h.apply(ctx, "rollout_restart", "k", restartArgs(nil))
	if err == nil {
		t.Fatal("want an error after cancellation")
	}
}

func TestRolloutRestartPlan(t *testing.T) {
	d := deployment(controller, 3, "7")
	d.Spec.Template.Annotations[restartedAtAnnotation] = "2025-01-01T00:00:00Z"
	c := newFakeCluster(t, d)
	h := start(t, c.workers())
	ctx := plugintest.Context(t)
	plan, err := h.Plan(ctx, plugin.PlanCall{Action: "rollout_restart", Params: restartArgs(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary != "restart deployment spacelift-workers/"+controller+" (3 replicas, revision 7) and wait for the rollout" || len(plan.Changes) != 1 {
		t.Fatalf("plan = %+v", plan)
	}
	ch := plan.Changes[0]
	if ch.Kind != plugin.ChangeAction || ch.Before != "2025-01-01T00:00:00Z" || !ch.AfterUnknown || ch.Field != "spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]" {
		t.Fatalf("change = %+v", ch)
	}
	plan, err = h.Plan(ctx, plugin.PlanCall{Action: "rollout_restart", Params: restartArgs(map[string]any{"deployment": "nope"})})
	if err != nil || len(plan.Diagnostics) != 1 || !strings.Contains(plan.Diagnostics[0].Summary, "not found") {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}
	if countVerb(c, "patch", "deployments") != 0 {
		t.Fatal("plan patched the deployment")
	}
}

const selector = "app.kubernetes.io/name=spacelift-worker"

var workerLabels = map[string]string{"app.kubernetes.io/name": "spacelift-worker"}

func podParams(extra map[string]any) map[string]any {
	p := map[string]any{"namespace": ns, "selector": selector, "poll_interval": "1ms"}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func workerPods() []runtime.Object {
	return []runtime.Object{
		pod("worker-a", workerLabels, corev1.PodRunning, true),
		pod("worker-b", workerLabels, corev1.PodRunning, true),
		pod("worker-c", workerLabels, corev1.PodPending, false),
		pod("worker-done", workerLabels, corev1.PodSucceeded, false),
		pod("controller-x", map[string]string{"app": "other"}, corev1.PodRunning, true),
	}
}

func listPods(t *testing.T, c *fakeCluster) []corev1.Pod {
	t.Helper()
	obj, err := c.cs.Tracker().List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), ns)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*corev1.PodList).Items
}

func TestDeletePods(t *testing.T) {
	c := newFakeCluster(t, workerPods()...)
	h := start(t, c.workers())
	out, err := h.apply(plugintest.Context(t), "delete_pods", "k", podParams(map[string]any{"grace_period_seconds": 30}))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out["deleted_pods"]) != "[worker-a worker-b worker-c]" || out["deleted"] != 3.0 || out["ready"] != 3.0 ||
		fmt.Sprint(out["ready_pods"]) != "[worker-r1 worker-r2 worker-r3]" {
		t.Fatalf("outputs = %v", out)
	}
	var names []string
	for _, p := range listPods(t, c) {
		names = append(names, p.Name)
	}
	if fmt.Sprint(names) != "[controller-x worker-done worker-r1 worker-r2 worker-r3]" {
		t.Fatalf("pods now = %v", names)
	}
	for _, a := range c.cs.Actions() {
		if da, ok := a.(k8stesting.DeleteAction); ok {
			o := da.GetDeleteOptions()
			if o.GracePeriodSeconds == nil || *o.GracePeriodSeconds != 30 || o.Preconditions == nil || o.Preconditions.UID == nil ||
				string(*o.Preconditions.UID) != "old-"+da.GetName() {
				t.Errorf("delete of %s: options %+v", da.GetName(), o)
			}
		}
	}
	wantMsgs := []string{
		"deleting 3 pods",
		"replacement pods ready: 0 of 3; starting: worker-r1: Pending, worker-r2: Pending, worker-r3: Pending",
		"replacement pods ready: 0 of 3; starting: worker-r1: Running, worker-r2: Running, worker-r3: Running",
		"replacement pods ready: 3 of 3",
	}
	if got := h.messages(); strings.Join(got, "\n") != strings.Join(wantMsgs, "\n") {
		t.Fatalf("progress:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantMsgs, "\n"))
	}
}

func TestDeletePodsWaitsOutTerminatingPods(t *testing.T) {
	// The replacements appear only as the old pods go; until then, the old
	// pods (still listed, terminating) must not count.
	c := newFakeCluster(t, pod("worker-a", workerLabels, corev1.PodRunning, true))
	h := start(t, c.workers())
	var sawTerminating bool
	c.cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		for _, p := range listPods(t, c) {
			if p.DeletionTimestamp != nil {
				sawTerminating = true
			}
		}
		return false, nil, nil
	})
	out, err := h.apply(plugintest.Context(t), "delete_pods", "k", podParams(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !sawTerminating || out["ready"] != 1.0 || fmt.Sprint(out["ready_pods"]) != "[worker-r1]" {
		t.Fatalf("outputs = %v, saw terminating = %v", out, sawTerminating)
	}
}

func TestDeletePodsFailures(t *testing.T) {
	cases := map[string]struct {
		objs      []runtime.Object
		setup     func(c *fakeCluster)
		params    map[string]any
		timeout   time.Duration
		retryable bool
		code      string
		contains  string
		deleted   int
	}{
		"no pods match": {
			objs: workerPods(), params: map[string]any{"selector": "app=nothing"},
			code: "NoPods", contains: "no running pods match app=nothing in namespace spacelift-workers",
		},
		"empty selector": {
			objs: workerPods(), params: map[string]any{"selector": " "},
			code: "InvalidParams", contains: "would match every pod",
		},
		"replacement never pulls its image": {
			objs: workerPods(),
			setup: func(c *fakeCluster) {
				c.podSteps = []podState{{phase: corev1.PodPending, reason: "ContainerCreating"}, {phase: corev1.PodPending, reason: "ImagePullBackOff"}}
			},
			timeout:   300 * time.Millisecond,
			retryable: true, code: "Timeout", contains: "worker-r1: ImagePullBackOff", deleted: 3,
		},
		"forbidden": {
			objs: workerPods(),
			setup: func(c *fakeCluster) {
				c.cs.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, &apiStatusError{code: 403, reason: metav1.StatusReasonForbidden, msg: `pods "worker-a" is forbidden: User "ops" cannot delete resource "pods"`}
				})
			},
			code: "Forbidden", contains: "cannot delete resource",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := newFakeCluster(t, tc.objs...)
			if tc.setup != nil {
				tc.setup(c)
			}
			h := start(t, c.workers())
			call := plugin.ApplyCall{RunID: "r", StepID: "s", Action: "delete_pods", Attempt: 1, Params: podParams(tc.params)}
			if tc.timeout > 0 {
				call.Deadline = time.Now().Add(tc.timeout)
			}
			_, err := h.applyCall(plugintest.Context(t), call)
			pe := pluginError(t, err)
			if pe.Retryable != tc.retryable || pe.Code != tc.code || !strings.Contains(pe.Message, tc.contains) {
				t.Fatalf("err = %+v\nwant code %s retryable %v containing %q", pe, tc.code, tc.retryable, tc.contains)
			}
			gone := 0
			for _, old := range []string{"worker-a", "worker-b", "worker-c"} {
				if _, err := c.cs.Tracker().Get(podsGVR, ns, old); err != nil {
					gone++
				}
			}
			if gone != tc.deleted {
				t.Errorf("%d old pods gone, want %d", gone, tc.deleted)
			}
		})
	}
}

func TestDeletePodsPlanAndValidate(t *testing.T) {
	c := newFakeCluster(t, workerPods()...)
	h := start(t, c.workers())
	ctx := plugintest.Context(t)
	plan, err := h.Plan(ctx, plugin.PlanCall{Action: "delete_pods", Params: podParams(nil)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range plan.Changes {
		got = append(got, fmt.Sprintf("%s %s (%v)", ch.Kind, ch.Resource, ch.Before))
	}
	want := "[delete pod spacelift-workers/worker-a (Running) delete pod spacelift-workers/worker-b (Running) delete pod spacelift-workers/worker-c (Pending)]"
	if fmt.Sprint(got) != want || plan.Summary != "delete 3 pods matching "+selector+" in namespace spacelift-workers and wait for 3 Running and Ready replacements" {
		t.Fatalf("plan = %s / %q", got, plan.Summary)
	}
	plan, err = h.Plan(ctx, plugin.PlanCall{Action: "delete_pods", Params: podParams(map[string]any{"selector": "app=nothing"})})
	if err != nil || len(plan.Diagnostics) != 1 {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}
	if countVerb(c, "delete", "pods") != 0 {
		t.Fatal("plan deleted pods")
	}

	for sel, ok := range map[string]bool{selector: true, "": false, "a in (b": false, "app=x,tier!=db": true} {
		diags, err := h.Validate(ctx, "delete_pods", podParams(map[string]any{"selector": sel}), nil)
		if err != nil || (len(diags) == 0) != ok {
			t.Errorf("selector %q: diags = %+v, err = %v", sel, diags, err)
		}
	}
}

func TestDescribe(t *testing.T) {
	h := start(t, newFakeCluster(t).workers())
	d, err := h.Describe(plugintest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := d.Action("rollout_restart")
	dp, _ := d.Action("delete_pods")
	if r == nil || !r.Idempotent || !r.SupportsPlan || dp == nil || dp.Idempotent || !dp.SupportsPlan {
		t.Fatalf("actions = %+v", d.Actions)
	}
	if r.Params.Properties["poll_interval"].Default != "2s" || !r.Params.IsRequired("namespace") {
		t.Fatalf("params = %+v", r.Params)
	}
}
