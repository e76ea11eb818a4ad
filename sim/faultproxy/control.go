package faultproxy

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// controlPrefix is where the proxy answers its own control API:
//
//	GET    /_fault/rules          the current rules
//	POST   /_fault/rules          add a Rule (JSON); answers {"id": ...}
//	DELETE /_fault/rules/<id>     remove one rule
//	POST   /_fault/clear          remove every rule
//	GET    /_fault/log            the request log; ?region=&service=&operation= filter it
//	DELETE /_fault/log            empty the log
//	GET    /_fault/count          Counts for ?region=&service=&operation=
//	POST   /_fault/seed           {"seed": n}: restart the random sequence
//	GET    /_fault/health         {"ok": true, "target": ...}
//	POST   /_fault/record         {"on": true|false}: record whole exchanges (Record)
//	GET    /_fault/exchanges      the recorded exchanges
//	DELETE /_fault/exchanges      forget them
//
// Requests under /_sim/ go to the emulator's control API unchanged.
const controlPrefix = "/_fault/"

func (p *Proxy) serveControl(w http.ResponseWriter, r *http.Request) {
	name := strings.Trim(strings.TrimPrefix(r.URL.Path, controlPrefix), "/")
	q := r.URL.Query()
	f := Filter{Region: q.Get("region"), Service: q.Get("service"), Operation: q.Get("operation")}
	switch {
	case name == "health" && r.Method == http.MethodGet:
		reply(w, http.StatusOK, map[string]any{"ok": true, "target": p.target.String()})
	case name == "rules" && r.Method == http.MethodGet:
		reply(w, http.StatusOK, p.Rules())
	case name == "rules" && r.Method == http.MethodPost:
		var rule Rule
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rule); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": "rule: " + err.Error()})
			return
		}
		id, err := p.AddRule(rule)
		if err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		reply(w, http.StatusOK, map[string]string{"id": id})
	case strings.HasPrefix(name, "rules/") && r.Method == http.MethodDelete:
		if !p.RemoveRule(strings.TrimPrefix(name, "rules/")) {
			reply(w, http.StatusNotFound, map[string]string{"error": "no such rule"})
			return
		}
		reply(w, http.StatusOK, map[string]bool{"ok": true})
	case name == "clear" && r.Method == http.MethodPost:
		p.Clear()
		reply(w, http.StatusOK, map[string]bool{"ok": true})
	case name == "log" && r.Method == http.MethodGet:
		out := []Entry{}
		for _, e := range p.Log() {
			if f.match(e) {
				out = append(out, e)
			}
		}
		reply(w, http.StatusOK, out)
	case name == "log" && r.Method == http.MethodDelete:
		p.ResetLog()
		reply(w, http.StatusOK, map[string]bool{"ok": true})
	case name == "record" && r.Method == http.MethodPost:
		var body struct {
			On bool `json:"on"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		p.Record(body.On)
		reply(w, http.StatusOK, map[string]bool{"ok": true})
	case name == "exchanges" && r.Method == http.MethodGet:
		xs := p.Exchanges()
		if xs == nil {
			xs = []Exchange{}
		}
		reply(w, http.StatusOK, xs)
	case name == "exchanges" && r.Method == http.MethodDelete:
		p.ResetExchanges()
		reply(w, http.StatusOK, map[string]bool{"ok": true})
	case name == "count" && r.Method == http.MethodGet:
		reply(w, http.StatusOK, p.CountWhere(f))
	case name == "seed" && r.Method == http.MethodPost:
		var body struct {
			Seed json.Number `json:"seed"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		seed, err := strconv.ParseUint(body.Seed.String(), 10, 64)
		if err != nil {
			reply(w, http.StatusBadRequest, map[string]string{"error": "seed: " + err.Error()})
			return
		}
		p.Seed(seed)
		reply(w, http.StatusOK, map[string]bool{"ok": true})
	default:
		reply(w, http.StatusNotFound, map[string]string{"error": "no " + r.Method + " " + r.URL.Path})
	}
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
