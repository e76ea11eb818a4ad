package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client drives a proxy in another process through its control API.
type Client struct {
	URL  string // the proxy's URL
	HTTP *http.Client
}

// NewClient returns a client for the proxy at proxyURL.
func NewClient(proxyURL string) *Client {
	return &Client{URL: strings.TrimRight(proxyURL, "/"), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+controlPrefix+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("faultproxy: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("faultproxy: %s %s: %s", method, path, e.Error)
		}
		return fmt.Errorf("faultproxy: %s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Health checks that a proxy answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "health", nil, nil)
}

// AddRule adds a fault and returns its id.
func (c *Client) AddRule(ctx context.Context, r Rule) (string, error) {
	var out struct{ ID string }
	err := c.do(ctx, http.MethodPost, "rules", r, &out)
	return out.ID, err
}

// RemoveRule removes a fault.
func (c *Client) RemoveRule(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "rules/"+url.PathEscape(id), nil, nil)
}

// Rules lists the faults.
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	var out []Rule
	err := c.do(ctx, http.MethodGet, "rules", nil, &out)
	return out, err
}

// Clear removes every fault.
func (c *Client) Clear(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "clear", nil, nil)
}

// Seed restarts the random sequence.
func (c *Client) Seed(ctx context.Context, seed uint64) error {
	return c.do(ctx, http.MethodPost, "seed", map[string]uint64{"seed": seed}, nil)
}

func (f Filter) query() string {
	v := url.Values{}
	if f.Region != "" {
		v.Set("region", f.Region)
	}
	if f.Service != "" {
		v.Set("service", f.Service)
	}
	if f.Operation != "" {
		v.Set("operation", f.Operation)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Log returns the log entries that match f.
func (c *Client) Log(ctx context.Context, f Filter) ([]Entry, error) {
	var out []Entry
	err := c.do(ctx, http.MethodGet, "log"+f.query(), nil, &out)
	return out, err
}

// ResetLog empties the log.
func (c *Client) ResetLog(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "log", nil, nil)
}

// Count counts the requests that match f.
func (c *Client) Count(ctx context.Context, f Filter) (Counts, error) {
	var out Counts
	err := c.do(ctx, http.MethodGet, "count"+f.query(), nil, &out)
	return out, err
}

// Record turns the recording of whole exchanges on or off.
func (c *Client) Record(ctx context.Context, on bool) error {
	return c.do(ctx, http.MethodPost, "record", map[string]bool{"on": on}, nil)
}

// Exchanges returns the recorded exchanges.
func (c *Client) Exchanges(ctx context.Context) ([]Exchange, error) {
	var out []Exchange
	err := c.do(ctx, http.MethodGet, "exchanges", nil, &out)
	return out, err
}
