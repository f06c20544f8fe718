package release010_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rebootmgr/rebootmgr/fleet"
	"github.com/rebootmgr/rebootmgr/fleetlock"
	"github.com/rebootmgr/rebootmgr/history"
	"github.com/rebootmgr/rebootmgr/internal/pipelinetest"
	"github.com/rebootmgr/rebootmgr/internal/release010"
	"github.com/rebootmgr/rebootmgr/lock"
	"github.com/rebootmgr/rebootmgr/place"
)

// written is one record as this version writes it, with the decoder rebootmgr 0.1.0 reads it
// with.
type written struct {
	record, name string
	data         []byte
	decode       func([]byte) (any, error)
}

func decodeLock(data []byte) (any, error)    { return release010.Decode(data) }
func decodeQueue(data []byte) (any, error)   { return release010.DecodeQueue(data) }
func decodeFleet(data []byte) (any, error)   { return release010.DecodeFleet(data) }
func decodeHistory(data []byte) (any, error) { return release010.DecodeHistory(data) }

// TestPreviousReleaseReadsWhatThisOneWrites: every record this version writes that rebootmgr
// 0.1.0 reads too (the lock records, the queues, the fleet's holders, the histories) is read by
// 0.1.0's own decoders (package release010), with every field 0.1.0 knows as written. A fleet
// moves between the two node by node: a record the older one refuses stops its nodes, the
// holder included (it can neither reboot, release nor finish). The records are made by this
// version's own writers (the pipeline's rules of a place, the lock's, the queue's and the
// history's changes, their encoders), in every shape they take: holders in every phase, of
// zones in a group bounded per zone, FleetLock hosts; queue entries blocked and not, of zones,
// a place freed; long texts; every outcome of the history. A record kept empty is deleted, never
// written (see store.Commit), so none is here. The keys this version added (the claims of room,
// the groups' turn keys and asks) are no concern: 0.1.0 never reads them; a record written once
// asks were folded into it is read as any other.
func TestPreviousReleaseReadsWhatThisOneWrites(t *testing.T) {
	var all []written
	all = append(all, lockStory(t)...)
	all = append(all, foldStory(t)...)
	all = append(all, historyShapes(t)...)
	for _, w := range all {
		t.Run(w.record+"/"+w.name, func(t *testing.T) {
			got, err := w.decode(w.data)
			if err != nil {
				t.Fatalf("rebootmgr 0.1.0 cannot read the %s record this version writes (%s): %v\n%s", w.record, w.name, err, w.data)
			}
			sameAsWritten(t, w.record, w.data, got)
		})
	}
}

// sameAsWritten fails unless every field of read (as 0.1.0 decoded it) holds what data holds.
func sameAsWritten(t *testing.T, record string, data []byte, read any) {
	t.Helper()
	back, err := json.Marshal(read)
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &got); err != nil {
		t.Fatal(err)
	}
	if path, ok := within(got, want, record); !ok {
		t.Fatalf("rebootmgr 0.1.0 reads %s other than written:\nwritten: %s\nread:    %s", path, data, back)
	}
}

