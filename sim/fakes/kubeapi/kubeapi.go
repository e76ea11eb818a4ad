// Package kubeapi is a small fake Kubernetes API server over HTTP, for the
// simulation scenarios: it answers the few calls the k8sworkers plugin makes
// (get and strategic-merge-patch a Deployment; list pods by label selector;
// delete a pod with a UID precondition) and plays the controllers a real
// cluster would run. client-go's fake clientset lives inside one process; the
// plugin runs as a subprocess, so it needs a server it can reach with a
// kubeconfig (WriteKubeconfig).
//
// What it models, one step per read so every run sees the same sequence:
//
//   - A patch that changes a Deployment's pod template bumps its generation
//     and starts a rollout. Each GET of the Deployment moves the rollout on:
//     the controller observes the generation, new replicas are updated one by
//     one (with a surge of one), old ones retire, the new ones become
//     available. When it completes, the revision annotation is bumped and the
//     Deployment's pods are replaced by new ones (new UIDs, the new template's
//     annotations): the workers really restarted.
//   - A deleted pod lingers with a deletion timestamp; the next list removes it
//     and its owner creates a replacement (new UID, same labels) that moves
//     Pending -> Running -> Ready over the following lists.
//   - WatchPods tells a watcher (the Spacelift fake, whose workers these pods
//     run) when a pod's container starts running and when a pod is gone, at
//     the moment the fake makes it so, before the request that caused it is
//     answered.
//
// Requests need "Authorization: Bearer <token>" (401 Status otherwise); errors
// are metav1.Status objects, as the API server answers. It listens on
// 127.0.0.1 only, over TLS with a certificate of its own (client-go sends a
// kubeconfig's credentials only over TLS).
package kubeapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// Request is one API request as received.
type Request struct {
	Method string
	Path   string
	Query  string
	// ContentType of the request body, if any.
	ContentType string
	// Body of a PATCH or DELETE (patches and delete options, never credentials).
	Body string
	// Authorized says whether it carried the server's token.
	Authorized bool
}

// Server is a running fake API server.
type Server struct {
	token string
	srv   *http.Server
	url   string
	caPEM []byte

	mu          sync.Mutex
	deployments map[string]*appsv1.Deployment // ns/name
	rollouts    map[string]*rollout           // ns/name of a Deployment rolling out
	pods        map[string]*corev1.Pod        // ns/name
	podSteps    map[string]int                // ns/name -> lifecycle step of a new pod
	uid         int
	requests    []Request
	watchers    []func(PodEvent)
}

// PodEventType says what happened to a pod.
type PodEventType string

// Pod events.
const (
	// PodStarted: the pod's container is running (a worker process started).
	PodStarted PodEventType = "started"
	// PodStopped: the pod is gone (its worker process ended).
	PodStopped PodEventType = "stopped"
)

// PodEvent is one change of a pod that a watcher is told of.
type PodEvent struct {
	Type      PodEventType
	Namespace string
	Name      string
	UID       types.UID
	Labels    map[string]string
}

// WatchPods calls fn for every pod that starts running or goes away from
// now on, and returns a PodStarted event for each pod running now (in name
// order), atomically with installing fn. fn runs with the server's lock
// held: it must not call this server.
func (s *Server) WatchPods(fn func(PodEvent)) []PodEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchers = append(s.watchers, fn)
	var out []PodEvent
	for _, p := range s.pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, podEvent(PodStarted, p))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name })
	return out
}

func podEvent(t PodEventType, p *corev1.Pod) PodEvent {
	return PodEvent{Type: t, Namespace: p.Namespace, Name: p.Name, UID: p.UID, Labels: copyMap(p.Labels)}
}

// emitLocked tells the watchers. Caller holds s.mu.
func (s *Server) emitLocked(t PodEventType, p *corev1.Pod) {
	for _, fn := range s.watchers {
		fn(podEvent(t, p))
	}
}

type rollout struct {
	phases []appsv1.DeploymentStatus
	next   int
}

