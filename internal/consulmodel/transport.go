package consulmodel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Call is one request as the model sees it.
type Call struct {
	// Node is the node whose agent the client speaks to.
	Node   string
	Method string
	Path   string
	Query  url.Values
	Body   []byte
	// Write says the call changes state when it is answered (a KV write, a transaction with a
	// write, an agent's or a session's change), whether or not its check-and-set holds.
	Write bool
	// Woken says the call is a blocking query that waited in the model and is now about to be
	// answered: the gate sees such a call twice, when it comes and when it is woken.
	Woken bool
}

// Gate sees each call before the model answers it, in the caller's goroutine: it may block
// (a simulator parks the caller there until the call's turn) and may refuse it: a non-nil
// *Refusal is answered instead of the call, and nothing changes.
type Gate func(ctx context.Context, c *Call) *Refusal

// Refusal is an answer given instead of a call's: a status and a body, as Consul would give
// them (403 "Permission denied", 413, 429, 500 ...).
type Refusal struct {
	Status int
	Body   string
}

// Client returns an api.Client speaking as node's local agent (agent endpoints act on node).
// Every request passes through gate before it is answered (nil: answered at once).
func (m *Model) Client(node string, gate Gate) *api.Client {
	cfg := &api.Config{
		Address:    "consul-model",
		Scheme:     "http",
		HttpClient: &http.Client{Transport: &transport{m: m, node: node, gate: gate}},
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		// NewClient fails only on an address or TLS setting, and these are fixed.
		panic(fmt.Sprintf("consulmodel: %v", err))
	}
	return c
}

type transport struct {
	m    *Model
	node string
	gate Gate
}

// reply is an answer: a status, a body (JSON unless raw), and the query's meta headers when
// meta is set.
type reply struct {
	status int
	body   []byte
	index  uint64
	// meta: X-Consul-Index (when index is not 0), X-Consul-KnownLeader, X-Consul-LastContact.
	meta bool
	// leaderOnly: X-Consul-KnownLeader and X-Consul-LastContact only (a read transaction).
	leaderOnly bool
	location   string
}

func jsonReply(v any) reply {
	data, err := json.Marshal(v)
	if err != nil {
		return textReply(http.StatusInternalServerError, err.Error())
	}
	return reply{status: http.StatusOK, body: data}
}

func textReply(status int, text string) reply {
	return reply{status: status, body: []byte(text)}
}

func (r reply) withIndex(index uint64) reply {
	r.index, r.meta = index, true
	return r
}

