// Package alerts reads the alerts that fire from Prometheus (/api/v1/alerts) or Alertmanager
// (/api/v2/alerts), keeps those an operator's filter chooses, and says which nodes each names:
// the alerts gate holds every reboot back while one of them fires (see package gate).
package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// The paths of the two APIs read: Prometheus's alerts, firing or pending, and Alertmanager's.
const (
	PrometheusPath   = "/api/v1/alerts"
	AlertmanagerPath = "/api/v2/alerts"
)

// MaxBytes bounds an answer of the alert source: a bigger one is an error (a source that
// cannot be read), never a part of it read as all.
const MaxBytes = 8 << 20

// DefaultTimeout is how long one read of the source may take.
const DefaultTimeout = 10 * time.Second

// DefaultNodeLabels are the labels whose values name the node an alert is about, looked at in
// this order: Prometheus's target (host:port), and the usual labels of node_exporter's and
// Kubernetes' alerts.
func DefaultNodeLabels() []string {
	return []string{"instance", "node", "nodename", "hostname", "host"}
}

// Alert is one alert that fires.
type Alert struct {
	// Name is its alertname label.
	Name   string
	Labels map[string]string
	// Since is when it started to fire (zero: not known).
	Since time.Time
	// Nodes are the hosts its node labels name (see Source.NodeLabels), each without a port
	// and without a domain.
	Nodes []string
}

// String is the alert as Prometheus writes a series: its name, then its other labels.
func (a Alert) String() string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		if k != "alertname" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, a.Labels[k]))
	}
	return a.Name + "{" + strings.Join(parts, ",") + "}"
}

// Names says whether the alert names node (compared without a domain) in one of its node
// labels.
func (a Alert) Names(node string) bool {
	return slices.Contains(a.Nodes, Host(node))
}

// Source is where the alerts are read, and which of them count.
type Source struct {
	// URL is Prometheus's base URL (http://prometheus:9090), or the full URL of one of the two
	// APIs (.../api/v1/alerts: Prometheus's; .../api/v2/alerts: Alertmanager's).
	URL string
	// Filter chooses the alerts that count: those whose name, or one of whose labels written
	// label=value, it matches whole; nil: every alert that fires.
	Filter *regexp.Regexp
	// NodeLabels are the labels that name the node an alert is about (DefaultNodeLabels when
	// nil).
	NodeLabels []string
	// Client reads the source (http.DefaultClient when nil); Timeout bounds one read
	// (DefaultTimeout when zero).
	Client  *http.Client
	Timeout time.Duration
}

// ParseFilter is the filter of the expression expr, matched whole ("" for none: every alert).
func ParseFilter(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, fmt.Errorf("alerts filter %q: %w", expr, err)
	}
	return re, nil
}

// Endpoint is the URL read, and whether it is Alertmanager's API.
func (s Source) Endpoint() (string, bool, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false, fmt.Errorf("alerts URL %q: want http(s)://HOST[:PORT][/PATH]", s.URL)
	}
	path := strings.TrimSuffix(u.Path, "/")
	switch {
	case strings.HasSuffix(path, AlertmanagerPath):
		q := u.Query()
		q.Set("active", "true")
		q.Set("silenced", "false")
		q.Set("inhibited", "false")
		u.RawQuery = q.Encode()
		return u.String(), true, nil
	case strings.HasSuffix(path, PrometheusPath):
		return u.String(), false, nil
	}
	u.Path = path + PrometheusPath
	return u.String(), false, nil
}

// Firing are the alerts that fire and that the filter chooses, in a stable order.
func (s Source) Firing(ctx context.Context) ([]Alert, error) {
	endpoint, manager, err := s.Endpoint()
	if err != nil {
		return nil, err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := s.get(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	var all []Alert
	if manager {
		all, err = decodeAlertmanager(body)
	} else {
		all, err = decodePrometheus(body)
	}
	if err != nil {
		return nil, fmt.Errorf("alerts from %s: %w", endpoint, err)
	}
	labels := s.NodeLabels
	if labels == nil {
		labels = DefaultNodeLabels()
	}
	var out []Alert
	for _, a := range all {
		if !s.chooses(a) {
			continue
		}
		a.Nodes = nodesOf(a.Labels, labels)
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// get reads endpoint, at most MaxBytes of it.
func (s Source) get(ctx context.Context, endpoint string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("alerts from %s: %w", endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alerts from %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("alerts from %s: %w", endpoint, err)
	case len(body) > MaxBytes:
		return nil, fmt.Errorf("alerts from %s: the answer is over %d bytes", endpoint, MaxBytes)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("alerts from %s: %s: %s", endpoint, resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	return body, nil
}

// chooses says whether the filter chooses a.
func (s Source) chooses(a Alert) bool {
	if s.Filter == nil || s.Filter.MatchString(a.Name) {
		return true
	}
	for k, v := range a.Labels {
		if s.Filter.MatchString(k + "=" + v) {
			return true
		}
	}
	return false
}

// decodePrometheus are the firing alerts of Prometheus's answer (pending ones do not fire yet).
func decodePrometheus(body []byte) ([]Alert, error) {
	var doc struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Alerts []struct {
				Labels   map[string]string `json:"labels"`
				State    string            `json:"state"`
				ActiveAt *time.Time        `json:"activeAt"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not Prometheus's alerts: %w", err)
	}
	if doc.Status != "success" {
		return nil, fmt.Errorf("Prometheus says %s: %s", doc.Status, doc.Error)
	}
	var out []Alert
	for _, a := range doc.Data.Alerts {
		if a.State != "firing" {
			continue
		}
		al := Alert{Name: a.Labels["alertname"], Labels: a.Labels}
		if a.ActiveAt != nil {
			al.Since = *a.ActiveAt
		}
		out = append(out, al)
	}
	return out, nil
}

// decodeAlertmanager are the active alerts of Alertmanager's answer, neither silenced nor
// inhibited.
func decodeAlertmanager(body []byte) ([]Alert, error) {
	var doc []struct {
		Labels   map[string]string `json:"labels"`
		StartsAt *time.Time        `json:"startsAt"`
		Status   struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not Alertmanager's alerts: %w", err)
	}
	var out []Alert
	for _, a := range doc {
		if a.Status.State != "active" {
			continue
		}
		al := Alert{Name: a.Labels["alertname"], Labels: a.Labels}
		if a.StartsAt != nil {
			al.Since = *a.StartsAt
		}
		out = append(out, al)
	}
	return out, nil
}

// nodesOf are the hosts that labels' node labels name.
func nodesOf(labels map[string]string, nodeLabels []string) []string {
	var out []string
	for _, l := range nodeLabels {
		if v := labels[l]; v != "" && !slices.Contains(out, Host(v)) {
			out = append(out, Host(v))
		}
	}
	return out
}

// Host is a node label's value as a node name: without a port, a scheme, or a domain
// ("db-1.example.com:9100" is "db-1").
func Host(v string) string {
	if i := strings.Index(v, "://"); i >= 0 {
		v = v[i+3:]
	}
	if h, _, err := net.SplitHostPort(v); err == nil {
		v = h
	}
	v = strings.Trim(v, "[]")
	if net.ParseIP(v) == nil {
		v, _, _ = strings.Cut(v, ".")
	}
	return strings.ToLower(v)
}
