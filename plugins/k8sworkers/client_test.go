package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

func writeKubeconfig(t *testing.T, servers map[string]string, current string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Config\nclusters:\n")
	for name, server := range servers {
		fmt.Fprintf(&b, "- name: %s\n  cluster:\n    server: %s\n", name, server)
	}
	b.WriteString("users:\n- name: ops\n  user:\n    token: kube-token-0123456789\ncontexts:\n")
	for name := range servers {
		fmt.Fprintf(&b, "- name: %s\n  context:\n    cluster: %s\n    user: ops\n", name, name)
	}
	fmt.Fprintf(&b, "current-context: %s\n", current)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noAmbientConfig makes sure neither the environment nor the home directory
// supplies a kubeconfig, and that the test does not look like a pod.
func noAmbientConfig(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
}

func TestRestConfigFromKubeconfig(t *testing.T) {
	noAmbientConfig(t)
	path := writeKubeconfig(t, map[string]string{"primary": "https://primary.example:6443", "dr": "https://dr.example:6443"}, "primary")
	cases := map[string]struct {
		conn Conn
		host string
		err  string
	}{
		"current context":  {conn: Conn{Kubeconfig: path}, host: "https://primary.example:6443"},
		"explicit context": {conn: Conn{Kubeconfig: path, Context: "dr"}, host: "https://dr.example:6443"},
		"unknown context":  {conn: Conn{Kubeconfig: path, Context: "nope"}, err: `context "nope" does not exist`},
		"missing file":     {conn: Conn{Kubeconfig: filepath.Join(t.TempDir(), "none")}, err: "no such file"},
		"nothing at all":   {conn: Conn{}, err: "no kubeconfig found"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := restConfig(tc.conn)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || cfg.Host != tc.host || cfg.BearerToken != "kube-token-0123456789" {
				t.Fatalf("cfg = %+v, err = %v", cfg, err)
			}
		})
	}

	// $KUBECONFIG is honoured like kubectl does.
	t.Setenv("KUBECONFIG", path)
	cfg, err := restConfig(Conn{Context: "dr"})
	if err != nil || cfg.Host != "https://dr.example:6443" {
		t.Fatalf("cfg = %+v, err = %v", cfg, err)
	}
}

// TestRealClientErrors runs the actions with the real client-go clientset
// against a local server that answers like an API server does when it
// refuses, fails or is not there.
func TestRealClientErrors(t *testing.T) {
	noAmbientConfig(t)
	status := func(code int, reason, msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	cases := map[string]struct {
		handler   http.HandlerFunc
		server    string
		retryable bool
		code      string
		contains  string
	}{
		"forbidden": {
			handler: status(403, "Forbidden", `deployments.apps "spacelift-workerpool-controller" is forbidden: User "ops" cannot get resource "deployments" in API group "apps"`),
			code:    "Forbidden", contains: `cannot get resource "deployments"`,
		},
		"unauthorized": {
			handler: status(401, "Unauthorized", "Unauthorized"),
			code:    "Unauthorized", contains: "did not accept the credentials",
		},
		"not found": {
			handler: status(404, "NotFound", `deployments.apps "spacelift-workerpool-controller" not found`),
			code:    "NotFound", contains: "not found",
		},
		"internal error": {
			handler:   status(500, "InternalError", "Internal error occurred: etcdserver: request timed out"),
			retryable: true, code: "APIUnavailable", contains: "etcdserver: request timed out",
		},
		"nobody listening": {
			server:    "http://" + closedAddr,
			retryable: true, code: "APIUnavailable", contains: "connection refused",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			server := tc.server
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				t.Cleanup(srv.Close)
				server = srv.URL
			}
			path := writeKubeconfig(t, map[string]string{"test": server}, "test")
			h := start(t, &workers{connect: connect})
			out, err := h.apply(plugintest.Context(t), "rollout_restart", "k", map[string]any{"kubeconfig": path, "namespace": ns, "deployment": controller})
			pe := pluginError(t, err)
			if pe.Retryable != tc.retryable || pe.Code != tc.code || !strings.Contains(pe.Message, tc.contains) {
				t.Fatalf("err = %+v\nwant code %s retryable %v containing %q", pe, tc.code, tc.retryable, tc.contains)
			}
			if strings.Contains(pe.Message, "kube-token-0123456789") || strings.Contains(h.logText(), "kube-token-0123456789") || out != nil {
				t.Fatal("the kubeconfig token leaked")
			}
		})
	}
}
