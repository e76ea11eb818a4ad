package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// fakeCluster is client-go's fake clientset with reactors that do what the
// API server and the controllers would: bump a Deployment's generation when
// its pod template changes, roll the Deployment's status forward, and
// replace deleted pods with new ones that start and become ready.
//
// The controllers advance one step each time the action reads (a Get of the
// Deployment, a List of pods), so every test sees the same sequence.
type fakeCluster struct {
	t  *testing.T
	cs *fake.Clientset

	mu       sync.Mutex
	rollouts map[string]*rollout // deployment name -> rollout in progress
	// stuck, if set, makes rollouts stop at that phase index forever.
	stuck int
	// deadline, if set, makes a rollout fail with ProgressDeadlineExceeded.
	deadline bool
	// podSteps is how a replacement pod moves: phases it goes through.
	podSteps []podState
	uid      int
	// failGets makes that many Gets of a Deployment fail with 503 first.
	failGets int
}

type rollout struct {
	phases []appsv1.DeploymentStatus
	next   int
}

type podState struct {
	phase  corev1.PodPhase
	ready  bool
	reason string // a container's waiting reason
}

var normalPodSteps = []podState{
	{phase: corev1.PodPending, reason: "ContainerCreating"},
	{phase: corev1.PodRunning},
	{phase: corev1.PodRunning, ready: true},
}

func newFakeCluster(t *testing.T, objs ...runtime.Object) *fakeCluster {
	c := &fakeCluster{t: t, cs: fake.NewClientset(objs...), rollouts: map[string]*rollout{}, stuck: -1, podSteps: normalPodSteps}
	c.cs.PrependReactor("patch", "deployments", c.patchDeployment)
	c.cs.PrependReactor("get", "deployments", c.deploymentController)
	c.cs.PrependReactor("delete", "pods", c.deletePod)
	c.cs.PrependReactor("list", "pods", c.podControllers)
	return c
}

func (c *fakeCluster) workers() *workers {
	return &workers{connect: func(Conn) (kubernetes.Interface, error) { return c.cs, nil }}
}

var deploymentsGVR = appsv1.SchemeGroupVersion.WithResource("deployments")
var podsGVR = corev1.SchemeGroupVersion.WithResource("pods")

// patchDeployment applies a patch as the API server does: the object
// tracker applies it, and a changed pod template bumps metadata.generation.
func (c *fakeCluster) patchDeployment(a k8stesting.Action) (bool, runtime.Object, error) {
	pa := a.(k8stesting.PatchAction)
	before, err := c.cs.Tracker().Get(deploymentsGVR, pa.GetNamespace(), pa.GetName())
	if err != nil {
		return true, nil, err
	}
	_, obj, err := k8stesting.ObjectReaction(c.cs.Tracker())(a)
	if err != nil {
		return true, nil, err
	}
	d := obj.(*appsv1.Deployment)
	if !apiequality.Semantic.DeepEqual(before.(*appsv1.Deployment).Spec, d.Spec) {
		d.Generation++
		if err := c.cs.Tracker().Update(deploymentsGVR, d, d.Namespace); err != nil {
			return true, nil, err
		}
	}
	return true, d, nil
}

// deploymentController moves a Deployment's rollout one step per read.
func (c *fakeCluster) deploymentController(a k8stesting.Action) (bool, runtime.Object, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failGets > 0 {
		c.failGets--
		return true, nil, &apiStatusError{code: 503, reason: metav1.StatusReasonServiceUnavailable, msg: "the server is currently unable to handle the request"}
	}
	ga := a.(k8stesting.GetAction)
	obj, err := c.cs.Tracker().Get(deploymentsGVR, ga.GetNamespace(), ga.GetName())
	if err != nil {
		return false, nil, nil // let the tracker answer NotFound
	}
	d := obj.(*appsv1.Deployment).DeepCopy()
	r := c.rollouts[d.Name]
	if r == nil {
		if d.Generation <= d.Status.ObservedGeneration {
			return false, nil, nil
		}
		// The controller has not observed the new generation yet: this read
		// sees the old status; the rollout starts with the next one.
		c.rollouts[d.Name] = c.plan(d)
		return false, nil, nil
	}
	if r.next >= len(r.phases) || r.next == c.stuck {
		return false, nil, nil
	}
	if r.next == 0 {
		rev := 1
		fmt.Sscan(d.Annotations[revisionAnnotation], &rev)
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[revisionAnnotation] = fmt.Sprint(rev + 1)
	}
	d.Status = r.phases[r.next]
	r.next++
	if r.next == len(r.phases) {
		delete(c.rollouts, d.Name)
	}
	if err := c.cs.Tracker().Update(deploymentsGVR, d, d.Namespace); err != nil {
		c.t.Errorf("fake deployment controller: %v", err)
	}
	return false, nil, nil
}

// plan is the status sequence of a rolling update with maxSurge 1.
func (c *fakeCluster) plan(d *appsv1.Deployment) *rollout {
	n := replicas(d)
	g := d.Generation
	st := func(updated, total, available int32) appsv1.DeploymentStatus {
		return appsv1.DeploymentStatus{ObservedGeneration: g, Replicas: total, UpdatedReplicas: updated,
			ReadyReplicas: available, AvailableReplicas: available}
	}
	var phases []appsv1.DeploymentStatus
	for i := int32(1); i <= n; i++ {
		phases = append(phases, st(i, n+1, n))
	}
	phases = append(phases, st(n, n, n-1), st(n, n, n))
	if c.deadline {
		failed := st(1, n+1, n)
		failed.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: fmt.Sprintf("ReplicaSet %q has timed out progressing.", d.Name+"-7d9f8b6c5")}}
		phases = []appsv1.DeploymentStatus{st(1, n+1, n), failed}
	}
	return &rollout{phases: phases}
}