// endpoint is how the model answers one call. A read is answered by read; a blocking read
// (with ?index) waits until index passes the one asked, watch filing it under what wakes it. A
// write is answered by apply, which records what it changed.
type endpoint struct {
	write bool
	read  func() reply
	index func() uint64
	watch func(*waiter)
	apply func(*changes) reply
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	ctx := req.Context()
	c := &Call{Node: t.node, Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Body: body}
	ep, early := t.m.route(c)
	c.Write = ep.write
	refused := false
	if r := t.pass(ctx, c); r != nil {
		early, refused = r, true
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var r reply
	switch {
	case early != nil:
		r = *early
	case ep.write:
		r = t.m.applyCall(ep)
	default:
		var err error
		if r, refused, err = t.m.readCall(ctx, t, c, ep); err != nil {
			return nil, err
		}
	}
	t.m.mu.Lock()
	t.m.count(t.node, len(body), len(r.body), c.Write && early == nil, refused)
	t.m.mu.Unlock()
	return response(req, r), nil
}

// pass runs the gate: the refusal to answer instead, or nil.
func (t *transport) pass(ctx context.Context, c *Call) *reply {
	if t.gate == nil {
		return nil
	}
	ref := t.gate(ctx, c)
	if ref == nil {
		return nil
	}
	r := textReply(ref.Status, ref.Body)
	return &r
}

// applyCall answers a write.
func (m *Model) applyCall(ep endpoint) reply {
	m.mu.Lock()
	var ch changes
	r := ep.apply(&ch)
	keys := m.commit(m.next(), &ch)
	m.mu.Unlock()
	m.notify(keys)
	return r
}

// readCall answers a read, waiting first when it is a blocking query whose index has not
// passed the one asked; a query woken passes the gate again before it is answered.
func (m *Model) readCall(ctx context.Context, t *transport, c *Call, ep endpoint) (r reply, refused bool, err error) {
	least, wait, blocking := blockingOf(c.Query)
	m.mu.Lock()
	if !blocking || ep.watch == nil || ep.index() > least {
		defer m.mu.Unlock()
		return ep.read(), false, nil
	}
	m.block(ctx, ep.watch, func() bool { return ep.index() > least }, wait)
	m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return reply{}, false, err
	}
	c.Woken = true
	if r := t.pass(ctx, c); r != nil {
		return *r, true, nil
	}
	if err := ctx.Err(); err != nil {
		return reply{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return ep.read(), false, nil
}

// blockingOf reads ?index and ?wait: the index to wait past and how long (Consul's default
// and bound applied).
func blockingOf(q url.Values) (uint64, time.Duration, bool) {
	index, err := strconv.ParseUint(q.Get("index"), 10, 64)
	if err != nil || index == 0 {
		return 0, 0, false
	}
	wait := defaultWait
	if s := q.Get("wait"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			wait = min(d, maxWait)
		}
	}
	return index, wait, true
}

func response(req *http.Request, r reply) *http.Response {
	h := http.Header{}
	if r.location != "" {
		h.Set("Location", r.location)
	}
	if r.meta || r.leaderOnly {
		if r.meta && r.index != 0 {
			h.Set("X-Consul-Index", strconv.FormatUint(r.index, 10))
		}
		h.Set("X-Consul-Knownleader", "true")
		h.Set("X-Consul-Lastcontact", "0")
	}
	if len(r.body) > 0 && (r.body[0] == '{' || r.body[0] == '[' || r.body[0] == 'n' || r.body[0] == 't' || r.body[0] == 'f' || r.body[0] == '"') {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", r.status, http.StatusText(r.status)),
		StatusCode:    r.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(r.body)),
		ContentLength: int64(len(r.body)),
		Request:       req,
	}
}

// route finds the endpoint of a call, or the answer to give at once (a path Consul's HTTP
// server would clean and redirect, an unknown endpoint, a bad request).
func (m *Model) route(c *Call) (endpoint, *reply) {
	if clean := cleanPath(c.Path); clean != c.Path {
		u := url.URL{Path: clean, RawQuery: c.Query.Encode()}
		r := textReply(http.StatusMovedPermanently, "")
		r.location = u.String()
		return endpoint{}, &r
	}
	p := c.Path
	var ep endpoint
	var err *reply
	switch {
	case strings.HasPrefix(p, "/v1/kv/"):
		ep, err = m.kvRoute(c, strings.TrimPrefix(p, "/v1/kv/"))
	case p == "/v1/txn":
		ep, err = m.txnRoute(c)
	case strings.HasPrefix(p, "/v1/catalog/"), strings.HasPrefix(p, "/v1/health/"):
		ep, err = m.catalogRoute(c, p)
	case strings.HasPrefix(p, "/v1/agent/"):
		ep, err = m.agentRoute(c, strings.TrimPrefix(p, "/v1/agent/"))
	case strings.HasPrefix(p, "/v1/session/"):
		ep, err = m.sessionRoute(c, strings.TrimPrefix(p, "/v1/session/"))
	case p == "/v1/status/leader":
		ep = endpoint{read: func() reply { return jsonReply("127.0.0.1:8300") }}
	case p == "/v1/status/peers":
		ep = endpoint{read: func() reply { return jsonReply([]string{"127.0.0.1:8300"}) }}
	default:
		r := textReply(http.StatusNotFound, "")
		return endpoint{}, &r
	}
	if err == nil && ep.read == nil && ep.apply == nil {
		r := textReply(http.StatusMethodNotAllowed, "method "+c.Method+" not allowed")
		return endpoint{}, &r
	}
	return ep, err
}

// cleanPath is the path Go's HTTP server (and so Consul's) serves a request at: it redirects a
// request for any other ("a//b", "a/./b", "a/../b") there.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

func badRequest(format string, args ...any) *reply {
	r := textReply(http.StatusBadRequest, fmt.Sprintf(format, args...))
	return &r
}
