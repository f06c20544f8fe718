// Package web serves a read-only live view of the fleet: every group with its limit, holders
// and stop flag, every node with its phase, its daemon and the gate that holds it back, each
// group's queue with the estimated start of each waiting node, the last failures and the roll
// as a timeline drawn on the server (SVG). It reads what status reads (see fleet.Snapshot),
// again whenever a blocking query says it may have changed, and pushes each new rendering to
// the browsers by server-sent events. It writes nothing.
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/logkey"
)

// Server is the live view.
type Server struct {
	// Read reads the fleet now.
	Read func(ctx context.Context) (fleet.Snapshot, error)
	// Watch calls changed whenever what Read reads may have changed, until ctx ends.
	Watch  func(ctx context.Context, changed func()) error
	Logger *slog.Logger

	mu   sync.Mutex
	last *Frame
	subs map[chan *Frame]struct{}
}

// Frame is one rendering of the fleet, as a browser receives it.
type Frame struct {
	// Seq counts the renderings since the server started.
	Seq int    `json:"seq"`
	At  string `json:"at"`
	// Fleet is the groups, nodes and failures (HTML); Timeline the roll (SVG).
	Fleet    string `json:"fleet"`
	Timeline string `json:"timeline"`
	// Error says why the fleet could not be read ("" when it could): the page keeps the last
	// rendering, and says so.
	Error string `json:"error,omitempty"`
}

// Run reads and renders the fleet, then again at every change, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	changes := make(chan struct{}, 1)
	watched := make(chan error, 1)
	go func() {
		watched <- s.Watch(ctx, func() {
			select {
			case changes <- struct{}{}:
			default: // a read is due already: it reads this change too
			}
		})
	}()
	seq := 0
	for {
		seq++
		s.refresh(ctx, seq)
		select {
		case <-ctx.Done():
			return nil
		case err := <-watched:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watching the fleet: %w", err)
		case <-changes:
		}
	}
}

// refresh reads the fleet, renders it and hands the frame to every browser.
func (s *Server) refresh(ctx context.Context, seq int) {
	snap, err := s.Read(ctx)
	if ctx.Err() != nil {
		return
	}
	var f *Frame
	if err != nil {
		s.Logger.Warn("cannot read the fleet: the page keeps the last view", logkey.Err, err)
		s.mu.Lock()
		prev := s.last
		s.mu.Unlock()
		f = &Frame{Seq: seq, At: time.Now().UTC().Format(time.RFC3339), Error: err.Error()}
		if prev != nil {
			f.Fleet, f.Timeline = prev.Fleet, prev.Timeline
		}
	} else {
		f = Render(snap)
		f.Seq = seq
	}
	s.publish(f)
}

// publish makes f the last frame and hands it to every browser; a browser that has not taken
// the one before gets this one instead.
func (s *Server) publish(f *Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = f
	for ch := range s.subs {
		select {
		case <-ch:
		default:
		}
		ch <- f
	}
}

// subscribe is a channel that receives the last frame, then each new one.
func (s *Server) subscribe() (chan *Frame, func()) {
	ch := make(chan *Frame, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[chan *Frame]struct{}{}
	}
	s.subs[ch] = struct{}{}
	if s.last != nil {
		ch <- s.last
	}
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, ch)
	}
}

// Handler serves the page (/) and its events (/events). Only GET and HEAD are answered.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /events", s.events)
	return readOnly(mux)
}

// readOnly refuses every method but GET and HEAD, and tells browsers to frame nothing and run
// only the page's own script.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "this view is read-only: GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	f := s.last
	s.mu.Unlock()
	if f == nil {
		f = &Frame{Error: "reading the fleet"}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.Execute(w, f); err != nil {
		s.Logger.Debug("page not written", logkey.Err, err)
	}
}

// heartbeat keeps an idle event stream open through proxies.
const heartbeat = 15 * time.Second

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	ch, done := s.subscribe()
	defer done()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
		case f := <-ch:
			data, err := json.Marshal(f)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "event: fleet\ndata: %s\n\n", data); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}