// deletePod does a graceful deletion: the pod stays, terminating, until the
// pod controllers remove it.
func (c *fakeCluster) deletePod(a k8stesting.Action) (bool, runtime.Object, error) {
	da := a.(k8stesting.DeleteAction)
	obj, err := c.cs.Tracker().Get(podsGVR, da.GetNamespace(), da.GetName())
	if err != nil {
		return true, nil, err
	}
	p := obj.(*corev1.Pod).DeepCopy()
	now := metav1.Now()
	p.DeletionTimestamp = &now
	return true, nil, c.cs.Tracker().Update(podsGVR, p, p.Namespace)
}

// podControllers, on each List: removes terminating pods and creates their
// replacements (the ReplicaSet controller), and moves each replacement one
// step through podSteps (the kubelet).
func (c *fakeCluster) podControllers(a k8stesting.Action) (bool, runtime.Object, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns := a.GetNamespace()
	obj, err := c.cs.Tracker().List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), ns)
	if err != nil {
		return false, nil, nil
	}
	for _, p := range obj.(*corev1.PodList).Items {
		switch {
		case p.DeletionTimestamp != nil:
			if err := c.cs.Tracker().Delete(podsGVR, ns, p.Name); err != nil {
				c.t.Errorf("fake pod controller: %v", err)
			}
			c.uid++
			np := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-r%d", strings.SplitN(p.Name, "-", 2)[0], c.uid), Namespace: ns,
				Labels: p.Labels, UID: k8stypes.UID(fmt.Sprintf("new-%d", c.uid)), Annotations: map[string]string{"step": "0"}}}
			setPodState(&np, c.podSteps[0])
			if err := c.cs.Tracker().Add(&np); err != nil {
				c.t.Errorf("fake pod controller: %v", err)
			}
		case p.Annotations["step"] != "":
			var step int
			fmt.Sscan(p.Annotations["step"], &step)
			if step+1 < len(c.podSteps) {
				q := p.DeepCopy()
				q.Annotations["step"] = fmt.Sprint(step + 1)
				setPodState(q, c.podSteps[step+1])
				if err := c.cs.Tracker().Update(podsGVR, q, ns); err != nil {
					c.t.Errorf("fake kubelet: %v", err)
				}
			}
		}
	}
	return false, nil, nil
}

func setPodState(p *corev1.Pod, s podState) {
	p.Status.Phase = s.phase
	status := corev1.ConditionFalse
	if s.ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	p.Status.ContainerStatuses = nil
	if s.reason != "" {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "worker", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: s.reason}}}}
	}
}

// apiStatusError is an error the API server would send, in the form
// client-go returns it.
type apiStatusError struct {
	code   int32
	reason metav1.StatusReason
	msg    string
}

func (e *apiStatusError) Error() string { return e.msg }
func (e *apiStatusError) Status() metav1.Status {
	return metav1.Status{Status: metav1.StatusFailure, Code: e.code, Reason: e.reason, Message: e.msg}
}

func deployment(name string, n int32, revision string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "spacelift-workers", Generation: 4,
			Annotations: map[string]string{revisionAnnotation: revision}},
		Spec: appsv1.DeploymentSpec{Replicas: &n, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: map[string]string{"team": "platform"}}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n},
	}
}

func pod(name string, labels map[string]string, phase corev1.PodPhase, readyNow bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "spacelift-workers", Labels: labels, UID: k8stypes.UID("old-" + name)}}
	setPodState(p, podState{phase: phase, ready: readyNow})
	return p
}

// harness runs actions over the real plugin protocol and keeps the
// progress events.
type harness struct {
	*plugin.Client
	mu       sync.Mutex
	logs     bytes.Buffer
	progress []plugin.Progress
}

func (h *harness) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.Write(p)
}

func start(t *testing.T, w *workers) *harness {
	t.Helper()
	h := &harness{}
	srv, err := plugin.NewServer(plugin.Info{Name: "k8sworkers", Version: version}, w.rolloutRestartAction(), w.deletePodsAction())
	if err != nil {
		t.Fatal(err)
	}
	srv.SetLogger(hclog.New(&hclog.LoggerOptions{Name: "k8sworkers", Output: io.MultiWriter(h, testLog{t}), Level: hclog.Trace}))
	gc, gs := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{plugin.PluginName: &plugin.GRPCPlugin{Impl: srv}})
	// Stop the server before closing the client: closing first asks the
	// server to stop itself, which races with gs.Stop (go-plugin v1.8.0).
	t.Cleanup(func() { gs.Stop(); _ = gc.Close() })
	raw, err := gc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	h.Client = raw.(*plugin.Client)
	return h
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (h *harness) apply(ctx context.Context, action, key string, params map[string]any) (map[string]any, error) {
	return h.applyCall(ctx, plugin.ApplyCall{RunID: "run-1", StepID: "workers", Action: action, Attempt: 1, IdempotencyKey: key, Params: params})
}

func (h *harness) applyCall(ctx context.Context, call plugin.ApplyCall) (map[string]any, error) {
	return h.Client.Apply(ctx, call, func(p plugin.Progress) {
		h.mu.Lock()
		h.progress = append(h.progress, p)
		h.mu.Unlock()
	})
}

func (h *harness) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, p := range h.progress {
		out = append(out, p.Message)
	}
	return out
}

func (h *harness) logText() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.String()
}

func pluginError(t *testing.T, err error) *plugin.Error {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *plugin.Error", err, err)
	}
	return pe
}

// withTimeout is a context that ends well before the test's own deadline.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