// Start serves a fake API server on 127.0.0.1 that accepts token.
func Start(token string) (*Server, error) {
	if token == "" {
		return nil, errors.New("kubeapi: a token is required")
	}
	// client-go sends a kubeconfig's credentials only over TLS, so the fake
	// serves HTTPS with a certificate of its own, trusted through the
	// kubeconfig's certificate-authority-data.
	cert, certPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	s := &Server{token: token, url: "https://" + ln.Addr().String(), caPEM: certPEM, deployments: map[string]*appsv1.Deployment{},
		rollouts: map[string]*rollout{}, pods: map[string]*corev1.Pod{}, podSteps: map[string]int{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "kubeapi fake"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return cert, certPEM, err
}

// URL is the API server's address (https).
func (s *Server) URL() string { return s.url }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// WriteKubeconfig writes a kubeconfig with one cluster, user and context
// (named context) that reaches this server with its token.
func (s *Server) WriteKubeconfig(path, context string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: sim-user
  user:
    token: %s
contexts:
- name: %s
  context:
    cluster: sim
    user: sim-user
current-context: %s
`, s.url, base64.StdEncoding.EncodeToString(s.caPEM), s.token, context, context)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

func key(ns, name string) string { return ns + "/" + name }

func (s *Server) newUID() types.UID {
	s.uid++
	return types.UID(fmt.Sprintf("00000000-0000-4000-8000-%012d", s.uid))
}

// AddDeployment creates a Deployment with replicas running, ready pods
// labelled podLabels (its selector), rolled out at revision 1.
func (s *Server) AddDeployment(ns, name string, replicas int32, podLabels map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: s.newUID(), Generation: 1, ResourceVersion: "1",
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "1"}, CreationTimestamp: metav1.Now()},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "public.ecr.aws/spacelift/launcher:latest"}}},
			},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas},
	}
	s.deployments[key(ns, name)] = d
	for i := int32(0); i < replicas; i++ {
		s.addPodLocked(ns, name, podLabels, nil, true)
	}
}

// AddPods creates n running, ready pods labelled podLabels whose owner (a
// StatefulSet-like controller named owner) replaces them when deleted.
func (s *Server) AddPods(ns, owner string, n int, podLabels map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.addPodLocked(ns, owner, podLabels, nil, true)
	}
}

func (s *Server) addPodLocked(ns, owner string, podLabels, annotations map[string]string, ready bool) *corev1.Pod {
	uid := s.newUID()
	name := fmt.Sprintf("%s-%s", owner, strings.ReplaceAll(string(uid)[len(uid)-5:], "-", ""))
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: uid, ResourceVersion: "1", Labels: copyMap(podLabels),
			Annotations: copyMap(annotations), CreationTimestamp: metav1.Now(),
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: owner, UID: "owner-" + types.UID(owner), Controller: ptr(true)}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "public.ecr.aws/spacelift/launcher:latest"}}},
	}
	if ready {
		setPodStep(p, len(podLifecycle)-1)
	} else {
		setPodStep(p, 0)
		s.podSteps[key(ns, name)] = 0
	}
	s.pods[key(ns, name)] = p
	if ready {
		s.emitLocked(PodStarted, p)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// podLifecycle is how a new pod moves, one step per list.
var podLifecycle = []struct {
	phase  corev1.PodPhase
	ready  bool
	reason string
}{
	{corev1.PodPending, false, "ContainerCreating"},
	{corev1.PodRunning, false, ""},
	{corev1.PodRunning, true, ""},
}

func setPodStep(p *corev1.Pod, step int) {
	st := podLifecycle[step]
	ready := corev1.ConditionFalse
	if st.ready {
		ready = corev1.ConditionTrue
	}
	cs := corev1.ContainerStatus{Name: "worker", Ready: st.ready, Image: p.Spec.Containers[0].Image}
	if st.reason != "" {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: st.reason}
	} else {
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Now()}
	}
	p.Status = corev1.PodStatus{Phase: st.phase, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}, ContainerStatuses: []corev1.ContainerStatus{cs}}
}

// Deployment returns a copy of a Deployment.
func (s *Server) Deployment(ns, name string) (appsv1.Deployment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deployments[key(ns, name)]
	if !ok {
		return appsv1.Deployment{}, false
	}
	return *d.DeepCopy(), true
}

// Pods returns copies of the pods in ns matching selector ("" for all),
// sorted by name, without advancing anything.
func (s *Server) Pods(ns, selector string) ([]corev1.Pod, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.podsLocked(ns, sel), nil
}

func (s *Server) podsLocked(ns string, sel labels.Selector) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range s.pods {
		if p.Namespace == ns && sel.Matches(labels.Set(p.Labels)) {
			out = append(out, *p.DeepCopy())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Requests returns every request so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func status(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string, details *metav1.StatusDetails) {
	writeJSON(w, code, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Message: msg, Reason: reason, Details: details, Code: int32(code)})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	authorized := r.Header.Get("Authorization") == "Bearer "+s.token
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"), Body: string(body), Authorized: authorized})
	if !authorized {
		status(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized", nil)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	// /apis/apps/v1/namespaces/{ns}/deployments/{name}
	case len(parts) == 7 && parts[0] == "apis" && parts[1] == "apps" && parts[2] == "v1" && parts[3] == "namespaces" && parts[5] == "deployments":
		s.deployment(w, r, parts[4], parts[6], body)
	// /api/v1/namespaces/{ns}/pods
	case len(parts) == 5 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" && parts[4] == "pods" && r.Method == http.MethodGet:
		s.listPods(w, r, parts[3])
	// /api/v1/namespaces/{ns}/pods/{name}
	case len(parts) == 6 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" && parts[4] == "pods" && r.Method == http.MethodDelete:
		s.deletePod(w, r, parts[3], parts[5], body)
	default:
		status(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource", nil)
	}
}

func notFound(w http.ResponseWriter, group, kind, name string) {
	status(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("%s %q not found", kind, name),
		&metav1.StatusDetails{Name: name, Group: group, Kind: kind})
}

func (s *Server) deployment(w http.ResponseWriter, r *http.Request, ns, name string, body []byte) {
	d, ok := s.deployments[key(ns, name)]
	if !ok {
		notFound(w, "apps", "deployments", name)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.advanceRollout(d)
		writeJSON(w, http.StatusOK, d)
	case http.MethodPatch:
		if ct := r.Header.Get("Content-Type"); ct != string(types.StrategicMergePatchType) {
			status(w, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType, "this fake applies strategic merge patches only, not "+ct, nil)
			return
		}
		orig, _ := json.Marshal(d)
		merged, err := strategicpatch.StrategicMergePatch(orig, body, appsv1.Deployment{})
		if err != nil {
			status(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "invalid patch: "+err.Error(), nil)
			return
		}
		var next appsv1.Deployment
		if err := json.Unmarshal(merged, &next); err != nil {
			status(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "invalid patch: "+err.Error(), nil)
			return
		}
		next.Status = d.Status
		if tmplChanged(d, &next) {
			next.Generation = d.Generation + 1
			s.rollouts[key(ns, name)] = newRollout(&next)
		}
		rv, _ := strconv.Atoi(d.ResourceVersion)
		next.ResourceVersion = strconv.Itoa(rv + 1)
		*d = next
		writeJSON(w, http.StatusOK, d)
	default:
		status(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "method not allowed", nil)
	}
}

func tmplChanged(a, b *appsv1.Deployment) bool {
	x, _ := json.Marshal(a.Spec.Template)
	y, _ := json.Marshal(b.Spec.Template)
	return string(x) != string(y)
}

// newRollout lays out the status phases of a rolling update with a surge of
// one: observe, then each replica updated, the old ones retired, available.
func newRollout(d *appsv1.Deployment) *rollout {
	n := *d.Spec.Replicas
	gen := d.Generation
	var phases []appsv1.DeploymentStatus
	phases = append(phases, appsv1.DeploymentStatus{ObservedGeneration: gen, Replicas: n, UpdatedReplicas: 0, ReadyReplicas: n, AvailableReplicas: n})
	for k := int32(1); k <= n; k++ {
		// k new replicas, n-k+1 old ones still up (the surge), the last new one not yet available.
		phases = append(phases, appsv1.DeploymentStatus{ObservedGeneration: gen, Replicas: n + 1, UpdatedReplicas: k, ReadyReplicas: n, AvailableReplicas: n})
	}
	phases = append(phases,
		appsv1.DeploymentStatus{ObservedGeneration: gen, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n - 1, AvailableReplicas: n - 1},
		appsv1.DeploymentStatus{ObservedGeneration: gen, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n})
	return &rollout{phases: phases}
}

// advanceRollout moves d's rollout one phase; at the end the revision moves
// on and its pods are replaced by pods of the new template. Caller holds s.mu.
func (s *Server) advanceRollout(d *appsv1.Deployment) {
	k := key(d.Namespace, d.Name)
	ro, ok := s.rollouts[k]
	if !ok {
		return
	}
	d.Status = ro.phases[ro.next]
	ro.next++
	if ro.next < len(ro.phases) {
		return
	}
	delete(s.rollouts, k)
	rev, _ := strconv.Atoi(d.Annotations["deployment.kubernetes.io/revision"])
	d.Annotations["deployment.kubernetes.io/revision"] = strconv.Itoa(rev + 1)
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
	var old []*corev1.Pod
	for pk, p := range s.pods {
		if p.Namespace == d.Namespace && sel.Matches(labels.Set(p.Labels)) {
			delete(s.pods, pk)
			delete(s.podSteps, pk)
			old = append(old, p)
		}
	}
	sort.Slice(old, func(i, j int) bool { return old[i].Name < old[j].Name })
	for _, p := range old {
		s.emitLocked(PodStopped, p)
	}
	for i := int32(0); i < *d.Spec.Replicas; i++ {
		s.addPodLocked(d.Namespace, d.Name, d.Spec.Template.Labels, d.Spec.Template.Annotations, true)
	}
}

func (s *Server) listPods(w http.ResponseWriter, r *http.Request, ns string) {
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "unable to parse requirement: "+err.Error(), nil)
		return
	}
	s.advancePods(ns)
	items := s.podsLocked(ns, sel)
	if items == nil {
		items = []corev1.Pod{}
	}
	writeJSON(w, http.StatusOK, corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(s.uid)}, Items: items})
}

// advancePods plays the kubelet and the pods' owners for one list: pods that
// were terminating are gone and replaced, new pods move one lifecycle step.
// Caller holds s.mu.
func (s *Server) advancePods(ns string) {
	var gone []*corev1.Pod
	for k, p := range s.pods {
		if p.Namespace != ns {
			continue
		}
		if p.DeletionTimestamp != nil {
			gone = append(gone, p)
			delete(s.pods, k)
			delete(s.podSteps, k)
			continue
		}
		if step, ok := s.podSteps[k]; ok {
			step++
			setPodStep(p, step)
			if podLifecycle[step].phase == corev1.PodRunning && podLifecycle[step-1].phase != corev1.PodRunning {
				s.emitLocked(PodStarted, p)
			}
			if step == len(podLifecycle)-1 {
				delete(s.podSteps, k)
			} else {
				s.podSteps[k] = step
			}
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Name < gone[j].Name })
	for _, p := range gone {
		s.emitLocked(PodStopped, p)
		owner := p.Name
		if len(p.OwnerReferences) > 0 {
			owner = p.OwnerReferences[0].Name
		}
		s.addPodLocked(ns, owner, p.Labels, p.Annotations, false)
	}
}

// deleteOptionsCodec decodes metav1.DeleteOptions in JSON or protobuf.
var deleteOptionsCodec = func() runtime.Decoder {
	sch := runtime.NewScheme()
	metav1.AddToGroupVersion(sch, schema.GroupVersion{Version: "v1"})
	return serializer.NewCodecFactory(sch).UniversalDeserializer()
}()

func (s *Server) deletePod(w http.ResponseWriter, r *http.Request, ns, name string, body []byte) {
	p, ok := s.pods[key(ns, name)]
	if !ok {
		notFound(w, "", "pods", name)
		return
	}
	var opts metav1.DeleteOptions
	if len(body) > 0 {
		// client-go sends delete options as protobuf by default, JSON when asked.
		if _, _, err := deleteOptionsCodec.Decode(body, nil, &opts); err != nil {
			status(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "invalid delete options ("+r.Header.Get("Content-Type")+"): "+err.Error(), nil)
			return
		}
	}
	if opts.Preconditions != nil && opts.Preconditions.UID != nil && *opts.Preconditions.UID != p.UID {
		status(w, http.StatusConflict, metav1.StatusReasonConflict,
			fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", *opts.Preconditions.UID, p.UID), nil)
		return
	}
	if p.DeletionTimestamp == nil {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	writeJSON(w, http.StatusOK, p)
}
