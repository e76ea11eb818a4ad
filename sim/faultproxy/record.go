package faultproxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Exchange is one AWS request the proxy saw, with the emulator's answer,
// recorded in full when recording is on (Record): what the contract tests
// check against AWS's API models and the permission tests attribute to the
// action that made the call (its User-Agent).
type Exchange struct {
	Seq       int       `json:"seq"`
	Time      time.Time `json:"time"`
	Region    string    `json:"region"`
	Service   string    `json:"service"`   // the SigV4 signing name (s3control for S3 Control)
	Operation string    `json:"operation"` // as the proxy names it (see Entry)
	Protocol  string    `json:"protocol"`  // query, ec2, json, rest-json, rest-xml, smithy-rpc-v2-cbor
	Method    string    `json:"method"`
	Host      string    `json:"host"`
	Path      string    `json:"path"`  // escaped, as sent
	Query     string    `json:"query"` // raw query string
	UserAgent string    `json:"user_agent"`
	// RequestHeaders are the request's headers, lower-cased, without the
	// credentials (Authorization, X-Amz-Security-Token).
	RequestHeaders map[string]string `json:"request_headers"`
	RequestBody    []byte            `json:"request_body"`
	// Answered: the response below is the emulator's, unchanged. False for
	// a faulted call (the proxy answered, or nobody did) and a request the
	// client abandoned.
	Answered        bool              `json:"answered"`
	Status          int               `json:"status,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	ResponseBody    []byte            `json:"response_body,omitempty"`
	// Truncated: a body is not whole: larger than maxRecordBody, or the
	// client went away before it had sent all of it.
	Truncated bool `json:"truncated,omitempty"`
}

// maxRecordBody bounds each recorded body.
const maxRecordBody = 8 << 20

// Record turns recording of whole exchanges on or off (off by default: it
// keeps every body in memory). Turning it on keeps what was recorded.
func (p *Proxy) Record(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recording = on
}

func (p *Proxy) isRecording() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recording
}

// Exchanges returns a copy of the recorded exchanges, oldest first.
func (p *Proxy) Exchanges() []Exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Exchange(nil), p.exchanges...)
}

// ResetExchanges forgets the recorded exchanges.
func (p *Proxy) ResetExchanges() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exchanges = nil
}

func (p *Proxy) addExchange(x Exchange) {
	p.mu.Lock()
	defer p.mu.Unlock()
	x.Seq = len(p.exchanges) + 1
	p.exchanges = append(p.exchanges, x)
}

// WriteExchanges writes exchanges to path as JSON lines (bodies base64).
func WriteExchanges(path string, xs []Exchange) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, x := range xs {
		if err := enc.Encode(x); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadExchanges reads a file WriteExchanges wrote.
func ReadExchanges(path string) ([]Exchange, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Exchange
	dec := json.NewDecoder(f)
	for {
		var x Exchange
		if err := dec.Decode(&x); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
}

var protocolNames = map[protocol]string{
	protoREST: "rest-xml", protoS3: "rest-xml", protoQuery: "query", protoEC2: "ec2",
	protoJSON: "json", protoRESTJSON: "rest-json", protoCBOR: "smithy-rpc-v2-cbor",
}

// startExchange reads the request's body (restoring it) and returns the
// exchange without its answer.
func startExchange(r *http.Request, c Call, start time.Time) Exchange {
	x := Exchange{
		Time: start, Region: c.Region, Service: c.Service, Operation: c.Operation, Protocol: protocolNames[c.Protocol],
		Method: r.Method, Host: r.Host, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		UserAgent: r.Header.Get("User-Agent"), RequestHeaders: recordedHeaders(r.Header, true),
	}
	if r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRecordBody+1))
		if len(body) > maxRecordBody {
			body, x.Truncated = body[:maxRecordBody], true
		}
		if err != nil {
			// The client went away mid-request (a killed plugin): the
			// emulator gets what came, the record says it is not whole.
			x.Truncated = true
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		} else {
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
		}
		x.RequestBody = body
	}
	return x
}

func recordedHeaders(h http.Header, request bool) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		lk := strings.ToLower(k)
		if request && (lk == "authorization" || lk == "x-amz-security-token") {
			continue
		}
		out[lk] = strings.Join(v, ",")
	}
	return out
}

// teeWriter passes an answer through and keeps a copy of it.
type teeWriter struct {
	*statusWriter
	body      bytes.Buffer
	truncated bool
}

func (t *teeWriter) Write(b []byte) (int, error) {
	if room := maxRecordBody - t.body.Len(); room > 0 {
		if len(b) > room {
			t.body.Write(b[:room])
			t.truncated = true
		} else {
			t.body.Write(b)
		}
	} else if len(b) > 0 {
		t.truncated = true
	}
	return t.statusWriter.Write(b)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