// within says whether every value of got is in want at the same place (a field of want that
// got lacks is one 0.1.0 would not know, and fails the decoder before this); else where not.
func within(got, want any, path string) (string, bool) {
	switch g := got.(type) {
	case map[string]any:
		w, ok := want.(map[string]any)
		if !ok {
			return path, false
		}
		for k, v := range g {
			wv, ok := w[k]
			if !ok && isZero(v) {
				continue // omitted when empty by the writer, zero in 0.1.0's struct
			}
			if p, ok := within(v, wv, path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		w, ok := want.([]any)
		if !ok || len(w) != len(g) {
			return path, false
		}
		for i := range g {
			if p, ok := within(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	}
	return path, reflect.DeepEqual(got, want)
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == "" || v == "0001-01-01T00:00:00Z"
	case float64:
		return v == 0
	}
	return false
}

// story is a group's lock, queue and the fleet's holders as this version's rules change them,
// each record kept as written after every change.
type story struct {
	t      *testing.T
	health pipelinetest.Health
	v      place.View
	out    []written
	now    time.Time
}

func (s *story) keep(name string, ch place.Change) {
	s.t.Helper()
	s.v.Lock = ch.Lock
	if ch.Fleet != nil {
		s.v.Fleet = *ch.Fleet
	}
	if ch.Queue != nil {
		s.v.Queue = *ch.Queue
	}
	s.write(name)
}

// write keeps the records of the view as the store writes them: an empty one is deleted.
func (s *story) write(name string) {
	s.t.Helper()
	add := func(record string, empty bool, encode func() ([]byte, error), decode func([]byte) (any, error)) {
		if empty {
			return
		}
		data, err := encode()
		if err != nil {
			s.t.Fatalf("%s record (%s): %v", record, name, err)
		}
		s.out = append(s.out, written{record: record, name: name, data: data, decode: decode})
	}
	add("lock", len(s.v.Lock.Holders) == 0, s.v.Lock.Encode, decodeLock)
	add("queue", len(s.v.Queue.Entries) == 0, s.v.Queue.Encode, decodeQueue)
	add("fleet", len(s.v.Fleet.Holders) == 0, s.v.Fleet.Encode, decodeFleet)
}

// acquire gives h a place by the pipeline's rules (fails the test when they refuse).
func (s *story) acquire(name string, h lock.Holder) {
	s.t.Helper()
	h.Since, h.Updated = s.now, s.now
	ch, err := place.AcquireIn(context.Background(), &s.health, slog.New(slog.NewTextHandler(io.Discard, nil)), s.v, h, s.now, "health")
	if err != nil {
		s.t.Fatalf("%s: %v", name, err)
	}
	s.keep(name, ch)
}

func (s *story) update(name string, change func(lock.Holder) lock.Holder, node string) {
	s.t.Helper()
	h, ok := s.v.Lock.Holder(node)
	if !ok {
		s.t.Fatalf("%s: %s holds no place", name, node)
	}
	rec, err := s.v.Lock.Update(change(h))
	if err != nil {
		s.t.Fatal(err)
	}
	s.keep(name, place.Change{Lock: rec})
}

func (s *story) queue(name string, change func(lock.Queue) lock.Queue) {
	q := change(s.v.Queue)
	s.keep(name, place.Change{Lock: s.v.Lock, Queue: &q})
}

// lockStory plays a group bounded per zone and a group of FleetLock hosts through their reboots.
func lockStory(t *testing.T) []written {
	now := time.Date(2026, 11, 24, 18, 0, 0, 123456789, time.UTC)
	long := strings.Repeat("a reboot request that says a lot ", 4000)
	s := &story{t: t, now: now, v: place.View{Group: "compute", Lock: lock.Record{Version: lock.Version}, Limit: lock.Limit{N: 3, PerZone: 2},
		Fleet: lock.Fleet{Version: lock.Version}, Queue: lock.Queue{Version: lock.Version}, Legacy: map[string]string{}}}
	s.acquire("a holder preparing, of a zone", lock.Holder{Node: "c1", Zone: "a", Phase: lock.Preparing, TriggeredBy: "key service/rebootmgr/c1/reboot_required"})
	s.acquire("two holders of one zone, a long request", lock.Holder{Node: "c2.example_x", Zone: "a", Phase: lock.Preparing, TriggeredBy: long})
	// A node of a zone waiting in the queue: on its own, so that the rest of the story goes on
	// with a queue of nodes of no zone.
	zoned := &story{t: t, now: now, v: s.v}
	zoned.queue("a node of a group bounded per zone waits in the queue", func(q lock.Queue) lock.Queue { return q.Join("c5", now) })
	for _, w := range zoned.out {
		if w.record == "queue" {
			s.out = append(s.out, w)
		}
	}
	s.queue("a node of no zone waits in the queue while a zone reboots", func(q lock.Queue) lock.Queue { return q.Join("c3", now) })
	s.queue("two nodes wait in the queue", func(q lock.Queue) lock.Queue { return q.Join("c4", now.Add(time.Second)) })
	for _, gate := range []string{"health", "window", "disabled", "not_now"} {
		s.queue("a node in the queue blocked by "+gate, func(q lock.Queue) lock.Queue { return q.Block("c4", gate) })
	}
	s.update("a holder rebooting", func(h lock.Holder) lock.Holder {
		h.Phase, h.BootID, h.RebootStarted, h.TriggerIndex, h.Deadline = lock.Rebooting, "6f0c2e8a-7a3b-4e1c-9d55-0b1f6c2d9e77", now, 4711, now.Add(30*time.Minute)
		h.Updated = now
		return h
	}, "c1")
	s.update("a holder finishing", func(h lock.Holder) lock.Holder { h.Phase, h.Updated = lock.Finishing, now.Add(time.Minute); return h }, "c1")
	s.keep("a holder released: a place freed", place.ReleaseIn(s.v, "c1", now.Add(2*time.Minute)))
	s.keep("the other released", place.ReleaseIn(s.v, "c2.example_x", now.Add(3*time.Minute)))
	s.queue("the node blocked runs again", func(q lock.Queue) lock.Queue { return q.Join("c4", now) })
	s.now = now.Add(10 * time.Minute)
	s.acquire("a node behind takes a place, the first let its turn pass", lock.Holder{Node: "c4", Phase: lock.Preparing})

	// A group of FleetLock hosts under auto, many at once, beside the other group's holder.
	s.v = place.View{Group: "workers", Lock: lock.Record{Version: lock.Version}, Limit: lock.Limit{Auto: true},
		Fleet: s.v.Fleet, Queue: lock.Queue{Version: lock.Version}, Legacy: map[string]string{}}
	s.queue("a FleetLock host waits in the queue", func(q lock.Queue) lock.Queue { return q.Join(fmt.Sprintf("%032x", 0), now) })
	hosts := []string{fmt.Sprintf("%032x", 0), fmt.Sprintf("%032x", 1), fmt.Sprintf("%032x", 2)}
	s.health.Set(pipelinetest.Service("worker", []string{"max_failing=3"}, hosts...))
	for i, host := range hosts {
		s.acquire(fmt.Sprintf("FleetLock host %d rebooting", i), lock.Holder{Node: host, Phase: lock.Rebooting, RebootStarted: now,
			Deadline: now.Add(30 * time.Minute), TriggeredBy: fleetlock.TriggeredBy})
	}
	return s.out
}

// foldStory is a group's queue record as this version's store writes it once nodes joined with
// asks of their own (which 0.1.0 never reads) and a write of the record folded them in: a place
// given back, a node blocked, a node joining beside a fold.
func foldStory(t *testing.T) []written {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Date(2026, 11, 24, 18, 0, 0, 123456789, time.UTC)
	st := pipelinetest.NewStore("default", "c1")
	rec, _ := lock.Record{Version: lock.Version}.Acquire(lock.Holder{Node: "c0", Phase: lock.Rebooting, Since: now, Updated: now}, 1)
	st.PutLock(rec)
	var out []written
	keep := func(name string, entries int) {
		t.Helper()
		data, _ := st.Get(pipelinetest.Layout().GroupQueue("default"))
		if q, err := lock.DecodeQueue([]byte(data)); err != nil || len(q.Entries) != entries {
			t.Fatalf("%s: a queue record of %d entries (%v), want %d folded in", name, len(q.Entries), err, entries)
		}
		out = append(out, written{record: "queue", name: name, data: []byte(data), decode: decodeQueue})
	}
	join := func(q lock.Queue, node string) lock.Queue { return q.Join(node, now) }
	for _, n := range []string{"c1", "c2.example_x", "c3", "c4"} {
		if err := place.ChangeQueue(ctx, st, log, func(q lock.Queue) lock.Queue { return join(q, n) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := place.ChangeQueue(ctx, st, log, func(q lock.Queue) lock.Queue { return q.Block("c3", "health") }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := place.ChangeLock(ctx, st, log, func(v place.View) (place.Change, error) { return place.ReleaseIn(v, "c0", now), nil }); err != nil {
		t.Fatal(err)
	}
	keep("a place given back folds the asks, one blocked, into the record", 4)
	if err := place.ChangeQueue(ctx, st, log, func(q lock.Queue) lock.Queue { return join(q, "c5") }); err != nil {
		t.Fatal(err)
	}
	if err := place.ChangeQueue(ctx, st, log, func(q lock.Queue) lock.Queue { return q.Keep("c1", now.Add(time.Minute)) }); err != nil {
		t.Fatal(err)
	}
	keep("a node keeping its turn folds the ask after it", 5)
	return out
}

// historyShapes is a group's history with an entry of every outcome, long texts, and more
// entries than it keeps.
func historyShapes(t *testing.T) []written {
	now := time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)
	long := strings.Repeat("a task that said a lot ", 10000)
	var l history.Log
	var out []written
	add := func(name string, l history.Log) {
		data, err := l.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, written{record: "history", name: name, data: data, decode: decodeHistory})
	}
	outcomes := []string{history.Finished, history.TaskFailed, history.DeadlinePassed, history.RebootFailed, history.Unlocked, history.SignalNotCleared, history.NotRebooted}
	for i, o := range outcomes {
		l = l.Append(history.Entry{Node: fmt.Sprintf("n%d", i), Start: now, End: now.Add(time.Minute), Outcome: o, Detail: long, TriggeredBy: long})
		add("an entry "+o+", long texts", l)
	}
	for i := range history.MaxEntries + 10 {
		l = l.Append(history.Entry{Node: fmt.Sprintf("n%d", i), Start: now, End: now, Outcome: outcomes[i%len(outcomes)], Detail: "d", TriggeredBy: "key"})
	}
	add("more entries than it keeps", l)
	for _, o := range outcomes {
		today := history.Entry{Outcome: o}.Failed()
		if then := (release010.Entry{Outcome: o}).Failed(); then != today {
			t.Errorf("outcome %q: this version counts it failed=%v against the circuit breaker, rebootmgr 0.1.0 failed=%v", o, today, then)
		}
	}
	return out
}

// TestPreviousReleaseReadsLimitsAndSettings: the limits this version writes (rebootmgr limit)
// and the settings a daemon publishes in its service's meta are read by rebootmgr 0.1.0 as
// written.
func TestPreviousReleaseReadsLimitsAndSettings(t *testing.T) {
	for _, l := range []lock.Limit{{N: 1}, {N: 12}, {Auto: true}, {Percent: 10}, {Percent: 100}, {N: 4, PerZone: 2}, {Auto: true, PerZone: 1}, {Percent: 25, PerZone: 3}} {
		got, err := release010.ParseLimit(l.String())
		if err != nil || got != (release010.Limit{N: l.N, Auto: l.Auto, Percent: l.Percent, PerZone: l.PerZone}) {
			t.Errorf("limit %q: rebootmgr 0.1.0 reads %+v, %v", l.String(), got, err)
		}
	}
	now := time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)
	for _, s := range []fleet.Settings{
		{Version: "0.2.0", Enabled: true},
		{Version: "0.2.0+3.gabcdef0", Enabled: false, Windows: []string{"Mon-Fri 02:00-05:00 Europe/Berlin", "Sat 00:00-06:00"}, Blackouts: []string{"2026-12-24", "2026-12-25"},
			Spread: 90 * time.Minute, Cooldown: 10 * time.Minute, StayGreen: time.Minute, MinRebootInterval: time.Hour},
		{Version: "0.2.0", Enabled: true, Windows: []string{strings.Repeat("Mon 01:00-02:00;", 100)}},
	} {
		meta := s.Meta(now)
		// What the daemon found of its tasks rides beside its settings: 0.1.0 reads past it.
		fleet.TasksMeta(meta, 2, 1, nil)
		got, err := release010.ParseSettings(meta)
		want := release010.Settings{Version: s.Version, Enabled: s.Enabled, Windows: s.Windows, Blackouts: s.Blackouts, Spread: s.Spread, Cooldown: s.Cooldown, StayGreen: s.StayGreen, MinRebootInterval: s.MinRebootInterval}
		if err != nil && strings.Contains(err.Error(), "too long to publish") {
			continue // 0.1.0 says so too: judged only on the node
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("settings %+v: rebootmgr 0.1.0 reads %+v, %v", s, got, err)
		}
	}
}
