package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/runbookhq/runbook/sdk/plugin"
)

type deletePodsParams struct {
	Conn
	Selector    string `json:"selector" required:"true" doc:"label selector of the worker pods, e.g. app.kubernetes.io/name=spacelift-worker"`
	GracePeriod *int64 `json:"grace_period_seconds" doc:"termination grace period for the deleted pods; default: each pod's own"`
}

type deletePodsOutputs struct {
	Namespace   string        `json:"namespace"`
	DeletedPods []string      `json:"deleted_pods" doc:"the pods deleted"`
	Deleted     int           `json:"deleted" doc:"how many pods were deleted"`
	ReadyPods   []string      `json:"ready_pods" doc:"the replacement pods that are Running and Ready"`
	Ready       int           `json:"ready" doc:"how many replacement pods are Running and Ready"`
	Duration    time.Duration `json:"duration"`
}

func (w *workers) deletePodsAction() plugin.Action {
	return plugin.NewAction("delete_pods", w.deletePods).
		Doc("Deletes the running worker pods that match a label selector in a namespace, then waits until as many replacement " +
			"pods (new UIDs) are Running and Ready. Not idempotent: a second run deletes the replacements too.").
		Plan(w.planDeletePods).
		Validate(validateDeletePods)
}

func validateDeletePods(req plugin.ValidateRequest[deletePodsParams]) []plugin.Diagnostic {
	if req.Unknown("/selector") {
		return nil
	}
	if _, err := parseSelector(req.Params.Selector); err != nil {
		return []plugin.Diagnostic{plugin.Errorf("/selector", "%v", err)}
	}
	return nil
}

// parseSelector refuses the empty selector, which would match every pod in
// the namespace.
func parseSelector(s string) (labels.Selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("the selector is empty: it would match every pod in the namespace")
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid label selector: %v", err)
	}
	if sel.Empty() {
		return nil, errors.New("the selector matches every pod in the namespace")
	}
	return sel, nil
}

// active reports whether a pod is one the workload keeps running: not
// being deleted and not finished.
func active(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func ready(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitingReason says why a pod is not ready yet, from its containers'
// states (ImagePullBackOff, CrashLoopBackOff...), or its phase.
func waitingReason(p *corev1.Pod) string {
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return w.Reason
		}
	}
	return string(p.Status.Phase)
}

