package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rebootmgr/rebootmgr/metrics"
)

const (
	alertRules = "monitoring/rebootmgr-alerts.yml"
	dashboard  = "monitoring/rebootmgr-dashboard.json"
)

// promtool is Prometheus's promtool: $PROMTOOL, else promtool on $PATH. Without one the test
// fails and says how to get it (scripts/test installs it).
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed to check the alerting rules (Debian: apt-get install prometheus; scripts/test installs it), or set PROMTOOL: %v", err)
	}
	return p
}

// TestAlertRules: the shipped alerting rules load in Prometheus, as promtool checks them.
func TestAlertRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", alertRules).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertRules, err, out)
	}
}

// exported are the names of the metrics a daemon exports: what the metrics package registers,
// the Go runtime's and the process's with them (a histogram's series too).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	rec := &describer{names: map[string]bool{}}
	if _, err := metrics.New(rec, "test"); err != nil {
		t.Fatal(err)
	}
	if !rec.names["rebootmgr_waiting_for_operator"] || !rec.names["process_resident_memory_bytes"] {
		t.Fatalf("the registry's names were not read: %v", rec.names)
	}
	return rec.names
}

// describer is a Registerer that keeps the names of what is registered with it.
type describer struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		m := fqName.FindStringSubmatch(desc.String())
		if m == nil {
			continue
		}
		d.names[m[1]] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			d.names[m[1]+s] = true
		}
	}
	return nil
}

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *describer) Unregister(prometheus.Collector) bool { return false }

// The parts of a PromQL expression that name no metric: strings, label matchers, ranges,
// Grafana's variables, label lists; and its keywords.
var (
	notMetrics = []*regexp.Regexp{
		regexp.MustCompile(`"(?:[^"\\]|\\.)*"`),
		regexp.MustCompile(`\{[^}]*\}`),
		regexp.MustCompile(`\[[^\]]*\]`),
		regexp.MustCompile(`\$\{?\w+\}?`),
		regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`),
	}
	identifier = regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true, "group_left": true, "group_right": true}
)

// metricNames are the metrics a PromQL expression names.
func metricNames(expr string) []string {
	for _, re := range notMetrics {
		expr = re.ReplaceAllString(expr, " ")
	}
	var out []string
	for _, m := range identifier.FindAllStringSubmatch(expr, -1) {
		if m[1] != "" || keywords[strings.ToLower(m[0])] {
			continue // a function or an aggregation, or a keyword
		}
		out = append(out, m[0])
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (gate) (rebootmgr_blocked{job=~"$job"})`:                                  "rebootmgr_blocked",
		`histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y"}[$__rate_interval])))`: "a_bucket",
		`a * on (instance, job) group_left (node, group) b == 1`:                          "a b",
		`increase(c[1h]) > 0 or (c unless c offset 1h)`:                                   "c c c",
		`d{job=~"$job"} * 1000 * on (instance) group_left (node) e{job=~"${job}"}`:        "d e",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%s) = %q, want %q", expr, got, want)
		}
	}
}

// exprs are every "expr" of a Grafana dashboard, wherever it is in it.
func exprs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := v[k].(string); ok && k == "expr" {
				out = append(out, s)
				continue
			}
			out = append(out, exprs(v[k])...)
		}
	case []any:
		for _, e := range v {
			out = append(out, exprs(e)...)
		}
	}
	return out
}

// TestDashboardNamesExportedMetrics: each query of the shipped Grafana dashboard names only
// metrics the daemon exports, and it shows the one an operator must act on.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	known := exported(t)
	all := exprs(d)
	if len(all) < 10 {
		t.Fatalf("%s: %d queries found", dashboard, len(all))
	}
	seen := map[string]bool{}
	for _, e := range all {
		for _, name := range metricNames(e) {
			seen[name] = true
			if !known[name] {
				t.Errorf("%s: the query %q names %s, which the daemon does not export", dashboard, e, name)
			}
		}
	}
	if !seen["rebootmgr_waiting_for_operator"] {
		t.Errorf("%s does not show rebootmgr_waiting_for_operator", dashboard)
	}
}

// TestAlertRulesNameExportedMetrics: the alerting rules, too, name only metrics the daemon
// exports.
func TestAlertRulesNameExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	known := exported(t)
	names := regexp.MustCompile(`\b(?:rebootmgr|process|go)_[a-z0-9_]+`).FindAllString(string(data), -1)
	if len(names) == 0 {
		t.Fatalf("%s names no metric", alertRules)
	}
	for _, name := range names {
		if !known[name] {
			t.Errorf("%s names %s, which the daemon does not export", alertRules, name)
		}
	}
}