func (w *workers) deletePods(ctx context.Context, req plugin.Request[deletePodsParams]) (deletePodsOutputs, error) {
	start := time.Now()
	p := req.Params
	sel, err := parseSelector(p.Selector)
	if err != nil {
		return deletePodsOutputs{}, plugin.FatalCode("InvalidParams", "%v", err)
	}
	cs, err := w.connect(p.Conn)
	if err != nil {
		return deletePodsOutputs{}, err
	}
	pods := cs.CoreV1().Pods(p.Namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return deletePodsOutputs{}, classify(err, "listing pods %s in namespace %s", sel, p.Namespace)
	}
	var victims []corev1.Pod
	for i := range list.Items {
		if active(&list.Items[i]) {
			victims = append(victims, list.Items[i])
		}
	}
	if len(victims) == 0 {
		return deletePodsOutputs{}, plugin.FatalCode("NoPods", "no running pods match %s in namespace %s: nothing to restart (check the selector and namespace)", sel, p.Namespace)
	}
	sort.Slice(victims, func(i, j int) bool { return victims[i].Name < victims[j].Name })
	old := map[k8stypes.UID]bool{}
	out := deletePodsOutputs{Namespace: p.Namespace, DeletedPods: []string{}, ReadyPods: []string{}}
	var names []string
	for _, v := range victims {
		old[v.UID] = true
		names = append(names, v.Name)
	}
	req.Progress(fmt.Sprintf("deleting %d pods", len(victims)), "namespace", p.Namespace, "pods", strings.Join(names, ","))
	opts := metav1.DeleteOptions{GracePeriodSeconds: p.GracePeriod}
	for _, v := range victims {
		// Preconditions: delete this pod, not a namesake created since the list.
		uid := v.UID
		o := opts
		if uid != "" {
			o.Preconditions = &metav1.Preconditions{UID: &uid}
		}
		err := pods.Delete(ctx, v.Name, o)
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			msg := classify(err, "deleting pod %s/%s", p.Namespace, v.Name)
			if len(out.DeletedPods) > 0 {
				return deletePodsOutputs{}, fmt.Errorf("%w (already deleted: %s)", msg, strings.Join(out.DeletedPods, ", "))
			}
			return deletePodsOutputs{}, msg
		}
		out.DeletedPods = append(out.DeletedPods, v.Name)
	}
	out.Deleted = len(out.DeletedPods)
	req.Log.Info("pods deleted", "namespace", p.Namespace, "selector", sel.String(), "pods", strings.Join(out.DeletedPods, ","))

	want := len(victims)
	var last string
	var readyNames []string
	err = poll(ctx, p.PollInterval, func(ctx context.Context) (bool, error) {
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return false, err
		}
		var fresh, terminating int
		var waiting []string
		readyNames = readyNames[:0]
		for i := range list.Items {
			pod := &list.Items[i]
			switch {
			case old[pod.UID]:
				terminating++
			case ready(pod):
				readyNames = append(readyNames, pod.Name)
			case active(pod):
				fresh++
				waiting = append(waiting, pod.Name+": "+waitingReason(pod))
			}
		}
		sort.Strings(waiting)
		msg := fmt.Sprintf("replacement pods ready: %d of %d", len(readyNames), want)
		if fresh > 0 {
			msg += fmt.Sprintf("; starting: %s", strings.Join(waiting, ", "))
		}
		if terminating > 0 {
			msg += fmt.Sprintf("; old pods still terminating: %d", terminating)
		}
		if msg != last {
			last = msg
			req.Progress(msg, "namespace", p.Namespace)
		}
		return len(readyNames) >= want, nil
	}, func(err error) {
		req.Log.Warn("listing pods failed; still waiting", "error", err)
	})
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return deletePodsOutputs{}, plugin.RetryableCode("Timeout", "pods %s in namespace %s: the replacements were not ready when the step's time ran out (last: %s); deleted: %s",
				sel, p.Namespace, orNone(last), strings.Join(out.DeletedPods, ", "))
		case errors.Is(err, context.Canceled):
			return deletePodsOutputs{}, err
		}
		return deletePodsOutputs{}, classify(err, "waiting for replacement pods %s in namespace %s", sel, p.Namespace)
	}
	sort.Strings(readyNames)
	out.ReadyPods = append(out.ReadyPods, readyNames...)
	out.Ready = len(readyNames)
	out.Duration = time.Since(start)
	req.Log.Info("replacement pods ready", "namespace", p.Namespace, "ready", out.Ready, "duration", out.Duration.String())
	return out, nil
}

func (w *workers) planDeletePods(ctx context.Context, req plugin.PlanRequest[deletePodsParams]) (plugin.Plan, error) {
	p := req.Params
	for _, path := range []string{"/namespace", "/selector", "/kubeconfig", "/context"} {
		if req.Unknown(path) {
			return plugin.Plan{Summary: "delete worker pods known only at run time and wait for their replacements",
				Changes: []plugin.Change{{Resource: "pods", AfterUnknown: true, Kind: plugin.ChangeDelete}}}, nil
		}
	}
	sel, err := parseSelector(p.Selector)
	if err != nil {
		return plugin.Plan{Summary: "delete worker pods", Diagnostics: []plugin.Diagnostic{plugin.Errorf("/selector", "%v", err)}}, nil
	}
	cs, err := w.connect(p.Conn)
	if err != nil {
		return plugin.Plan{}, err
	}
	list, err := cs.CoreV1().Pods(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return plugin.Plan{}, classify(err, "listing pods %s in namespace %s", sel, p.Namespace)
	}
	var plan plugin.Plan
	for i := range list.Items {
		pod := &list.Items[i]
		if active(pod) {
			plan.Changes = append(plan.Changes, plugin.Change{Resource: "pod " + p.Namespace + "/" + pod.Name, Before: string(pod.Status.Phase), Kind: plugin.ChangeDelete})
		}
	}
	sort.Slice(plan.Changes, func(i, j int) bool { return plan.Changes[i].Resource < plan.Changes[j].Resource })
	n := len(plan.Changes)
	plan.Summary = fmt.Sprintf("delete %d pods matching %s in namespace %s and wait for %d Running and Ready replacements", n, sel, p.Namespace, n)
	if n == 0 {
		plan.Diagnostics = append(plan.Diagnostics, plugin.Errorf("/selector", "no running pods match %s in namespace %s", sel, p.Namespace))
	}
	return plan, nil
}
